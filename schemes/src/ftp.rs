//! `ftp://[user[:password]@]host[:port]/path` on opendal's ftp service: credentials from the
//! URL, else from netrc for that host, else anonymous, as curl (and so the original ptex)
//! does.

use std::sync::Arc;

use opendal::{Operator, services::Ftp};
use ptex_config::Netrc;

use crate::source::percent_decode;
use crate::{FetchError, Source, store};

/// The operator for the server of `source` with the login ptex picks for it, the key to
/// cache it under (host, port and user), and the hint its access-denied errors carry.
pub(crate) fn setup(
    source: &Source,
    netrc: Option<&Netrc>,
    transports: &store::Transports,
) -> Result<(String, Operator, Arc<str>), FetchError> {
    let url = source.url();
    let host = source.host().to_string();
    let port = url.port().unwrap_or(21);
    let (user, password, origin) = if !url.username().is_empty() {
        (
            percent_decode(url.username()),
            url.password().map(percent_decode).unwrap_or_default(),
            "the URL's user and password",
        )
    } else if let Some(entry) = netrc.and_then(|n| n.lookup(&host))
        && let Some(login) = &entry.login
    {
        (
            login.clone(),
            entry.password.clone().unwrap_or_default(),
            "netrc",
        )
    } else {
        (
            "anonymous".to_string(),
            "ptex@".to_string(),
            "anonymous login",
        )
    };
    let builder = Ftp::default()
        .endpoint(&format!("ftp://{host}:{port}"))
        .user(&user)
        .password(&password)
        .root("/");
    let operator = Operator::new(builder).map_err(|e| FetchError::Config {
        reason: e.to_string(),
    })?;
    let hint = format!(
        "logged in as {user:?} ({origin}); set credentials in the URL or in netrc for {host}"
    );
    let key = format!("{host}:{port}:{user}");
    Ok((key, transports.attach(operator), Arc::from(hint)))
}
