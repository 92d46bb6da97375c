//! What came back instead of the file, in plain words ("an HTML page, starting
//! `<!DOCTYPE html>`", "an empty body", "a JSON document"), from the first bytes of the body
//! and its `Content-Type`: a login page or a captive portal is the most confusing failure
//! there is when all one sees is "sha256 mismatch".

/// How many bytes of a body [`describe`] looks at.
pub const HEAD: usize = 256;

/// Words for a body that is not the expected file, given its first bytes (`head`, at most
/// [`HEAD`]), its whole length and its `Content-Type`; `None` when it looks like any binary
/// file (then the hashes say it all).
pub fn describe(head: &[u8], length: u64, content_type: Option<&str>) -> Option<String> {
    if length == 0 {
        return Some("the source sent an empty body".to_string());
    }
    let text = String::from_utf8_lossy(head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head));
    let start = text.trim_start();
    let lower = start.to_ascii_lowercase();
    let media = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let html = lower.starts_with("<!doctype html")
        || lower.starts_with("<html")
        || (media == "text/html" && start.starts_with('<'));
    let kind = if html {
        "an HTML page (a login page, a captive portal or an error page?)"
    } else if media.ends_with("json") || start.starts_with('{') && lower.contains('"') {
        "a JSON document (an error message?)"
    } else if media.ends_with("xml") || lower.starts_with("<?xml") {
        "an XML document (an error message?)"
    } else if media.starts_with("text/") && printable(start) {
        "a text document"
    } else {
        return None;
    };
    Some(format!(
        "the source sent {kind}, starting `{}`",
        excerpt(start)
    ))
}

/// Words for a body that nothing can verify but that is plainly not the file `name`: an
/// empty body, or an HTML page where the name is not that of a page. Other content (JSON,
/// text) may well be the file, so it gets no words here.
pub fn unexpected(
    name: &str,
    head: &[u8],
    length: u64,
    content_type: Option<&str>,
) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let page_name = [".html", ".htm", ".xhtml"]
        .iter()
        .any(|e| lower.ends_with(e));
    let words = describe(head, length, content_type)?;
    let page = words.contains("an HTML page") && !page_name;
    (length == 0 || page).then_some(words)
}

/// Words for a source whose `Content-Type` says it is sending a page rather than a file,
/// before its body is read; `None` for any other type.
pub fn describe_type(content_type: Option<&str>) -> Option<String> {
    let media = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let kind = match media.as_str() {
        "text/html" | "application/xhtml+xml" => "an HTML page (a login page, a captive portal?)",
        m if m.ends_with("json") => "a JSON document (an error message?)",
        _ => return None,
    };
    Some(format!(
        "the source says it is sending {kind}: Content-Type {media}"
    ))
}

/// The first line of `text`, shortened, with anything unprintable dropped.
fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let clean: String = line
        .chars()
        .filter(|c| !c.is_control() && *c != '`')
        .collect();
    match clean.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

fn printable(text: &str) -> bool {
    text.chars()
        .take(HEAD)
        .all(|c| !c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_came_back() {
        let html = b"\n  <!DOCTYPE html>\n<html><head><title>Sign in</title>";
        let said = describe(html, 5_000, Some("text/html; charset=utf-8")).unwrap();
        assert!(said.contains("an HTML page"), "{said}");
        assert!(said.contains("starting `<!DOCTYPE html>`"), "{said}");
        assert_eq!(
            describe(b"", 0, None).unwrap(),
            "the source sent an empty body"
        );
        let json = br#"{"message": "API rate limit exceeded"}"#;
        let said = describe(json, 40, Some("application/json")).unwrap();
        assert!(
            said.contains("a JSON document") && said.contains("rate limit"),
            "{said}"
        );
        let xml = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>";
        assert!(describe(xml, 80, None).unwrap().contains("XML"));
        // A binary file that is merely the wrong one gets no words.
        assert_eq!(describe(b"\x1f\x8b\x08\x00", 4, None), None);
        assert_eq!(
            describe(b"\x1f\x8b\x08\x00", 4, Some("application/gzip")),
            None
        );
    }

    #[test]
    fn excerpts_are_short_and_one_line() {
        let long = format!("<html>{}\nsecond line", "x".repeat(200));
        let said = describe(long.as_bytes(), 300, None).unwrap();
        assert!(!said.contains("second") && said.contains('…'), "{said}");
    }

    #[test]
    fn flags_pages_and_nothing_where_a_file_was_wanted() {
        let page = b"<!DOCTYPE html><html>";
        assert!(unexpected("f.tar.gz", page, 21, Some("text/html")).is_some());
        assert!(unexpected("index.html", page, 21, Some("text/html")).is_none());
        assert!(unexpected("f.tar.gz", b"", 0, None).is_some());
        assert!(unexpected("f.json", b"{\"a\": 1}", 8, Some("application/json")).is_none());
        assert!(unexpected("f.tar.gz", b"\x1f\x8b", 2, None).is_none());
    }

    #[test]
    fn names_page_types() {
        assert!(describe_type(Some("text/html; charset=utf-8")).is_some());
        assert!(describe_type(Some("application/problem+json")).is_some());
        assert_eq!(describe_type(Some("application/octet-stream")), None);
        assert_eq!(describe_type(Some("application/gzip")), None);
        assert_eq!(describe_type(None), None);
    }
}
