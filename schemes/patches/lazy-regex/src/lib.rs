//! A stand-in for the `lazy-regex` crate, patched in for suppaftp (the FTP client of
//! opendal's FTP service). suppaftp parses a handful of FTP replies (PASV, EPSV, SIZE, MDTM)
//! and `LIST` lines with `lazy_regex!` statics; lazy-regex always brings the full `regex`
//! engine and its Unicode tables (about 1.1 MB of ptex's binary), while these ASCII patterns
//! need no more than regex-lite. This crate offers exactly what suppaftp uses: `Lazy`,
//! `Regex` and the `lazy_regex!` macro.

pub use regex_lite::Regex;
pub use std::sync::LazyLock as Lazy;

/// A `Lazy<Regex>` built from a pattern literal on first use.
#[macro_export]
macro_rules! lazy_regex {
    ($pattern:literal) => {
        $crate::Lazy::new(|| $crate::Regex::new($pattern).expect("a valid regex literal"))
    };
}

#[cfg(test)]
mod tests {
    use super::{Lazy, Regex};

    // suppaftp 10's patterns (src/regex.rs and src/list.rs), with replies they must match.
    static PASV: Lazy<Regex> = lazy_regex!(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)");
    static EPSV: Lazy<Regex> = lazy_regex!(r"\(\|\|\|(\d+)\|\)");
    static MDTM: Lazy<Regex> = lazy_regex!(r"\b(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\b");
    static SIZE: Lazy<Regex> = lazy_regex!(r"\s+(\d+)\s*$");
    static POSIX_LS: Lazy<Regex> = lazy_regex!(
        r#"^([\-ld])([\-rwxsStT]{9})\s+(\d+)\s+([^ ]+)\s+([^ ]+)\s+(\d+)\s+([^ ]+\s+\d{1,2}\s+(?:\d{1,2}:\d{1,2}|\d{4}))\s+(.+)$"#
    );
    static DOS_LS: Lazy<Regex> =
        lazy_regex!(r#"^(\d{2}\-\d{2}\-\d{2}\s+\d{2}:\d{2}\s*[AP]M)\s+(<DIR>)?([\d,]*)\s+(.+)$"#);

    fn groups(re: &Regex, text: &str) -> Vec<String> {
        let caps = re.captures(text).expect("a match");
        (1..caps.len())
            .map(|i| caps.get(i).map_or("", |m| m.as_str()).to_string())
            .collect()
    }

    #[test]
    fn suppaftp_patterns_parse_real_replies() {
        let pasv = groups(&PASV, "227 Entering Passive Mode (127,0,0,1,195,149).");
        assert_eq!(pasv, ["127", "0", "0", "1", "195", "149"]);
        assert_eq!(
            groups(&EPSV, "229 Entering extended passive mode (|||50021|)."),
            ["50021"]
        );
        assert_eq!(groups(&SIZE, "213 1048576"), ["1048576"]);
        assert_eq!(
            groups(&MDTM, "213 20240131235959"),
            ["2024", "01", "31", "23", "59", "59"]
        );
        let line = "-rw-r--r--   1 owner    group     1048576 Jan 31 23:59 pbs 3.12.tar.gz";
        let posix = groups(&POSIX_LS, line);
        assert_eq!(posix[0], "-");
        assert_eq!(posix[5], "1048576");
        assert_eq!(posix[6], "Jan 31 23:59");
        assert_eq!(posix[7], "pbs 3.12.tar.gz");
        let dos = groups(&DOS_LS, "01-31-24  11:59PM       <DIR>          pbs");
        assert_eq!(dos[1], "<DIR>");
        assert_eq!(dos[3], "pbs");
        assert!(PASV.captures("227 Entering Passive Mode").is_none());
    }
}
