//! A small YAML tree with source positions, built from granit-parser events.

use granit_parser::{Event as YEvent, Parser, ScalarStyle};
use std::collections::HashMap;

/// A position in a source text: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// Byte offset of the position (best effort).
    pub offset: usize,
}

/// A YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it is.
    pub kind: NodeKind,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar: its text and how it was written.
    Scalar(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping (keys kept in source order).
    Map(Vec<(Node, Node)>),
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain (unquoted).
    Plain,
    /// Single or double quoted.
    Quoted,
    /// A `|` or `>` block.
    Block,
}

/// A YAML syntax error.
#[derive(Debug, Clone)]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Guard against alias expansion bombs.
const MAX_NODES: usize = 2_000_000;
/// Guard against runaway nesting.
const MAX_DEPTH: usize = 256;

impl Node {
    /// The scalar text, if a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a YAML null (`~`, `null`, empty plain scalar).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s, Style::Plain) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }

    /// The value for `key`, if a mapping with that key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short word for the node's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON: plain scalars become numbers, booleans or null where they look so.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            NodeKind::Scalar(s, Style::Plain) => {
                if self.is_null() {
                    J::Null
                } else if s == "true" || s == "True" || s == "TRUE" {
                    J::Bool(true)
                } else if s == "false" || s == "False" || s == "FALSE" {
                    J::Bool(false)
                } else if let Ok(i) = s.parse::<i64>() {
                    J::from(i)
                } else if let Some(f) = s
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && s.chars().any(|c| c.is_ascii_digit()))
                {
                    J::from(f)
                } else {
                    J::String(s.clone())
                }
            }
            NodeKind::Scalar(s, _) => J::String(s.clone()),
            NodeKind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of(m: &granit_parser::Marker, text: &str) -> Pos {
    let offset = m
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, m.index()));
    Pos {
        line: m.line(),
        col: m.col() + 1,
        offset,
    }
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

enum Frame {
    Seq(Pos, Vec<Node>, usize),
    Map(Pos, Vec<(Node, Node)>, Option<Node>, usize),
}

/// Parses every document of a YAML stream. Empty documents give `None`.
pub fn parse(text: &str) -> Result<Vec<Option<Node>>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut count = 0usize;
    let mut current: Option<Node> = None;
    let mut in_doc = false;
    while let Some(next) = parser.next_event() {
        let (ev, span) = next.map_err(|e| YamlError {
            pos: pos_of(e.marker(), text),
            message: e.info(),
        })?;
        let pos = pos_of(&span.start, text);
        let node = match ev {
            YEvent::StreamStart | YEvent::StreamEnd => continue,
            YEvent::DocumentStart(..) => {
                in_doc = true;
                current = None;
                continue;
            }
            YEvent::DocumentEnd => {
                if in_doc {
                    docs.push(current.take());
                }
                in_doc = false;
                continue;
            }
            YEvent::SequenceStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: "nesting too deep".into(),
                    });
                }
                stack.push(Frame::Seq(pos, Vec::new(), anchor));
                continue;
            }
            YEvent::MappingStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: "nesting too deep".into(),
                    });
                }
                stack.push(Frame::Map(pos, Vec::new(), None, anchor));
                continue;
            }
            YEvent::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(p, items, anchor)) => {
                    let n = Node {
                        pos: p,
                        kind: NodeKind::Seq(items),
                    };
                    if anchor != 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "unbalanced sequence".into(),
                    });
                }
            },
            YEvent::MappingEnd => match stack.pop() {
                Some(Frame::Map(p, entries, _, anchor)) => {
                    let n = Node {
                        pos: p,
                        kind: NodeKind::Map(entries),
                    };
                    if anchor != 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "unbalanced mapping".into(),
                    });
                }
            },
            YEvent::Scalar(value, style, anchor, _) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                let n = Node {
                    pos,
                    kind: NodeKind::Scalar(value.into_owned(), style),
                };
                if anchor != 0 {
                    anchors.insert(anchor, n.clone());
                }
                n
            }
            YEvent::Alias(id) => match anchors.get(&id) {
                Some(n) => {
                    count += weight(n);
                    let mut n = n.clone();
                    n.pos = pos;
                    n
                }
                None => {
                    return Err(YamlError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            _ => continue,
        };
        count += 1;
        if count > MAX_NODES {
            return Err(YamlError {
                pos,
                message: "document too large (alias expansion?)".into(),
            });
        }
        match stack.last_mut() {
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, entries, key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
            None => current = Some(node),
        }
    }
    Ok(docs)
}

fn weight(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar(..) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        NodeKind::Map(e) => 1 + e.iter().map(|(k, v)| weight(k) + weight(v)).sum::<usize>(),
    }
}

/// The text of line `line` (1-based), without its line break.
pub fn line_text(text: &str, line: usize) -> &str {
    text.lines().nth(line.saturating_sub(1)).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let docs =
            parse("- rule: a\n  condition: x = 1\n- list: l\n  items: [a, \"b\"]\n").unwrap();
        let root = docs[0].as_ref().unwrap();
        let NodeKind::Seq(items) = &root.kind else {
            panic!()
        };
        let cond = items[0].get("condition").unwrap();
        assert_eq!((cond.pos.line, cond.pos.col), (2, 14));
        let l = items[1].get("items").unwrap();
        let NodeKind::Seq(v) = &l.kind else { panic!() };
        assert_eq!(v[1].kind, NodeKind::Scalar("b".into(), Style::Quoted));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("- rule: a\n  condition: [oops\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e:?}");
    }

    #[test]
    fn aliases() {
        let docs = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let b = docs[0].as_ref().unwrap().get("b").unwrap();
        assert!(matches!(&b.kind, NodeKind::Seq(v) if v.len() == 2));
    }
}
