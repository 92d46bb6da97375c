//! The one spelling of a URL that every rule and every request judges: surrounding
//! whitespace (Unicode included) trimmed, the host lower-cased, in its IDNA (punycode)
//! form, without a trailing dot. Mirror rules, allow/block, `--dry-run`, credentials and the
//! fetch all see this spelling, so no other spelling of a host can slip past a rule.

use url::{Host, Url};

/// `text` in the spelling rules and requests judge. Text that does not parse as a URL comes
/// back trimmed only (it fails later, when it is parsed as a source).
pub fn normalize_url(text: &str) -> String {
    let trimmed = text.trim();
    match Url::parse(trimmed) {
        Ok(mut url) => {
            // `url` already lower-cases and IDNA-encodes special schemes' hosts; a trailing
            // dot names the same host in DNS, so it is dropped too.
            let special = matches!(url.scheme(), "http" | "https" | "ftp");
            if let Some(Host::Domain(domain)) = url.host()
                && special
                && domain.ends_with('.')
            {
                let bare = domain.trim_end_matches('.').to_string();
                if !bare.is_empty() {
                    let _ = url.set_host(Some(&bare));
                }
            }
            url.to_string()
        }
        Err(_) => trimmed.to_string(),
    }
}

/// A host name (or `host:port`) as written by a user, in the same spelling as the hosts of
/// [`normalize_url`]'s URLs; `None` if it is not a host. Glob stars (`*.corp.example`)
/// survive.
pub fn normalize_host(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.contains(['/', '?', '#', '@']) {
        return None;
    }
    let url = Url::parse(&format!("http://{trimmed}/")).ok()?;
    let host = match url.host()? {
        Host::Domain(domain) => domain.trim_end_matches('.').to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    };
    if host.is_empty() {
        return None;
    }
    // The port as written (an `http` default of 80 is still a port the user named).
    let written_port = trimmed
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(_, p)| p.parse::<u16>().ok());
    Some(match written_port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_for_every_spelling() {
        for spelled in [
            "https://github.com/a/b",
            "\u{3000}https://github.com/a/b",
            "\u{a0}https://GitHub.COM/a/b ",
            "https://github.com./a/b",
            "\thttps://GITHUB.com../a/b\n",
        ] {
            assert_eq!(
                normalize_url(spelled),
                "https://github.com/a/b",
                "{spelled:?}"
            );
        }
        assert_eq!(
            normalize_url("https://bücher.example/x"),
            "https://xn--bcher-kva.example/x"
        );
        assert_eq!(normalize_url(" not a url "), "not a url");
        assert_eq!(normalize_url("s3://Bucket./k"), "s3://Bucket./k");
    }

    #[test]
    fn hosts_as_users_write_them() {
        assert_eq!(
            normalize_host("Mirror.Corp.Test.").as_deref(),
            Some("mirror.corp.test")
        );
        assert_eq!(
            normalize_host("h.test:8443").as_deref(),
            Some("h.test:8443")
        );
        assert_eq!(normalize_host("h.test:80").as_deref(), Some("h.test:80"));
        assert_eq!(
            normalize_host("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_host("*.corp.example").as_deref(),
            Some("*.corp.example")
        );
        assert_eq!(normalize_host("[::1]:9000").as_deref(), Some("[::1]:9000"));
        assert_eq!(normalize_host("a/b"), None);
        assert_eq!(normalize_host(""), None);
    }
}
