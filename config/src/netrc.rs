//! `.netrc` credentials, parsed the way curl reads them: `machine`, `default`, `login`,
//! `password`, `account` and `macdef` tokens, double-quoted tokens allowed. A lookup returns
//! the entry of exactly that host (or `default`), never another host's password.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{ConfigError, Env};

/// Credentials of one `machine` (or the `default`) entry.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    /// The login, if the entry names one.
    pub login: Option<String>,
    /// The password, if the entry names one.
    pub password: Option<String>,
}

impl fmt::Debug for NetrcEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetrcEntry")
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A parsed netrc file.
#[derive(Clone, Debug, Default)]
pub struct Netrc {
    machines: Vec<(String, NetrcEntry)>,
    default: Option<NetrcEntry>,
}

impl Netrc {
    /// Loads `$NETRC`, else `$HOME/.netrc`. A missing file is `Ok(None)`.
    pub fn load(env: &dyn Env) -> Result<Option<Netrc>, ConfigError> {
        let Some(path) = Self::location(env) else {
            return Ok(None);
        };
        let text = crate::local_file::read(&path).and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        });
        match text {
            Ok(text) => Netrc::parse(&text)
                .map(Some)
                .map_err(|reason| ConfigError::NetrcMalformed { path, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigError::NetrcUnreadable { path, source }),
        }
    }

    fn location(env: &dyn Env) -> Option<PathBuf> {
        if let Some(path) = env.var_os("NETRC").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let home = env
            .var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))?;
        Some(Path::new(&home).join(".netrc"))
    }

    /// Parses netrc text.
    pub fn parse(text: &str) -> Result<Netrc, String> {
        let mut netrc = Netrc::default();
        let mut tokens = Tokens::new(text);
        // The entry being filled: `Some(Some(host))` for a machine, `Some(None)` for default.
        let mut current: Option<(Option<String>, NetrcEntry)> = None;
        while let Some(token) = tokens.next_token()? {
            match token.as_str() {
                "machine" => {
                    netrc.push(current.take());
                    let host = tokens
                        .next_token()?
                        .ok_or("`machine` without a host name")?;
                    current = Some((Some(host.to_ascii_lowercase()), NetrcEntry::empty()));
                }
                "default" => {
                    netrc.push(current.take());
                    current = Some((None, NetrcEntry::empty()));
                }
                "login" | "password" | "account" => {
                    let value = tokens
                        .next_token()?
                        .ok_or_else(|| format!("`{token}` without a value"))?;
                    let (_, entry) = current
                        .as_mut()
                        .ok_or_else(|| format!("`{token}` before any `machine` or `default`"))?;
                    match token.as_str() {
                        "login" => entry.login = Some(value),
                        "password" => entry.password = Some(value),
                        _ => {}
                    }
                }
                "macdef" => {
                    netrc.push(current.take());
                    tokens.skip_macro();
                }
                // Never the token itself: a password with a blank in it, unquoted, shows up
                // here in pieces.
                _ => return Err(format!("unexpected token on line {}", tokens.line())),
            }
        }
        netrc.push(current);
        Ok(netrc)
    }

    fn push(&mut self, entry: Option<(Option<String>, NetrcEntry)>) {
        match entry {
            Some((Some(host), entry)) => self.machines.push((host, entry)),
            // curl uses the first `default`; later ones are ignored.
            Some((None, entry)) => {
                self.default.get_or_insert(entry);
            }
            None => {}
        }
    }

    /// The credentials for `host`: its first `machine` entry, else the `default` entry.
    pub fn lookup(&self, host: &str) -> Option<&NetrcEntry> {
        self.machine(host).or(self.default.as_ref())
    }

    /// The first `machine` entry of exactly `host`; never the `default` entry.
    pub fn machine(&self, host: &str) -> Option<&NetrcEntry> {
        let host = host.to_ascii_lowercase();
        self.machines
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, e)| e)
    }
}

impl NetrcEntry {
    fn empty() -> NetrcEntry {
        NetrcEntry {
            login: None,
            password: None,
        }
    }
}

struct Tokens<'a> {
    text: &'a str,
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens { text, rest: text }
    }

    fn next_token(&mut self) -> Result<Option<String>, String> {
        loop {
            self.rest = self.rest.trim_start();
            // A `#` at the start of a token comments out the rest of the line.
            if let Some(comment) = self.rest.strip_prefix('#') {
                self.rest = comment.split_once('\n').map_or("", |(_, r)| r);
                continue;
            }
            break;
        }
        if self.rest.is_empty() {
            return Ok(None);
        }
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = &quoted[i + 1..];
                        return Ok(Some(value));
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, other)) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            return Err("unterminated quoted token".to_string());
        }
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let token = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Ok(Some(token))
    }

    /// The line (from 1) of the next token: for messages that must not quote the text.
    fn line(&self) -> usize {
        let done = self.text.len() - self.rest.len();
        self.text[..done].matches('\n').count() + 1
    }

    /// Skips a `macdef` name and body: everything up to the next empty line.
    fn skip_macro(&mut self) {
        self.rest = self.rest.split_once("\n\n").map_or("", |(_, r)| r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_entries_are_per_host() {
        let netrc = Netrc::parse(
            "machine a.example login alice password s3cret\n\
             machine b.example login bob\n",
        )
        .unwrap();
        let a = netrc.lookup("A.example").unwrap();
        assert_eq!(a.login.as_deref(), Some("alice"));
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        let b = netrc.lookup("b.example").unwrap();
        assert_eq!(b.login.as_deref(), Some("bob"));
        assert_eq!(b.password, None);
        assert!(netrc.lookup("c.example").is_none());
    }

    #[test]
    fn default_applies_to_unlisted_hosts_only() {
        let netrc = Netrc::parse("default login anon password guest\nmachine a login u password p")
            .unwrap();
        assert_eq!(netrc.lookup("a").unwrap().login.as_deref(), Some("u"));
        assert_eq!(netrc.lookup("z").unwrap().login.as_deref(), Some("anon"));
    }

    #[test]
    fn quotes_comments_and_macros() {
        let netrc = Netrc::parse(
            "# comment line\nmacdef init\ncd /pub\nget x\n\n\
             machine h login \"user name\" password \"p\\\"w d\"\n",
        )
        .unwrap();
        let h = netrc.lookup("h").unwrap();
        assert_eq!(h.login.as_deref(), Some("user name"));
        assert_eq!(h.password.as_deref(), Some("p\"w d"));
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(Netrc::parse("login x").is_err());
        assert!(Netrc::parse("machine").is_err());
        assert!(Netrc::parse("machine h password").is_err());
        assert!(Netrc::parse("machine h login \"open").is_err());
        assert!(Netrc::parse("machine h frobnicate x").is_err());
    }

    #[test]
    fn errors_never_quote_the_file() {
        let err = Netrc::parse("machine h login u password hunter2 secret-tail\n").unwrap_err();
        assert!(
            !err.contains("secret-tail") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn default_is_not_a_machine() {
        let netrc = Netrc::parse("default login anon password guest").unwrap();
        assert!(netrc.machine("z").is_none());
        assert!(netrc.lookup("z").is_some());
    }

    #[test]
    fn debug_hides_the_password() {
        let netrc = Netrc::parse("machine h login u password hunter2").unwrap();
        assert!(!format!("{netrc:?}").contains("hunter2"));
    }

    #[test]
    fn netrc_env_var_wins_over_home() {
        let dir = std::env::temp_dir().join(format!("ptex-netrc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("my-netrc");
        std::fs::write(&file, "machine h login from-env").unwrap();
        let env: std::collections::HashMap<String, String> = [
            ("NETRC".to_string(), file.display().to_string()),
            ("HOME".to_string(), "/nonexistent".to_string()),
        ]
        .into();
        let netrc = Netrc::load(&env).unwrap().unwrap();
        assert_eq!(
            netrc.lookup("h").unwrap().login.as_deref(),
            Some("from-env")
        );
        let home_only: std::collections::HashMap<String, String> =
            [("HOME".to_string(), "/nonexistent".to_string())].into();
        assert!(Netrc::load(&home_only).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
