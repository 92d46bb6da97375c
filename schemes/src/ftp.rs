//! `ftp://[user[:password]@]host[:port]/path` on opendal's ftp service: credentials from the
//! URL, else from netrc for that host, else anonymous, as curl (and so the original ptex)
//! does.

use std::sync::Arc;

use opendal::{Operator, services::Ftp};
use ptex_config::Netrc;

use crate::source::percent_decode;
use crate::{FetchError, Source, store};

/// The operator for the server of `source` with the login ptex picks for it, the key to
/// cache it under (see [`key`]), and the hint its access-denied errors carry.
pub(crate) fn setup(
    source: &Source,
    netrc: Option<&Netrc>,
    transports: &store::Transports,
) -> Result<(String, Operator, Arc<str>), FetchError> {
    let (host, port) = (source.host(), source.url().port().unwrap_or(21));
    let login = login(source, netrc);
    let builder = Ftp::default()
        .endpoint(&format!("ftp://{host}:{port}"))
        .user(&login.user)
        .password(&login.password)
        .root("/");
    let operator = Operator::new(builder).map_err(|e| FetchError::Config {
        reason: e.to_string(),
    })?;
    let hint = format!(
        "logged in as {:?} ({}); set credentials in the URL or in netrc for {host}",
        login.user, login.origin
    );
    Ok((
        key(source, netrc),
        transports.attach(operator),
        Arc::from(hint),
    ))
}

/// What the operator for `source` is cached under: its server and the user logged in.
pub(crate) fn key(source: &Source, netrc: Option<&Netrc>) -> String {
    let port = source.url().port().unwrap_or(21);
    format!("{}:{port}:{}", source.host(), login(source, netrc).user)
}

struct Login {
    user: String,
    password: String,
    /// Where the user and password came from, for messages.
    origin: &'static str,
}

/// The login for `source`: from the URL, else netrc for its host, else anonymous.
fn login(source: &Source, netrc: Option<&Netrc>) -> Login {
    let url = source.url();
    if !url.username().is_empty() {
        Login {
            user: percent_decode(url.username()),
            password: url.password().map(percent_decode).unwrap_or_default(),
            origin: "the URL's user and password",
        }
    } else if let Some(entry) = netrc.and_then(|n| n.lookup(source.host()))
        && let Some(login) = &entry.login
    {
        Login {
            user: login.clone(),
            password: entry.password.clone().unwrap_or_default(),
            origin: "netrc",
        }
    } else {
        Login {
            user: "anonymous".to_string(),
            password: "ptex@".to_string(),
            origin: "anonymous login",
        }
    }
}
