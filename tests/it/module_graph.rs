//! No module imports a module that imports it, directly or through others (issue 15): for
//! each crate of the workspace (`src/` with `src/bin/ptex-publish`, `schemes/src`,
//! `config/src`), the graph of module -> modules it references (`use crate::x`,
//! `crate::x::`, `super::x`, `self::x`, a child's name; `#[cfg(test)]` items left out) has no
//! cycle. `PTEX_PRINT_MODULE_GRAPH=1 cargo test --test it module_graph:: -- --nocapture`
//! prints every graph.
//!
//! The sources are read as tokens (comments, strings and character literals dropped), not
//! compiled: paths are resolved the way rustc resolves them for the forms this workspace
//! uses, and a file the reader does not understand fails the test instead of being skipped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The name of a crate root's own node (its `lib.rs` or `main.rs`).
const ROOT: &str = "(crate root)";

// --- tokens ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(name) => Some(name),
            _ => None,
        }
    }

    fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    fn is_ident(&self, name: &str) -> bool {
        self.ident() == Some(name)
    }
}

/// Rust source as identifiers, `::` and punctuation; comments, string, byte-string, raw-string
/// and character literals, numbers and lifetimes leave nothing behind.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if let Some(end) = raw_string_end(&chars, i) {
            line += chars[i..end].iter().filter(|&&c| c == '\n').count();
            i = end;
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                line += usize::from(chars[i] == '\n');
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            // A character literal ('x', '\n', '\u{1F600}', b'x') or a lifetime ('a).
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                i = q + 3; // past the backslash and the character it escapes
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                i = q + 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while at(i).is_alphanumeric()
                || at(i) == '_'
                || (at(i) == '.' && at(i + 1).is_ascii_digit())
            {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            if c == 'r' && at(i + 1) == '#' {
                i += 2; // a raw identifier: r#type is `type`
            }
            let begin = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let tok = Tok::Ident(chars[begin..i].iter().collect());
            out.push(Token {
                tok,
                line: start_line,
            });
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::Path,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The index just past a raw string (`r"…"`, `r#"…"#`, `br##"…"##`, `cr"…"`) starting at `i`.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    // `i` is where a token starts, so an `r` here is no identifier's tail.
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(chars.len())
}

/// The index of the token that closes the bracket opened at `open`, or the end.
fn closing(tokens: &[Token], open: usize) -> usize {
    let (o, c) = match tokens[open].tok {
        Tok::Punct('{') => ('{', '}'),
        Tok::Punct('[') => ('[', ']'),
        Tok::Punct('(') => ('(', ')'),
        _ => return open,
    };
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        if token.is(o) {
            depth += 1;
        } else if token.is(c) {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    tokens.len()
}

/// `tokens` without the items marked `#[cfg(test)]` (the unit tests and their helpers).
fn without_test_items(tokens: &[Token]) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if !is_cfg_test(tokens, i) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // Skip this attribute and any others on the same item, then the item itself.
        while tokens.get(i).is_some_and(|t| t.is('#'))
            && tokens.get(i + 1).is_some_and(|t| t.is('['))
        {
            i = closing(tokens, i + 1) + 1;
        }
        let statement = tokens.get(i).is_some_and(|t| {
            ["use", "const", "static", "type", "let"]
                .iter()
                .any(|k| t.is_ident(k))
        });
        while i < tokens.len() {
            if tokens[i].is(';') {
                i += 1;
                break;
            }
            if tokens[i].is('{') || tokens[i].is('(') || tokens[i].is('[') {
                let close = closing(tokens, i);
                i = close + 1;
                if tokens[close].is('}') && !statement && !tokens.get(i).is_some_and(|t| t.is(';'))
                {
                    break;
                }
                continue;
            }
            i += 1;
        }
    }
    out
}

fn is_cfg_test(tokens: &[Token], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    tokens.len() >= i + want.len()
        && tokens[i..i + want.len()]
            .iter()
            .zip(&want)
            .all(|(t, w)| t.tok == *w)
}

// --- modules --------------------------------------------------------------------------------

/// One file of a crate: its module path (`["os", "unix"]`; empty for the root) and tokens.
struct ModuleFile {
    path: Vec<String>,
    file: PathBuf,
    tokens: Vec<Token>,
}

/// A reference from one module to another, with where it was seen.
#[derive(Debug, Clone)]
struct Reference {
    line: usize,
    text: String,
}

/// A crate's modules and, for each, the modules it references.
struct Graph {
    crate_name: String,
    /// Module name (`os::unix`, or [`ROOT`]) -> referenced module -> the first reference.
    edges: BTreeMap<String, BTreeMap<String, Reference>>,
    files: BTreeMap<String, PathBuf>,
}

fn name_of(path: &[String]) -> String {
    if path.is_empty() {
        ROOT.to_string()
    } else {
        path.join("::")
    }
}

/// Every file module of the crate whose root file is `root`, following `mod x;` declarations
/// (not those under `#[cfg(test)]`).
fn crate_files(root: &Path) -> Vec<ModuleFile> {
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(Vec::<String>::new(), root.to_path_buf())]);
    while let Some((path, file)) = queue.pop_front() {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let tokens = without_test_items(&tokenize(&text));
        // The directory of its children: next to a root or mod.rs, else in a folder of its name.
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let dir = if path.is_empty() || stem == "mod" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let mut depth = 0;
        for (i, token) in tokens.iter().enumerate() {
            if token.is('{') {
                depth += 1;
            } else if token.is('}') {
                depth -= 1;
            } else if depth == 0
                && token.is_ident("mod")
                && tokens.get(i + 2).is_some_and(|t| t.is(';'))
                && let Some(name) = tokens.get(i + 1).and_then(Token::ident)
            {
                let child = [
                    dir.join(format!("{name}.rs")),
                    dir.join(name).join("mod.rs"),
                ]
                .into_iter()
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{}: no file for `mod {name};`", file.display()));
                let mut child_path = path.clone();
                child_path.push(name.to_string());
                queue.push_back((child_path, child));
            }
        }
        files.push(ModuleFile { path, file, tokens });
    }
    files
}

/// The paths a `use` tree names, from the token after `use` to its `;`: `a::{b, c::d as e}`
/// gives `a::b` and `a::c::d`; `a::{self}` gives `a`; `a::*` gives `a`.
fn use_paths(
    tokens: &[Token],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let mut path = prefix.to_vec();
    let line = tokens.get(i).map_or(0, |t| t.line);
    while i < tokens.len() {
        let token = &tokens[i];
        if token.is_ident("self") && !path.is_empty() {
            i += 1;
        } else if let Some(name) = token.ident() {
            if name == "as" {
                i += 2; // the alias
                continue;
            }
            path.push(name.to_string());
            i += 1;
        } else if token.tok == Tok::Path || token.is('*') {
            i += 1;
        } else if token.is('{') {
            i += 1;
            while i < tokens.len() && !tokens[i].is('}') {
                i = use_paths(tokens, i, &path, out);
                if tokens.get(i).is_some_and(|t| t.is(',')) {
                    i += 1;
                }
            }
            path.clear(); // the group named them all
            i += 1;
        } else {
            break; // `,`, `}` or `;`: this branch of the tree ends
        }
    }
    if !path.is_empty() {
        out.push((path, line));
    }
    i
}

/// Every path in `tokens` that may name a module of this crate, with its line: `use` trees in
/// full, and elsewhere each `a::b::c` that does not continue another path.
fn paths(tokens: &[Token]) -> Vec<(Vec<String>, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let continues = i > 0 && (tokens[i - 1].tok == Tok::Path || tokens[i - 1].is('.'));
        if tokens[i].is_ident("use") && !continues {
            let mut found = Vec::new();
            let end = use_paths(tokens, i + 1, &[], &mut found);
            out.extend(found.into_iter().map(|(p, line)| (p, line, i)));
            i = end.max(i + 1);
        } else if tokens[i].ident().is_some()
            && !continues
            && tokens.get(i + 1).is_some_and(|t| t.tok == Tok::Path)
        {
            let start = i;
            let mut path = Vec::new();
            while let Some(name) = tokens.get(i).and_then(Token::ident) {
                path.push(name.to_string());
                if tokens.get(i + 1).is_some_and(|t| t.tok == Tok::Path) {
                    i += 2;
                } else {
                    i += 1;
                    break;
                }
            }
            out.push((path, tokens[start].line, start));
        } else {
            i += 1;
        }
    }
    out
}

/// The inline modules (`mod sys { … }`) around each token: their names, outermost first.
fn inline_scopes(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut scopes = Vec::with_capacity(tokens.len());
    let mut open: Vec<(String, usize)> = Vec::new(); // (name, index of its closing brace)
    for (i, token) in tokens.iter().enumerate() {
        while open.last().is_some_and(|(_, close)| *close < i) {
            open.pop();
        }
        scopes.push(open.iter().map(|(name, _)| name.clone()).collect());
        if token.is_ident("mod")
            && let (Some(name), Some(brace)) =
                (tokens.get(i + 1).and_then(Token::ident), tokens.get(i + 2))
            && brace.is('{')
        {
            open.push((name.to_string(), closing(tokens, i + 2)));
        }
    }
    scopes
}

/// The crate's graph, from its root file.
fn graph(crate_name: &str, root: &Path) -> Graph {
    let files = crate_files(root);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.path.clone()).collect();
    let root_file = files.iter().find(|f| f.path.is_empty()).unwrap();
    // What the root brings in by `use`: `crate::Name` means the module it comes from.
    let mut reexports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, _, start) in paths(&root_file.tokens) {
        if root_file.tokens[start].is_ident("use") && path.len() > 1 {
            let mut target = path.clone();
            if target[0] == "crate" {
                target.remove(0);
            }
            reexports.insert(path.last().unwrap().clone(), target);
        }
    }
    // The module an absolute path (`crate::` left off) points into: its longest prefix that
    // is a module; for a name at the root, the module the root brought it in from.
    let longest = |absolute: &[String]| -> Vec<String> {
        (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].to_vec())
            .find(|prefix| modules.contains(prefix))
            .unwrap_or_default()
    };
    let module_of = |absolute: &[String]| -> Vec<String> {
        let found = longest(absolute);
        match absolute.first().and_then(|name| reexports.get(name)) {
            Some(target) if found.is_empty() => longest(target),
            _ => found,
        }
    };
    let mut edges: BTreeMap<String, BTreeMap<String, Reference>> = BTreeMap::new();
    let mut names = BTreeMap::new();
    for file in &files {
        let from = name_of(&file.path);
        // Shown as `src/fetch.rs`, `config/src/file.rs` (a fixture's: from its own folder).
        let shown = [workspace().as_path(), root.parent().unwrap()]
            .into_iter()
            .find_map(|base| file.file.strip_prefix(base).ok())
            .unwrap_or(&file.file);
        names.insert(from.clone(), shown.to_path_buf());
        edges.entry(from.clone()).or_default();
        let scopes = inline_scopes(&file.tokens);
        let inline_children: BTreeSet<&str> = file
            .tokens
            .windows(3)
            .filter(|w| w[0].is_ident("mod") && w[2].is('{'))
            .filter_map(|w| w[1].ident())
            .collect();
        for (path, line, start) in paths(&file.tokens) {
            let mut scope = file.path.clone();
            scope.extend(scopes[start].iter().cloned());
            let mut rest = path.as_slice();
            let absolute: Vec<String> = match rest[0].as_str() {
                "crate" => rest[1..].to_vec(),
                "self" => {
                    scope.extend(rest[1..].iter().cloned());
                    scope
                }
                "super" => {
                    while rest.first().is_some_and(|s| s == "super") {
                        scope.pop();
                        rest = &rest[1..];
                    }
                    scope.extend(rest.iter().cloned());
                    scope
                }
                child => {
                    let mut child_path = scope.clone();
                    child_path.push(child.to_string());
                    if modules.contains(&child_path) || inline_children.contains(child) {
                        scope.extend(rest.iter().cloned());
                        scope
                    } else {
                        continue; // another crate, std, or a name a `use` brought in
                    }
                }
            };
            let to = name_of(&module_of(&absolute));
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert(Reference {
                        line,
                        text: path.join("::"),
                    });
            }
        }
    }
    Graph {
        crate_name: crate_name.to_string(),
        edges,
        files: names,
    }
}

// --- cycles ---------------------------------------------------------------------------------

impl Graph {
    /// The strongly connected components of more than one module (Tarjan's algorithm).
    fn tangles(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            found: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.found.push(component);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for v in self.edges.keys() {
            if !state.index.contains_key(v.as_str()) {
                visit(&mut state, v);
            }
        }
        state.found.sort();
        state.found
    }

    /// The shortest way from `from` back to itself (breadth first), as module names.
    fn shortest_cycle(&self, from: &str) -> Option<Vec<String>> {
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            for w in self.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                if w == from {
                    // Walk back from the last hop, then read it forwards.
                    let mut cycle = vec![from.to_string()];
                    let mut at = v;
                    while at != from {
                        cycle.push(at.to_string());
                        at = came_from[at];
                    }
                    cycle.push(from.to_string());
                    cycle.reverse();
                    return Some(cycle);
                }
                if !came_from.contains_key(w.as_str()) {
                    came_from.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        None
    }

    /// Each tangle, and for each of its modules the shortest cycle through it, every edge
    /// with the reference that makes it: empty when there is no cycle.
    fn cycles_report(&self) -> String {
        let mut text = String::new();
        for tangle in self.tangles() {
            let _ = writeln!(
                text,
                "{}: modules in a cycle: {}",
                self.crate_name,
                tangle.join(", ")
            );
            let mut shown = BTreeSet::new();
            for module in &tangle {
                let Some(cycle) = self.shortest_cycle(module) else {
                    continue;
                };
                let mut key: Vec<String> = cycle[1..].to_vec();
                key.sort();
                if !shown.insert(key) {
                    continue;
                }
                let _ = writeln!(text, "  {}", cycle.join(" -> "));
                for pair in cycle.windows(2) {
                    let why = &self.edges[&pair[0]][&pair[1]];
                    let _ = writeln!(
                        text,
                        "    {} -> {}: {}:{} `{}`",
                        pair[0],
                        pair[1],
                        self.files[&pair[0]].display(),
                        why.line,
                        why.text
                    );
                }
            }
        }
        text
    }

    /// `module -> a, b, c`, one line per module.
    fn render(&self) -> String {
        let mut text = format!("{}:\n", self.crate_name);
        for (from, to) in &self.edges {
            let to: Vec<&str> = to.keys().map(String::as_str).collect();
            let _ = writeln!(text, "  {from} -> {}", to.join(", "));
        }
        text
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Prints the graph when `PTEX_PRINT_MODULE_GRAPH` is set, then fails naming every cycle.
fn assert_acyclic(crate_name: &str, root: &str) {
    let root = workspace().join(root);
    let graph = graph(crate_name, &root);
    if std::env::var_os("PTEX_PRINT_MODULE_GRAPH").is_some_and(|v| !v.is_empty()) {
        eprintln!("{}", graph.render());
    }
    let cycles = graph.cycles_report();
    assert!(
        cycles.is_empty(),
        "a module imports a module that imports it (directly or through others):\n{cycles}"
    );
}

// --- the workspace's crates -----------------------------------------------------------------

#[test]
fn ptex_library_modules_import_in_one_direction() {
    assert_acyclic("ptex (src/lib.rs)", "src/lib.rs");
}

#[test]
fn ptex_binary_modules_import_in_one_direction() {
    assert_acyclic("ptex binary (src/main.rs)", "src/main.rs");
}

#[test]
fn ptex_publish_modules_import_in_one_direction() {
    assert_acyclic(
        "ptex-publish (src/bin/ptex-publish)",
        "src/bin/ptex-publish/main.rs",
    );
}

#[test]
fn ptex_schemes_modules_import_in_one_direction() {
    assert_acyclic("ptex-schemes (schemes/src)", "schemes/src/lib.rs");
}

#[test]
fn ptex_config_modules_import_in_one_direction() {
    assert_acyclic("ptex-config (config/src)", "config/src/lib.rs");
}

// --- the check itself, on a crate written for it ------------------------------------------------

/// A crate in a temp dir: `files` as (path under it, text).
fn fixture(files: &[(&str, &str)]) -> (tempfile::TempDir, Graph) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let graph = graph("fixture", &dir.path().join("lib.rs"));
    (dir, graph)
}

#[test]
fn the_check_finds_cycles_through_every_form_of_path_and_names_them() {
    let (_dir, graph) = fixture(&[
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\nmod d;\npub use d::Thing;\n",
        ),
        // a -> b by a grouped `use`, b -> c::h by an expression path, c::h -> a by `super::`
        // from a file in a folder.
        (
            "a.rs",
            "use crate::{b::{self, B}, d};\nfn f() -> B { b::g() }\n",
        ),
        ("b.rs", "pub fn g() { crate::c::h::run(); }\n"),
        ("c.rs", "mod h;\n"),
        ("c/h.rs", "pub fn run() { super::super::a::f2(); }\n"),
        ("d.rs", "pub struct Thing;\n"),
    ]);
    let report = graph.cycles_report();
    assert!(
        report.contains("modules in a cycle: a, b, c::h"),
        "{report}"
    );
    assert!(report.contains("a -> b -> c::h -> a"), "{report}");
    assert!(report.contains("a.rs:1 `crate::b`"), "{report}");
    assert!(
        report.contains("c/h.rs:1 `super::super::a::f2`"),
        "{report}"
    );
    assert_eq!(graph.edges["a"].keys().collect::<Vec<_>>(), ["b", "d"]);
}

#[test]
fn tests_comments_strings_and_other_crates_make_no_edge() {
    let (_dir, graph) = fixture(&[
        ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
        (
            "a.rs",
            "//! Talks about crate::b::x in a comment.\n\
             pub struct A;\n\
             /* crate::b::y /* nested crate::b */ */\n\
             const S: &str = \"crate::b::z\";\n\
             const R: &str = r#\"super::b::q \"# ;\n\
             const C: char = '\"';\n\
             fn f<'a>(x: &'a str) -> std::io::Result<()> { http::get(x); Ok(()) }\n\
             #[cfg(test)]\nmod tests { use crate::b::helper; }\n\
             #[cfg(test)]\nuse crate::b::{p, q};\n",
        ),
        (
            "b.rs",
            "use crate::A;\npub fn g() {}\nmod inner { fn k() { super::g(); } }\n",
        ),
    ]);
    assert_eq!(graph.cycles_report(), "");
    assert!(graph.edges["a"].is_empty(), "{:?}", graph.edges["a"]);
    // `crate::A` is the root's re-export of a::A: the edge goes to `a`, not the root.
    assert_eq!(graph.edges["b"].keys().collect::<Vec<_>>(), ["a"]);
    // And with one real reference back, the cycle is found.
    let (_dir, graph) = fixture(&[
        ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
        ("a.rs", "pub struct A;\nfn f() { crate::b::g(); }\n"),
        ("b.rs", "use crate::A;\npub fn g() {}\n"),
    ]);
    assert!(
        graph.cycles_report().contains("a -> b -> a"),
        "{}",
        graph.cycles_report()
    );
}
