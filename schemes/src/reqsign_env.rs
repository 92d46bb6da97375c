//! The environment reqsign's credential providers see: the cloud variables the settings
//! captured ([`CloudEnv`]), never the process's own, so what `ptex-config` resolved and
//! what the providers read cannot disagree.

use ptex_config::CloudEnv;
use reqsign_core::StaticEnv;

/// `cloud` as reqsign's environment, its home directory included.
pub(crate) fn static_env(cloud: &CloudEnv) -> StaticEnv {
    StaticEnv {
        home_dir: cloud.home(),
        envs: cloud
            .vars()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
