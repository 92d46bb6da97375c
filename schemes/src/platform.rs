//! The one place in ptex-schemes that names an operating system: starting a credential
//! helper in a process group of its own and stopping that whole group. ptex's own OS calls
//! live in its `os` module, which this crate cannot import (dependencies point down).

use std::process::{Child, Command};

/// Makes `command` start in a process group of its own, so that a helper that is a script
/// can be stopped together with what it started. Nothing to do on Windows, where
/// [`kill_group`] stops only the helper.
pub(crate) fn own_group(command: &mut Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    #[cfg(not(unix))]
    let _ = command;
}

/// Kills the process group `child` leads (a script's `sleep` or `curl` too). Best effort;
/// the caller still kills and reaps `child` itself.
pub(crate) fn kill_group(child: &Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill only sends a signal; the group is the one the helper was started in.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = child;
}
