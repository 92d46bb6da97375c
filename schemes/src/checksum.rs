//! The sha256 a response's headers declare for the whole file, as mirrors send it:
//! Artifactory's and Nexus's `X-Checksum-Sha256` (hex), S3's `x-amz-checksum-sha256` and a
//! `sha256=` item of GCS's `x-goog-hash` (base64). A checksum of part checksums (S3's
//! multipart `…-N` form) is not a file's sha256 and is ignored, as is anything malformed.

use reqwest::header::HeaderMap;

/// The header that declared a sha256, and that sha256 as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredSha256 {
    pub header: &'static str,
    pub sha256: String,
}

/// The first sha256 the headers declare for the whole file, if any.
pub(crate) fn declared_sha256(headers: &HeaderMap) -> Option<DeclaredSha256> {
    let values = |name: &'static str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    let found = |header, sha256| Some(DeclaredSha256 { header, sha256 });
    if let Some(hex) = values("x-checksum-sha256").find_map(hex_sha256) {
        return found("X-Checksum-Sha256", hex);
    }
    let composite = headers
        .get("x-amz-checksum-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    if !composite && let Some(hex) = values("x-amz-checksum-sha256").find_map(base64_sha256) {
        return found("x-amz-checksum-sha256", hex);
    }
    let goog = values("x-goog-hash").find_map(|item| base64_sha256(item.strip_prefix("sha256=")?));
    goog.and_then(|hex| found("x-goog-hash", hex))
}

/// `text` as a sha256 in lowercase hex, if it is 64 hex digits.
fn hex_sha256(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// `text` as a sha256 in lowercase hex, if it is the base64 of 32 bytes.
fn base64_sha256(text: &str) -> Option<String> {
    let bytes = base64_decode(text)?;
    (bytes.len() == 32).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Standard base64 with padding; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let padding = text.iter().rev().take_while(|&&c| c == b'=').count();
    if padding > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut bits = 0u32;
    for (index, &c) in text[..text.len() - padding].iter().enumerate() {
        bits = bits << 6 | u32::from(value(c)?);
        if index % 4 == 3 {
            out.extend_from_slice(&bits.to_be_bytes()[1..]);
            bits = 0;
        }
    }
    match padding {
        1 => out.extend_from_slice(&(bits << 6).to_be_bytes()[1..3]),
        2 => out.push((bits << 12 >> 16) as u8),
        _ => {}
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    // sha256("abc")
    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B64: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_each_mirror_header() {
        let upper = HEX.to_uppercase();
        let goog = format!("crc32c=n03x6A==, sha256={B64}");
        for (pairs, header) in [
            (
                vec![("x-checksum-sha256", upper.as_str())],
                "X-Checksum-Sha256",
            ),
            (
                vec![("x-amz-checksum-sha256", B64)],
                "x-amz-checksum-sha256",
            ),
            (vec![("x-goog-hash", goog.as_str())], "x-goog-hash"),
        ] {
            let found = declared_sha256(&headers(&pairs)).unwrap();
            assert_eq!(found.header, header);
            assert_eq!(found.sha256, HEX);
        }
    }

    #[test]
    fn ignores_part_checksums_and_garbage() {
        for pairs in [
            vec![("x-amz-checksum-sha256", format!("{B64}-3"))],
            vec![
                ("x-amz-checksum-sha256", B64.to_string()),
                ("x-amz-checksum-type", "COMPOSITE".to_string()),
            ],
            vec![(
                "x-goog-hash",
                "crc32c=n03x6A==,md5=kAFQmDzST7DWlj99KOF/cg==".into(),
            )],
            vec![("x-checksum-sha256", "abc".into())],
            vec![("x-amz-checksum-sha256", "not base64!".into())],
        ] {
            let pairs: Vec<(&'static str, &str)> =
                pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(declared_sha256(&headers(&pairs)), None, "{pairs:?}");
        }
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YWJ"), None);
    }
}
