//! Editing a JSON document as text: a value is found by its place and replaced, or a member
//! or an item is inserted next to its siblings (with their spacing), and every byte outside
//! the edit stays as it was: key order, indentation, number spelling, the final newline.
//! (Re-serialising through serde_json would sort the keys, and its `preserve_order` feature
//! would change the serde_json the shipped `ptex` is built with.)

use std::ops::Range;

use serde_json::Value;

/// One step of a path into a document.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// The member of an object with this key.
    Key(&'a str),
    /// The item of an array that is an object whose `"name"` is this string.
    Named(&'a str),
}

/// A JSON document, kept as its text.
pub struct Document {
    text: String,
}

/// Where a value sits in the text.
struct Node {
    span: Range<usize>,
    kind: Kind,
}

enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    Scalar,
}

struct Member {
    key: String,
    /// Where the key's opening quote is.
    start: usize,
    /// From the key's closing quote to its value's first byte (`: `).
    colon: Range<usize>,
    value: Node,
}

/// Where to put a new item of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    First,
    Last,
}

impl Document {
    /// Takes `text`, which must be valid JSON.
    pub fn parse(text: String) -> Result<Document, String> {
        serde_json::from_str::<Value>(&text).map_err(|e| format!("not valid JSON: {e}"))?;
        let document = Document { text };
        document.root()?;
        Ok(document)
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value at `path`, if there is one.
    pub fn get(&self, path: &[Step]) -> Option<Value> {
        let root = self.root().ok()?;
        let node = find(&root, path, &self.text)?;
        serde_json::from_str(&self.text[node.span.clone()]).ok()
    }

    /// Sets member `key` of the object at `path` to `value` (JSON text): its value is
    /// replaced where the member exists, else the member is added after the last one.
    pub fn set(&mut self, path: &[Step], key: &str, value: &str) -> Result<(), String> {
        let root = self.root()?;
        let node = find(&root, path, &self.text).ok_or_else(|| missing(path))?;
        let Kind::Object(members) = &node.kind else {
            return Err(format!("{} is not an object", describe(path)));
        };
        // With duplicate keys, the last one is the one JSON readers keep.
        let edit = match members.iter().rev().find(|m| m.key == key) {
            Some(member) => (member.value.span.clone(), value.to_string()),
            None => {
                let quoted = serde_json::to_string(key).map_err(|e| e.to_string())?;
                match (members.first(), members.last()) {
                    (Some(first), Some(last)) => {
                        let second = members.get(1).map(|m| m.start);
                        let first_span = first.start..first.value.span.end;
                        let gap = self.separator(node.span.start, first_span, second);
                        let colon = &self.text[first.colon.clone()];
                        let at = last.value.span.end;
                        (at..at, format!(",{gap}{quoted}{colon}{value}"))
                    }
                    _ => {
                        let at = node.span.start + 1;
                        (at..at, format!("{quoted}: {value}"))
                    }
                }
            }
        };
        self.apply(edit)
    }

    /// Adds `value` (JSON text) to the array at `path`, first or last, spaced like the
    /// items already there.
    pub fn insert(&mut self, path: &[Step], at: At, value: &str) -> Result<(), String> {
        let root = self.root()?;
        let node = find(&root, path, &self.text).ok_or_else(|| missing(path))?;
        let Kind::Array(items) = &node.kind else {
            return Err(format!("{} is not a list", describe(path)));
        };
        let edit = match (items.first(), items.last()) {
            (Some(first), Some(last)) => {
                let second = items.get(1).map(|item| item.span.start);
                let gap = self.separator(node.span.start, first.span.clone(), second);
                match at {
                    At::First => (first.span.start..first.span.start, format!("{value},{gap}")),
                    At::Last => (last.span.end..last.span.end, format!(",{gap}{value}")),
                }
            }
            _ => {
                let inside = node.span.start + 1;
                (inside..inside, value.to_string())
            }
        };
        self.apply(edit)
    }

    /// The blank text between siblings: what follows the comma between the first two, else
    /// what follows the opening bracket, else a space where the document spaces its commas.
    fn separator(&self, open: usize, first: Range<usize>, second: Option<usize>) -> &str {
        if let Some((_, after)) = second.and_then(|s| self.text[first.end..s].split_once(',')) {
            return after;
        }
        match &self.text[open + 1..first.start] {
            "" if self.text.contains(", ") => " ",
            gap => gap,
        }
    }

    fn apply(&mut self, (range, with): (Range<usize>, String)) -> Result<(), String> {
        let mut text = self.text.clone();
        text.replace_range(range, &with);
        // Every edit must leave valid JSON; a bug here must not write a broken file.
        *self = Document::parse(text).map_err(|e| format!("an edit went wrong: {e}"))?;
        Ok(())
    }

    fn root(&self) -> Result<Node, String> {
        let mut scanner = Scanner {
            bytes: self.text.as_bytes(),
            at: 0,
        };
        scanner.value()
    }
}

fn find<'n>(node: &'n Node, path: &[Step], text: &str) -> Option<&'n Node> {
    let Some((step, rest)) = path.split_first() else {
        return Some(node);
    };
    let next = match (step, &node.kind) {
        (Step::Key(key), Kind::Object(members)) => {
            &members.iter().rev().find(|m| m.key == *key)?.value
        }
        (Step::Named(name), Kind::Array(items)) => items.iter().find(|item| {
            let Kind::Object(members) = &item.kind else {
                return false;
            };
            members.iter().any(|m| {
                m.key == "name"
                    && serde_json::from_str::<String>(&text[m.value.span.clone()]).ok()
                        == Some(name.to_string())
            })
        })?,
        _ => return None,
    };
    find(next, rest, text)
}

fn describe(path: &[Step]) -> String {
    if path.is_empty() {
        return "the document".to_string();
    }
    let steps: Vec<String> = path
        .iter()
        .map(|step| match step {
            Step::Key(key) => key.to_string(),
            Step::Named(name) => format!("[name={name:?}]"),
        })
        .collect();
    format!("`{}`", steps.join("."))
}

fn missing(path: &[Step]) -> String {
    format!("there is no {}", describe(path))
}

/// Finds where each value of valid JSON text starts and ends.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn value(&mut self) -> Result<Node, String> {
        self.blank();
        let start = self.at;
        let kind = match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                self.blank();
                if self.peek()? == b'}' {
                    self.at += 1;
                } else {
                    loop {
                        self.blank();
                        let start = self.at;
                        let key = self.string()?;
                        let key_end = self.at;
                        self.blank();
                        self.expect(b':')?;
                        self.blank();
                        let colon = key_end..self.at;
                        let value = self.value()?;
                        members.push(Member {
                            key,
                            start,
                            colon,
                            value,
                        });
                        self.blank();
                        match self.next()? {
                            b',' => continue,
                            b'}' => break,
                            other => return Err(self.unexpected(other)),
                        }
                    }
                }
                Kind::Object(members)
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.blank();
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.blank();
                        match self.next()? {
                            b',' => continue,
                            b']' => break,
                            other => return Err(self.unexpected(other)),
                        }
                    }
                }
                Kind::Array(items)
            }
            b'"' => {
                self.string()?;
                Kind::Scalar
            }
            _ => {
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| !b",]} \t\r\n".contains(b))
                {
                    self.at += 1;
                }
                Kind::Scalar
            }
        };
        Ok(Node {
            span: start..self.at,
            kind,
        })
    }

    /// A string, decoded.
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.expect(b'"')?;
        loop {
            match self.next()? {
                b'\\' => self.at += 1,
                b'"' => break,
                _ => {}
            }
        }
        let raw = std::str::from_utf8(&self.bytes[start..self.at]).map_err(|e| e.to_string())?;
        serde_json::from_str(raw).map_err(|e| e.to_string())
    }

    fn blank(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Result<u8, String> {
        self.bytes
            .get(self.at)
            .copied()
            .ok_or_else(|| "unexpected end of the text".to_string())
    }

    fn next(&mut self) -> Result<u8, String> {
        let byte = self.peek()?;
        self.at += 1;
        Ok(byte)
    }

    fn expect(&mut self, wanted: u8) -> Result<(), String> {
        match self.next()? {
            byte if byte == wanted => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }

    fn unexpected(&self, byte: u8) -> String {
        format!("unexpected {:?} at byte {}", byte as char, self.at - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFT: &str = r#"{
  "scie": {"lift": {
    "name": "x",
    "files": [
      {"name": "a", "size": 1,   "hash": "old"},
      {"name": "b"}
    ]
  }},
  "z-last": [1.50, 2e3]
}
"#;

    fn doc(text: &str) -> Document {
        Document::parse(text.to_string()).unwrap()
    }

    #[test]
    fn replaces_a_value_and_nothing_else() {
        let mut d = doc(LIFT);
        let a = [
            Step::Key("scie"),
            Step::Key("lift"),
            Step::Key("files"),
            Step::Named("a"),
        ];
        d.set(&a, "hash", "\"new\"").unwrap();
        assert_eq!(d.text(), LIFT.replace("\"old\"", "\"new\""));
    }

    #[test]
    fn adds_members_and_items_spaced_like_their_siblings() {
        let mut d = doc(LIFT);
        let files = [Step::Key("scie"), Step::Key("lift"), Step::Key("files")];
        d.set(
            &[files[0], files[1], files[2], Step::Named("b")],
            "size",
            "7",
        )
        .unwrap();
        d.insert(&files, At::Last, r#"{"name": "c"}"#).unwrap();
        d.insert(&files, At::First, r#"{"name": "0"}"#).unwrap();
        d.set(&[], "ptex", "{}").unwrap();
        d.set(&[Step::Key("ptex")], "c", "\"u\"").unwrap();
        let expected = LIFT
            .replace(
                r#"      {"name": "a""#,
                "      {\"name\": \"0\"},\n      {\"name\": \"a\"",
            )
            .replace(
                r#"{"name": "b"}"#,
                "{\"name\": \"b\", \"size\": 7},\n      {\"name\": \"c\"}",
            )
            .replace("2e3]\n}", "2e3],\n  \"ptex\": {\"c\": \"u\"}\n}");
        assert_eq!(d.text(), expected);
        assert_eq!(
            d.get(&[Step::Key("ptex"), Step::Key("c")]),
            Some("u".into())
        );
    }

    #[test]
    fn compact_text_and_escaped_keys() {
        let mut d = doc(r#"{"a\"b":[],"n":{}}"#);
        d.insert(&[Step::Key("a\"b")], At::Last, "1").unwrap();
        d.insert(&[Step::Key("a\"b")], At::Last, "2").unwrap();
        d.set(&[Step::Key("n")], "k", "true").unwrap();
        d.set(&[], "a\"b", "null").unwrap();
        assert_eq!(d.text(), r#"{"a\"b":null,"n":{"k": true}}"#);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let mut d = doc(LIFT);
        assert!(d.set(&[Step::Key("nope")], "k", "1").is_err());
        assert!(d.set(&[Step::Key("z-last")], "k", "1").is_err());
        assert!(d.insert(&[Step::Key("scie")], At::Last, "1").is_err());
        assert!(d.set(&[], "k", "not json").is_err());
        assert_eq!(d.text(), LIFT);
        assert!(Document::parse("{".to_string()).is_err());
    }
}
