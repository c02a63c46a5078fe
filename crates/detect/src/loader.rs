//! Reading rules files into definitions, with Falco's define / append / override semantics.
//!
//! Mirrors Falco's `rule_loader::reader` + `collector`: items are applied in file order, files
//! in the order given; redefining an item replaces it in place (keeping its original position);
//! `append: true` and `override: {key: append}` extend the previous definition;
//! `override: {key: replace}` replaces single keys; a rule entry with only `enabled` toggles a
//! previous rule. Every definition records its `index` (first definition) and `visibility`
//! (last change), which decide which lists and macros it may reference.

use crate::Priority;
use crate::diag::{Diagnostic, Level, Location};
use crate::yaml::{self, Node, NodeKind, Pos, Style};
use std::collections::{BTreeSet, HashMap};

/// The Falco engine version this loader implements (for `required_engine_version`).
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 63, 0);

/// One source text (a file or a named string).
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name as shown in diagnostics.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// A place in one of the sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// Index into the source list.
    pub src: usize,
    /// Position.
    pub pos: Pos,
}

/// A piece of a condition or output text and where it came from (appends concatenate pieces).
#[derive(Debug, Clone)]
pub struct Segment {
    /// Offset of the piece in the concatenated text.
    pub start: usize,
    /// Where the piece starts in its source.
    pub loc: Loc,
    /// How the scalar was written.
    pub style: Style,
}

/// Text assembled from one or more YAML scalars.
#[derive(Debug, Clone, Default)]
pub struct Text {
    /// The text.
    pub text: String,
    /// Its pieces.
    pub segments: Vec<Segment>,
}

impl Text {
    fn new(text: String, loc: Loc, style: Style) -> Self {
        Text {
            text,
            segments: vec![Segment {
                start: 0,
                loc,
                style,
            }],
        }
    }

    /// Appends with a space, as Falco does.
    fn append(&mut self, other: &Text) {
        if other.text.is_empty() {
            return;
        }
        self.text.push(' ');
        let base = self.text.len();
        self.text.push_str(&other.text);
        for s in &other.segments {
            self.segments.push(Segment {
                start: base + s.start,
                ..s.clone()
            });
        }
    }
}

/// A `list` definition.
#[derive(Debug, Clone)]
pub struct ListDef {
    /// Name.
    pub name: String,
    /// Raw items.
    pub items: Vec<String>,
    /// Position of the first definition.
    pub index: u32,
    /// Counter at the last change.
    pub visibility: u32,
    /// Where it was (last) defined.
    pub loc: Loc,
}

/// A `macro` definition.
#[derive(Debug, Clone)]
pub struct MacroDef {
    /// Name.
    pub name: String,
    /// Condition text.
    pub cond: Text,
    /// Position of the first definition.
    pub index: u32,
    /// Counter at the last change.
    pub visibility: u32,
    /// Where it was (last) defined.
    pub loc: Loc,
}

/// An exception entry: a scalar or a list of entries.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Not given.
    Unset,
    /// A scalar.
    Item(String),
    /// A sequence.
    List(Vec<Entry>),
}

/// One item of a rule's `exceptions`.
#[derive(Debug, Clone)]
pub struct ExceptionDef {
    /// Name.
    pub name: String,
    /// `fields`: one field or a list.
    pub fields: Entry,
    /// `comps`: one operator or a list.
    pub comps: Entry,
    /// `values`.
    pub values: Vec<Entry>,
    /// Where.
    pub loc: Loc,
}

/// A `rule` definition.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// Name.
    pub name: String,
    /// Condition.
    pub cond: Text,
    /// Output format.
    pub output: Text,
    /// Description.
    pub desc: String,
    /// Priority.
    pub priority: Priority,
    /// Event source.
    pub source: String,
    /// Tags (a set, ordered, as in Falco).
    pub tags: BTreeSet<String>,
    /// Enabled.
    pub enabled: bool,
    /// Warn when the rule is not restricted to event types.
    pub warn_evttypes: bool,
    /// Skip silently when a field is unknown.
    pub skip_if_unknown_filter: bool,
    /// Exceptions.
    pub exceptions: Vec<ExceptionDef>,
    /// Source unknown to Vigil: skipped.
    pub unknown_source: bool,
    /// Position of the first definition.
    pub index: u32,
    /// Where it was (last) defined.
    pub loc: Loc,
}

/// Everything collected from the sources.
#[derive(Debug, Default)]
pub struct Collected {
    /// Lists in definition order.
    pub lists: Vec<ListDef>,
    /// Macros in definition order.
    pub macros: Vec<MacroDef>,
    /// Rules in definition order.
    pub rules: Vec<RuleDef>,
    list_idx: HashMap<String, usize>,
    macro_idx: HashMap<String, usize>,
    rule_idx: HashMap<String, usize>,
    counter: u32,
    /// Required plugins (name, version), recorded only.
    pub required_plugins: Vec<(String, String)>,
}

impl Collected {
    /// Index of the list named `name`.
    pub fn list(&self, name: &str) -> Option<usize> {
        self.list_idx.get(name).copied()
    }

    /// Index of the macro named `name`.
    pub fn macro_(&self, name: &str) -> Option<usize> {
        self.macro_idx.get(name).copied()
    }
}

/// Known event sources.
pub const KNOWN_SOURCES: &[&str] = &["syscall", "docker", "k8s_audit"];

/// An error raised while reading one item; the item is skipped.
pub struct ItemError {
    code: &'static str,
    message: String,
    loc: Loc,
}

type R<T> = Result<T, ItemError>;

/// Builds a diagnostic at `loc`.
pub fn diag(
    sources: &[Source],
    level: Level,
    code: &'static str,
    item: Option<String>,
    message: String,
    loc: Option<Loc>,
) -> Diagnostic {
    let (location, snippet) = match loc.and_then(|l| sources.get(l.src).map(|s| (l, s))) {
        Some((l, s)) => (
            Some(Location {
                file: s.name.clone(),
                line: l.pos.line,
                column: l.pos.col,
            }),
            Some(yaml::line_text(&s.text, l.pos.line).to_string()),
        ),
        None => (None, None),
    };
    Diagnostic {
        level,
        code,
        item,
        message,
        location,
        snippet,
    }
}

struct Reader<'a> {
    src: usize,
    sources: &'a [Source],
    col: &'a mut Collected,
    diags: &'a mut Vec<Diagnostic>,
    item: Option<String>,
}

fn err(code: &'static str, message: impl Into<String>, loc: Loc) -> ItemError {
    ItemError {
        code,
        message: message.into(),
        loc,
    }
}

const VALIDATE: &str = "LOAD_ERR_YAML_VALIDATE";

/// Reads source `src` into `col`, adding diagnostics to `diags`.
pub fn read_source(
    sources: &[Source],
    src: usize,
    col: &mut Collected,
    diags: &mut Vec<Diagnostic>,
) {
    let text = &sources[src].text;
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            diags.push(diag(
                sources,
                Level::Error,
                "LOAD_ERR_YAML_PARSE",
                None,
                e.message,
                Some(Loc { src, pos: e.pos }),
            ));
            return;
        }
    };
    let mut r = Reader {
        src,
        sources,
        col,
        diags,
        item: None,
    };
    for doc in docs.into_iter().flatten() {
        let loc = r.loc(&doc);
        if doc.is_null() {
            continue;
        }
        let NodeKind::Seq(items) = &doc.kind else {
            r.report(err(
                VALIDATE,
                "Rules content is not yaml array of objects",
                loc,
            ));
            continue;
        };
        for item in items {
            if item.is_null() {
                continue;
            }
            r.item = None;
            if let Err(e) = r.read_item(item) {
                r.report(e);
            }
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Some((0, n, 0));
    }
    let mut it = s.trim().split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.split(['-', '+']).next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn is_barestr(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"' | '\'' | '=' | ','))
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "tags",
    "enabled",
    "source",
    "exceptions",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "append",
    "override",
    "capture",
    "capture_duration",
];

impl Reader<'_> {
    fn loc(&self, n: &Node) -> Loc {
        Loc {
            src: self.src,
            pos: n.pos,
        }
    }

    fn report(&mut self, e: ItemError) {
        self.diags.push(diag(
            self.sources,
            Level::Error,
            e.code,
            self.item.clone(),
            e.message,
            Some(e.loc),
        ));
    }

    fn warn(&mut self, code: &'static str, message: impl Into<String>, loc: Loc) {
        self.diags.push(diag(
            self.sources,
            Level::Warning,
            code,
            self.item.clone(),
            message.into(),
            Some(loc),
        ));
    }

    /// A required non-empty scalar.
    fn scalar<'n>(&self, item: &'n Node, key: &str) -> R<(&'n str, &'n Node)> {
        let loc = self.loc(item);
        let v = item.get(key).ok_or_else(|| {
            err(
                VALIDATE,
                format!("Item has no mapping for key '{key}'"),
                loc,
            )
        })?;
        let vloc = self.loc(v);
        if v.is_null() {
            return Err(err(
                VALIDATE,
                format!("Mapping for key '{key}' is empty"),
                vloc,
            ));
        }
        let s = v.as_str().ok_or_else(|| {
            err(
                VALIDATE,
                format!(
                    "Value for key '{key}' is not a scalar value (it is {})",
                    v.kind_name()
                ),
                vloc,
            )
        })?;
        if s.is_empty() {
            return Err(err(
                VALIDATE,
                format!("Value for key '{key}' must be non-empty"),
                vloc,
            ));
        }
        Ok((s, v))
    }

    fn opt_scalar<'n>(&self, item: &'n Node, key: &str) -> R<Option<(&'n str, &'n Node)>> {
        if item.get(key).is_none() {
            return Ok(None);
        }
        self.scalar(item, key).map(Some)
    }

    fn opt_bool(&self, item: &Node, key: &str) -> R<Option<bool>> {
        match self.opt_scalar(item, key)? {
            None => Ok(None),
            Some((s, n)) => parse_bool(s).map(Some).ok_or_else(|| {
                err(
                    VALIDATE,
                    format!("Value for key '{key}' is not a boolean: '{s}'"),
                    self.loc(n),
                )
            }),
        }
    }

    fn text(&self, item: &Node, key: &str) -> R<Text> {
        let (s, n) = self.scalar(item, key)?;
        let style = match &n.kind {
            NodeKind::Scalar(_, st) => *st,
            _ => Style::Plain,
        };
        Ok(Text::new(s.to_string(), self.loc(n), style))
    }

    fn seq_of_scalars(&self, item: &Node, key: &str) -> R<Vec<String>> {
        let loc = self.loc(item);
        let v = item.get(key).ok_or_else(|| {
            err(
                VALIDATE,
                format!("Item has no mapping for key '{key}'"),
                loc,
            )
        })?;
        if v.is_null() {
            return Ok(Vec::new());
        }
        let NodeKind::Seq(items) = &v.kind else {
            return Err(err(
                VALIDATE,
                format!("Value for key '{key}' is not a sequence"),
                self.loc(v),
            ));
        };
        items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    err(
                        VALIDATE,
                        format!("sequence value in '{key}' is not scalar"),
                        self.loc(i),
                    )
                })
            })
            .collect()
    }

    fn check_keys(&mut self, item: &Node, allowed: &[&str]) {
        if let NodeKind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let name = k.as_str().unwrap_or("");
                if !allowed.contains(&name) {
                    let loc = self.loc(k);
                    self.warn("LOAD_UNKNOWN_KEY", format!("Unknown key '{name}'"), loc);
                }
            }
        }
    }

    /// The legacy `append: true` key and the `override:` mapping of an item →
    /// (legacy append, append keys, replace keys). `append` warns as deprecated; both together
    /// are an error.
    fn amendments(
        &mut self,
        item: &Node,
        loc: Loc,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> R<(bool, BTreeSet<String>, BTreeSet<String>)> {
        let append = self.opt_bool(item, "append")?.unwrap_or(false);
        if append {
            self.warn("LOAD_DEPRECATED_ITEM", "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.", loc);
        }
        let (app, rep) = self.overrides(item, appendable, replaceable)?;
        if append && (!app.is_empty() || !rep.is_empty()) {
            return Err(err(
                VALIDATE,
                "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.",
                loc,
            ));
        }
        Ok((append, app, rep))
    }

    /// `override:` → (append keys, replace keys).
    fn overrides(
        &self,
        item: &Node,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> R<(BTreeSet<String>, BTreeSet<String>)> {
        let mut app = BTreeSet::new();
        let mut rep = BTreeSet::new();
        let Some(ov) = item.get("override") else {
            return Ok((app, rep));
        };
        let NodeKind::Map(entries) = &ov.kind else {
            return Err(err(VALIDATE, "'override' must be a mapping", self.loc(ov)));
        };
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("");
            let op = v.as_str().unwrap_or("");
            let can_app = appendable.contains(&key);
            let can_rep = replaceable.contains(&key);
            match op {
                "append" if can_app => {
                    app.insert(key.to_string());
                }
                "append" => {
                    return Err(err(
                        VALIDATE,
                        format!("Key '{key}' cannot be appended to, use 'replace' instead"),
                        self.loc(k),
                    ));
                }
                "replace" if can_rep => {
                    rep.insert(key.to_string());
                }
                "replace" => {
                    return Err(err(
                        VALIDATE,
                        format!("Key '{key}' cannot be replaced"),
                        self.loc(k),
                    ));
                }
                _ => {
                    let mut allowed = Vec::new();
                    if can_app {
                        allowed.push("append");
                    }
                    if can_rep {
                        allowed.push("replace");
                    }
                    return Err(err(
                        VALIDATE,
                        format!(
                            "Invalid override operation for key '{key}': '{op}'. Allowed values are: {}",
                            allowed.join(" ")
                        ),
                        self.loc(v),
                    ));
                }
            }
        }
        Ok((app, rep))
    }

    fn read_item(&mut self, item: &Node) -> R<()> {
        let loc = self.loc(item);
        if !matches!(item.kind, NodeKind::Map(_)) {
            return Err(err(
                VALIDATE,
                "Unexpected element type. Each element should be a yaml associative array.",
                loc,
            ));
        }
        if let Some(v) = item.get("required_engine_version") {
            let s = v.as_str().unwrap_or("");
            let Some(ver) = parse_version(s) else {
                return Err(err(
                    VALIDATE,
                    format!(
                        "Unable to parse engine version '{s}' as a semver string. Expected \"x.y.z\" semver format."
                    ),
                    self.loc(v),
                ));
            };
            if ver > ENGINE_VERSION {
                let (a, b, c) = ENGINE_VERSION;
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    format!(
                        "Rules require engine version {}.{}.{}, but engine version is {a}.{b}.{c}",
                        ver.0, ver.1, ver.2
                    ),
                    self.loc(v),
                ));
            }
            return Ok(());
        }
        if let Some(v) = item.get("required_plugin_versions") {
            let NodeKind::Seq(plugins) = &v.kind else {
                return Err(err(
                    VALIDATE,
                    "Value of required_plugin_versions must be a sequence",
                    self.loc(v),
                ));
            };
            for p in plugins {
                if !matches!(p.kind, NodeKind::Map(_)) {
                    return Err(err(
                        VALIDATE,
                        "Plugin version must be a mapping",
                        self.loc(p),
                    ));
                }
                let (name, _) = self.scalar(p, "name")?;
                let (version, vn) = self.scalar(p, "version")?;
                if parse_version(version).is_none() {
                    return Err(err(
                        "LOAD_ERR_VALIDATE",
                        format!("Invalid required version '{version}' for plugin '{name}'"),
                        self.loc(vn),
                    ));
                }
                self.col
                    .required_plugins
                    .push((name.to_string(), version.to_string()));
            }
            return Ok(());
        }
        if item.get("list").is_some() {
            return self.read_list(item);
        }
        if item.get("macro").is_some() {
            return self.read_macro(item);
        }
        if item.get("rule").is_some() {
            return self.read_rule(item);
        }
        self.warn("LOAD_UNKNOWN_ITEM", "Unknown top level item", loc);
        Ok(())
    }

    fn next_id(&mut self) -> u32 {
        let id = self.col.counter;
        self.col.counter += 1;
        id
    }

    fn read_list(&mut self, item: &Node) -> R<()> {
        let (name, _) = self.scalar(item, "list")?;
        let loc = self.loc(item);
        self.item = Some(format!("list '{name}'"));
        if !is_barestr(name) {
            return Err(err(
                VALIDATE,
                "List name is invalid: it must not contain spaces, quotes, parentheses, '=' or ','",
                loc,
            ));
        }
        self.check_keys(item, &["list", "items", "append", "override"]);
        let items = self.seq_of_scalars(item, "items")?;
        let (append, app, _replaced) = self.amendments(item, loc, &["items"], &["items"])?;
        let id = self.next_id();
        if append || app.contains("items") {
            let Some(&i) = self.col.list_idx.get(name) else {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "List has 'append' key or an append override but no list by that name already exists",
                    loc,
                ));
            };
            let l = &mut self.col.lists[i];
            l.items.extend(items);
            l.visibility = id;
        } else if let Some(&i) = self.col.list_idx.get(name) {
            let l = &mut self.col.lists[i];
            l.items = items;
            l.visibility = id;
            l.loc = loc;
        } else {
            self.col
                .list_idx
                .insert(name.to_string(), self.col.lists.len());
            self.col.lists.push(ListDef {
                name: name.to_string(),
                items,
                index: id,
                visibility: id,
                loc,
            });
        }
        Ok(())
    }

    fn read_macro(&mut self, item: &Node) -> R<()> {
        let (name, _) = self.scalar(item, "macro")?;
        let loc = self.loc(item);
        self.item = Some(format!("macro '{name}'"));
        if !is_identifier(name) {
            return Err(err(
                VALIDATE,
                "Macro name is invalid: it must be an identifier ([a-zA-Z]+[a-zA-Z0-9_]*)",
                loc,
            ));
        }
        self.check_keys(item, &["macro", "condition", "append", "override"]);
        let cond = self.text(item, "condition")?;
        let (append, app, _replaced) =
            self.amendments(item, loc, &["condition"], &["condition"])?;
        let id = self.next_id();
        if append || app.contains("condition") {
            let Some(&i) = self.col.macro_idx.get(name) else {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Macro has 'append' key or an append override but no macro by that name already exists",
                    loc,
                ));
            };
            let m = &mut self.col.macros[i];
            m.cond.append(&cond);
            m.visibility = id;
        } else if let Some(&i) = self.col.macro_idx.get(name) {
            let m = &mut self.col.macros[i];
            m.cond = cond;
            m.visibility = id;
            m.loc = loc;
        } else {
            self.col
                .macro_idx
                .insert(name.to_string(), self.col.macros.len());
            self.col.macros.push(MacroDef {
                name: name.to_string(),
                cond,
                index: id,
                visibility: id,
                loc,
            });
        }
        Ok(())
    }

    fn entry(&self, n: &Node) -> R<Entry> {
        match &n.kind {
            NodeKind::Scalar(s, _) => {
                if s.is_empty() {
                    Err(err(VALIDATE, "Value must be non-empty", self.loc(n)))
                } else {
                    Ok(Entry::Item(s.clone()))
                }
            }
            NodeKind::Seq(items) => Ok(Entry::List(
                items.iter().map(|i| self.entry(i)).collect::<R<_>>()?,
            )),
            NodeKind::Map(_) => Err(err(
                VALIDATE,
                "Exception value must be a string or a sequence, not a mapping",
                self.loc(n),
            )),
        }
    }

    fn exceptions(&mut self, item: &Node, append: bool) -> R<Vec<ExceptionDef>> {
        let mut out: Vec<ExceptionDef> = Vec::new();
        let Some(exs) = item.get("exceptions") else {
            return Ok(out);
        };
        if exs.is_null() {
            return Ok(out);
        }
        let NodeKind::Seq(list) = &exs.kind else {
            return Err(err(
                VALIDATE,
                "Rule exceptions must be a sequence",
                self.loc(exs),
            ));
        };
        for ex in list {
            let loc = self.loc(ex);
            if !matches!(ex.kind, NodeKind::Map(_)) {
                return Err(err(VALIDATE, "Rule exception must be a mapping", loc));
            }
            let (name, _) = self.scalar(ex, "name")?;
            if out.iter().any(|e| e.name == name) {
                return Err(err(
                    VALIDATE,
                    format!("Exceptions names in the same object must be unique ('{name}')"),
                    loc,
                ));
            }
            let fields = match ex.get("fields") {
                Some(f) if !f.is_null() => self.entry(f)?,
                _ if append => Entry::Unset,
                _ => {
                    return Err(err(VALIDATE, "Item has no mapping for key 'fields'", loc));
                }
            };
            let comps = match ex.get("comps") {
                Some(c) if !c.is_null() => self.entry(c)?,
                _ => Entry::Unset,
            };
            let mut values = Vec::new();
            match ex.get("values") {
                Some(v) if !v.is_null() => {
                    let NodeKind::Seq(vals) = &v.kind else {
                        return Err(err(
                            VALIDATE,
                            "Rule exception values must be a sequence",
                            self.loc(v),
                        ));
                    };
                    for val in vals {
                        values.push(self.entry(val)?);
                    }
                }
                _ if append => {
                    self.warn(
                        "LOAD_APPEND_NO_VALUES",
                        "Overriding/appending exception with no values",
                        loc,
                    );
                }
                _ => {}
            }
            out.push(ExceptionDef {
                name: name.to_string(),
                fields,
                comps,
                values,
                loc,
            });
        }
        Ok(out)
    }

    fn tags(&self, item: &Node) -> R<Option<BTreeSet<String>>> {
        if item.get("tags").is_none() {
            return Ok(None);
        }
        Ok(Some(
            self.seq_of_scalars(item, "tags")?.into_iter().collect(),
        ))
    }

    fn priority(&self, item: &Node) -> R<Priority> {
        let (p, n) = self.scalar(item, "priority")?;
        Priority::parse(p)
            .ok_or_else(|| err(VALIDATE, format!("Invalid priority '{p}'"), self.loc(n)))
    }

    fn read_rule(&mut self, item: &Node) -> R<()> {
        let (name, _) = self.scalar(item, "rule")?;
        let name = name.to_string();
        let loc = self.loc(item);
        self.item = Some(format!("rule '{name}'"));
        self.check_keys(item, RULE_KEYS);
        const APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
        const REPLACEABLE: &[&str] = &[
            "condition",
            "output",
            "desc",
            "priority",
            "tags",
            "exceptions",
            "enabled",
            "warn_evttypes",
            "skip-if-unknown-filter",
            "capture",
            "capture_duration",
        ];
        let (has_append, app, rep) = self.amendments(item, loc, APPENDABLE, REPLACEABLE)?;
        if !app.is_empty() || !rep.is_empty() {
            // Keys present in the item that an override could address.
            let mut expected: BTreeSet<&str> = APPENDABLE
                .iter()
                .chain(REPLACEABLE)
                .copied()
                .filter(|k| item.get(k).is_some())
                .collect();
            for (op, keys) in [("append", &app), ("replace", &rep)] {
                for k in keys {
                    if !expected.remove(k.as_str()) {
                        return Err(err(
                            VALIDATE,
                            format!(
                                "An {op} override for '{k}' was specified but '{k}' is not defined"
                            ),
                            loc,
                        ));
                    }
                }
            }
            if let Some(k) = expected.iter().next() {
                let kl = item.get(k).map_or(loc, |n| self.loc(n));
                return Err(err(
                    VALIDATE,
                    format!(
                        "Unexpected key '{k}': no corresponding entry under 'override' is defined."
                    ),
                    kl,
                ));
            }
            let Some(&idx) = self.col.rule_idx.get(&name) else {
                let what = if app.is_empty() { "replace" } else { "append" };
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    format!("Rule has an {what} override but no rule by that name already exists"),
                    loc,
                ));
            };
            // Appends first, then replacements (as Falco).
            if !app.is_empty() {
                let cond = if app.contains("condition") {
                    Some(self.text(item, "condition")?)
                } else {
                    None
                };
                let output = if app.contains("output") {
                    Some(self.text(item, "output")?)
                } else {
                    None
                };
                let desc = if app.contains("desc") {
                    Some(self.scalar(item, "desc")?.0.to_string())
                } else {
                    None
                };
                let tags = if app.contains("tags") {
                    self.tags(item)?
                } else {
                    None
                };
                let exs = if app.contains("exceptions") {
                    Some(self.exceptions(item, true)?)
                } else {
                    None
                };
                self.append_rule(idx, cond, output, desc, tags, exs)?;
            }
            if !rep.is_empty() {
                let cond = if rep.contains("condition") {
                    Some(self.text(item, "condition")?)
                } else {
                    None
                };
                let output = if rep.contains("output") {
                    Some(self.text(item, "output")?)
                } else {
                    None
                };
                let desc = if rep.contains("desc") {
                    Some(self.scalar(item, "desc")?.0.to_string())
                } else {
                    None
                };
                let tags = if rep.contains("tags") {
                    self.tags(item)?
                } else {
                    None
                };
                let exs = if rep.contains("exceptions") {
                    Some(self.exceptions(item, true)?)
                } else {
                    None
                };
                let prio = if rep.contains("priority") {
                    Some(self.priority(item)?)
                } else {
                    None
                };
                let enabled = if rep.contains("enabled") {
                    self.opt_bool(item, "enabled")?
                } else {
                    None
                };
                let warn = if rep.contains("warn_evttypes") {
                    self.opt_bool(item, "warn_evttypes")?
                } else {
                    None
                };
                let skip = if rep.contains("skip-if-unknown-filter") {
                    self.opt_bool(item, "skip-if-unknown-filter")?
                } else {
                    None
                };
                let r = &mut self.col.rules[idx];
                if let Some(c) = cond {
                    r.cond = c;
                }
                if let Some(o) = output {
                    r.output = o;
                }
                if let Some(d) = desc {
                    r.desc = d;
                }
                if let Some(t) = tags {
                    r.tags = t;
                }
                if let Some(e) = exs {
                    r.exceptions = e;
                }
                if let Some(p) = prio {
                    r.priority = p;
                }
                if let Some(e) = enabled {
                    r.enabled = e;
                }
                if let Some(w) = warn {
                    r.warn_evttypes = w;
                }
                if let Some(s) = skip {
                    r.skip_if_unknown_filter = s;
                }
            }
            self.next_id();
            return Ok(());
        }
        if has_append {
            let Some(&idx) = self.col.rule_idx.get(&name) else {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Rule has 'append' key but no rule by that name already exists",
                    loc,
                ));
            };
            let cond = if item.get("condition").is_some() {
                Some(self.text(item, "condition")?)
            } else {
                None
            };
            let exs = if item.get("exceptions").is_some() {
                Some(self.exceptions(item, true)?)
            } else {
                None
            };
            if cond.is_none() && exs.is_none() {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Appended rule must have exceptions or condition property",
                    loc,
                ));
            }
            self.append_rule(idx, cond, None, None, None, exs)?;
            self.next_id();
            return Ok(());
        }
        let has_def = ["condition", "output", "desc", "priority"]
            .iter()
            .any(|k| item.get(k).is_some());
        if !has_def {
            // Enabled-only entry (deprecated): toggles an earlier rule.
            let Some(enabled) = self.opt_bool(item, "enabled")? else {
                return Err(err(
                    VALIDATE,
                    "Item has no mapping for key 'condition'",
                    loc,
                ));
            };
            self.warn("LOAD_DEPRECATED_ITEM", "The 'enabled' key alone is deprecated. Use 'override: {enabled: replace}' instead.", loc);
            let Some(&idx) = self.col.rule_idx.get(&name) else {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Rule has 'enabled' key but no rule by that name already exists",
                    loc,
                ));
            };
            self.col.rules[idx].enabled = enabled;
            return Ok(());
        }
        let cond = self.text(item, "condition")?;
        let mut output = self.text(item, "output")?;
        output.text = output.text.trim().to_string();
        let desc = self.scalar(item, "desc")?.0.to_string();
        let priority = self.priority(item)?;
        let source = self
            .opt_scalar(item, "source")?
            .map_or("syscall".to_string(), |(s, _)| s.to_string());
        let enabled = self.opt_bool(item, "enabled")?.unwrap_or(true);
        let warn_evttypes = self.opt_bool(item, "warn_evttypes")?.unwrap_or(true);
        let skip = self
            .opt_bool(item, "skip-if-unknown-filter")?
            .unwrap_or(false);
        let tags = self.tags(item)?.unwrap_or_default();
        let exceptions = self.exceptions(item, false)?;
        for ex in &exceptions {
            if ex.fields == Entry::Unset {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Rule exception item must have fields property with a list of fields",
                    ex.loc,
                ));
            }
            validate_exception(ex)?;
        }
        let prev = self.col.rule_idx.get(&name).copied();
        if let Some(i) = prev
            && self.col.rules[i].source != source
        {
            return Err(err(
                "LOAD_ERR_VALIDATE",
                "Rule has been re-defined with a different source",
                loc,
            ));
        }
        let unknown_source = !KNOWN_SOURCES.contains(&source.as_str());
        if unknown_source {
            self.warn(
                "LOAD_UNKNOWN_SOURCE",
                format!("Unknown source {source}, skipping"),
                loc,
            );
        }
        let id = self.next_id();
        let def = RuleDef {
            name: name.clone(),
            cond,
            output,
            desc,
            priority,
            source,
            tags,
            enabled,
            warn_evttypes,
            skip_if_unknown_filter: skip,
            exceptions,
            unknown_source,
            index: id,
            loc,
        };
        match prev {
            Some(i) => {
                let index = self.col.rules[i].index;
                self.col.rules[i] = RuleDef { index, ..def };
            }
            None => {
                self.col.rule_idx.insert(name, self.col.rules.len());
                self.col.rules.push(def);
            }
        }
        Ok(())
    }

    fn append_rule(
        &mut self,
        idx: usize,
        cond: Option<Text>,
        output: Option<Text>,
        desc: Option<String>,
        tags: Option<BTreeSet<String>>,
        exs: Option<Vec<ExceptionDef>>,
    ) -> R<()> {
        let r = &mut self.col.rules[idx];
        if let Some(c) = cond {
            r.cond.append(&c);
        }
        if let Some(o) = output {
            r.output.append(&o);
        }
        if let Some(d) = desc
            && !d.is_empty()
        {
            r.desc.push(' ');
            r.desc.push_str(&d);
        }
        if let Some(t) = tags {
            r.tags.extend(t);
        }
        if let Some(exs) = exs {
            for ex in exs {
                match r.exceptions.iter_mut().find(|e| e.name == ex.name) {
                    None => {
                        if ex.fields == Entry::Unset {
                            return Err(err(
                                "LOAD_ERR_VALIDATE",
                                "Rule exception must have fields property with a list of fields",
                                ex.loc,
                            ));
                        }
                        if ex.values.is_empty() {
                            return Err(err(
                                "LOAD_ERR_VALIDATE",
                                "Rule exception must have values property with a list of values",
                                ex.loc,
                            ));
                        }
                        validate_exception(&ex)?;
                        r.exceptions.push(ex);
                    }
                    Some(prev) => {
                        if ex.fields != Entry::Unset {
                            return Err(err(
                                "LOAD_ERR_VALIDATE",
                                "Can not append exception fields to existing exception, only values",
                                ex.loc,
                            ));
                        }
                        if ex.comps != Entry::Unset {
                            return Err(err(
                                "LOAD_ERR_VALIDATE",
                                "Can not append exception comps to existing exception, only values",
                                ex.loc,
                            ));
                        }
                        prev.values.extend(ex.values);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks an exception's shape (Falco's `validate_exception_info`), filling default comps.
fn validate_exception(ex: &ExceptionDef) -> R<()> {
    use crate::parser::Op;
    match (&ex.fields, &ex.comps) {
        (Entry::List(fields), Entry::List(comps)) => {
            if fields.len() != comps.len() {
                return Err(err(
                    "LOAD_ERR_VALIDATE",
                    "Fields and comps lists must have equal length",
                    ex.loc,
                ));
            }
            for c in comps {
                let Entry::Item(c) = c else {
                    return Err(err("LOAD_ERR_VALIDATE", "comps must be strings", ex.loc));
                };
                if Op::parse(c).is_none() {
                    return Err(err(
                        "LOAD_ERR_VALIDATE",
                        format!("'{c}' is not a supported comparison operator"),
                        ex.loc,
                    ));
                }
            }
        }
        (Entry::List(_), Entry::Unset) => {}
        (Entry::List(_), Entry::Item(_)) => {
            return Err(err(
                "LOAD_ERR_VALIDATE",
                "Fields and comps lists must have equal length",
                ex.loc,
            ));
        }
        (Entry::Item(_), Entry::List(_)) => {
            return Err(err(
                "LOAD_ERR_VALIDATE",
                "Fields and comps must both be strings",
                ex.loc,
            ));
        }
        (Entry::Item(_), Entry::Item(c))
            if !matches!(c.as_str(), "in" | "pmatch" | "intersects") =>
        {
            return Err(err(
                "LOAD_ERR_VALIDATE",
                "When fields is a single value, comps must be one of (in, pmatch, intersects)",
                ex.loc,
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Maps an offset in an assembled text back to a source place.
pub fn locate(sources: &[Source], t: &Text, offset: usize) -> Option<Loc> {
    let seg_i = t.segments.iter().rposition(|s| s.start <= offset)?;
    let seg = &t.segments[seg_i];
    let local = offset - seg.start;
    let src = sources.get(seg.loc.src)?;
    let start = seg.loc.pos;
    let piece_end = t
        .segments
        .get(seg_i + 1)
        .map_or(t.text.len(), |n| n.start.saturating_sub(1));
    let piece = t.text.get(seg.start..piece_end)?;
    let before = piece.get(..local)?;
    if seg.style != Style::Block && !before.contains('\n') {
        // Scalar on one line: column arithmetic (plus the opening quote).
        let quote = usize::from(seg.style == Style::Quoted);
        let line = yaml::line_text(&src.text, start.line);
        let start_char = start.col - 1 + quote;
        let mut col = start_char + before.chars().count() + 1;
        if line.chars().count() + 1 < col {
            col = line.chars().count() + 1;
        }
        return Some(Loc {
            src: seg.loc.src,
            pos: Pos {
                line: start.line,
                col,
                offset: start.offset,
            },
        });
    }
    // Multi-line: find the same token (k-th occurrence) in the source after the scalar start.
    let token: String = piece[local..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(24)
        .collect();
    if token.is_empty() {
        return Some(seg.loc);
    }
    let k = before.matches(token.as_str()).count();
    let hay = src.text.get(start.offset..)?;
    let found = hay.match_indices(token.as_str()).nth(k)?.0 + start.offset;
    let line = src.text[..found].matches('\n').count() + 1;
    let line_start = src.text[..found].rfind('\n').map_or(0, |i| i + 1);
    let col = src.text[line_start..found].chars().count() + 1;
    Some(Loc {
        src: seg.loc.src,
        pos: Pos {
            line,
            col,
            offset: found,
        },
    })
}
