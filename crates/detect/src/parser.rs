//! The Falco condition language: AST and recursive-descent parser.
//!
//! Precedence, loosest first: `or`, `and`, `not`, then checks (`field op value`, macro
//! references, parenthesised expressions), as in libsinsp's grammar.

use std::fmt;

/// Maximum nesting of parentheses / `not` the parser accepts.
pub const MAX_DEPTH: usize = 256;

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// Any must hold.
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A macro reference, with its byte offset.
    Macro(String, usize),
    /// A comparison.
    Check(Box<Check>),
}

/// `lhs op rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Field or transformed field.
    pub lhs: Operand,
    /// Operator.
    pub op: Op,
    /// Right-hand side.
    pub rhs: Rhs,
    /// Byte offset of the check.
    pub pos: usize,
}

/// A field, possibly wrapped in transformers.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `proc.aname[2]`.
    Field {
        /// Name without argument.
        name: String,
        /// Text between brackets.
        arg: Option<String>,
        /// Byte offset.
        pos: usize,
    },
    /// `tolower(proc.name)`.
    Transform(Transformer, Box<Operand>),
}

/// Field transformers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformer {
    /// `tolower(...)`.
    ToLower,
    /// `toupper(...)`.
    ToUpper,
    /// `b64(...)`: base64-decode.
    B64,
    /// `basename(...)`.
    Basename,
    /// `len(...)`.
    Len,
}

/// The right-hand side of a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// Unary operator (`exists`).
    None,
    /// One value.
    Value(Item),
    /// A value list (bare items naming lists are expanded later).
    List(Vec<Item>),
    /// `val(field)` or a transformer.
    Operand(Operand),
}

/// A literal value with how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The unescaped text.
    pub text: String,
    /// Whether it was quoted (quoted items never name lists).
    pub quoted: bool,
    /// Byte offset.
    pub pos: usize,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    Pmatch,
    Exists,
}

impl Op {
    /// Parses an operator word or symbol.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "regex" => Op::Regex,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "pmatch" => Op::Pmatch,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// Whether the operator takes a value list.
    pub fn is_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::Pmatch)
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::Pmatch => "pmatch",
            Op::Exists => "exists",
        }
    }
}

/// A syntax error in a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the condition.
    pub pos: usize,
    /// What.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.pos)
    }
}

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

/// Parses a condition.
pub fn parse_condition(s: &str) -> Result<Expr, ParseError> {
    let mut p = P {
        s,
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.i >= p.b.len() {
        return Err(p.err("empty condition"));
    }
    let e = p.or()?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.err(&format!(
            "unexpected '{}' after a complete expression",
            p.snippet()
        )));
    }
    Ok(e)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_bare(c: u8) -> bool {
    !matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | 8 | b'(' | b')' | b',' | b'=' | b'"' | b'\''
    )
}

impl<'a> P<'a> {
    fn err(&self, m: &str) -> ParseError {
        ParseError {
            pos: self.i.min(self.b.len()),
            message: m.to_string(),
        }
    }

    fn snippet(&self) -> String {
        let rest = &self.s[self.i.min(self.s.len())..];
        let end = rest.char_indices().nth(20).map_or(rest.len(), |(i, _)| i);
        rest[..end].to_string()
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r' | 8) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// An identifier at `at` (letters first, then letters/digits/underscore): its end.
    fn ident_end(&self, at: usize) -> Option<usize> {
        if at < self.b.len() && is_ident_start(self.b[at]) {
            let mut j = at + 1;
            while j < self.b.len() && is_ident(self.b[j]) {
                j += 1;
            }
            Some(j)
        } else {
            None
        }
    }

    /// A dotted field name at `at`: its end (requires at least one dot).
    fn field_end(&self, at: usize) -> Option<usize> {
        let mut j = self.ident_end(at)?;
        let mut dots = 0;
        while j < self.b.len() && self.b[j] == b'.' {
            match self.ident_end(j + 1) {
                Some(e) => {
                    j = e;
                    dots += 1;
                }
                None => break,
            }
        }
        (dots > 0).then_some(j)
    }

    /// Whether the keyword `kw` is at the cursor, followed by a delimiter.
    fn keyword(&self, kw: &str) -> bool {
        let k = kw.as_bytes();
        if self.b.len() < self.i + k.len() || &self.b[self.i..self.i + k.len()] != k {
            return false;
        }
        match self.b.get(self.i + k.len()) {
            None => true,
            Some(c) => !is_ident(*c) && *c != b'.',
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut items = vec![self.and()?];
        loop {
            self.ws();
            if self.keyword("or") {
                self.i += 2;
                self.ws();
                items.push(self.and()?);
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::And(vec![]))
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.not()?];
        loop {
            self.ws();
            if self.keyword("and") {
                self.i += 3;
                self.ws();
                items.push(self.not()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::And(vec![]))
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        if self.keyword("not") {
            self.i += 3;
            self.enter()?;
            self.ws();
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.check()
    }

    fn check(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        let start = self.i;
        match self.peek() {
            None => return Err(self.err("unexpected end of condition, expected a check")),
            Some(b'(') => {
                self.i += 1;
                self.enter()?;
                let e = self.or()?;
                self.depth -= 1;
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(self.err("expected ')'"));
                }
                self.i += 1;
                return Ok(e);
            }
            _ => {}
        }
        if self.transformer_at().is_some() {
            let lhs = self.operand()?;
            return self.condition(lhs, start);
        }
        if self.field_end(self.i).is_some() {
            let lhs = self.operand()?;
            return self.condition(lhs, start);
        }
        if let Some(end) = self.ident_end(self.i) {
            let name = self.s[self.i..end].to_string();
            if matches!(name.as_str(), "and" | "or") {
                return Err(self.err(&format!("unexpected '{name}', expected a check")));
            }
            self.i = end;
            return Ok(Expr::Macro(name, start));
        }
        Err(self.err(&format!(
            "unexpected '{}', expected a field, a macro or '('",
            self.snippet()
        )))
    }

    /// A transformer name followed by '(' at the cursor.
    fn transformer_at(&self) -> Option<(Option<Transformer>, usize)> {
        let end = self.ident_end(self.i)?;
        if self.b.get(end) != Some(&b'(') {
            return None;
        }
        let t = match &self.s[self.i..end] {
            "tolower" => Some(Transformer::ToLower),
            "toupper" => Some(Transformer::ToUpper),
            "b64" => Some(Transformer::B64),
            "basename" => Some(Transformer::Basename),
            "len" => Some(Transformer::Len),
            "val" | "join" | "concat" | "getopt" => None,
            _ => return None,
        };
        Some((t, end))
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        self.ws();
        if let Some((t, end)) = self.transformer_at() {
            let word = &self.s[self.i..end];
            let Some(t) = t else {
                return Err(self.err(&format!("transformer '{word}' is not supported here")));
            };
            self.i = end + 1;
            self.enter()?;
            let inner = self.operand()?;
            self.depth -= 1;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err("expected ')' after transformer argument"));
            }
            self.i += 1;
            return Ok(Operand::Transform(t, Box::new(inner)));
        }
        let start = self.i;
        let Some(end) = self.field_end(self.i) else {
            return Err(self.err(&format!("expected a field, got '{}'", self.snippet())));
        };
        let name = self.s[start..end].to_string();
        self.i = end;
        let mut arg = None;
        if self.peek() == Some(b'[') {
            self.i += 1;
            let a = match self.peek() {
                Some(q @ (b'"' | b'\'')) => self.quoted(q)?,
                _ => {
                    let s = self.i;
                    while self.i < self.b.len()
                        && !matches!(
                            self.b[self.i],
                            b' ' | b'\t' | b'\n' | b'\r' | 8 | b'[' | b']' | b'"' | b'\''
                        )
                    {
                        self.i += 1;
                    }
                    if s == self.i {
                        return Err(self.err("empty field argument"));
                    }
                    self.s[s..self.i].to_string()
                }
            };
            if self.peek() != Some(b']') {
                return Err(self.err("expected ']' after field argument"));
            }
            self.i += 1;
            arg = Some(a);
        }
        Ok(Operand::Field {
            name,
            arg,
            pos: start,
        })
    }

    fn quoted(&mut self, q: u8) -> Result<String, ParseError> {
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if c == b'\\' && self.i + 1 < self.b.len() {
                let n = self.b[self.i + 1];
                if n == q || n == b'\\' {
                    out.push(n);
                } else {
                    out.push(c);
                    out.push(n);
                }
                self.i += 2;
                continue;
            }
            if c == q {
                self.i += 1;
                return String::from_utf8(out).map_err(|_| ParseError {
                    pos: start,
                    message: "invalid UTF-8 in string".into(),
                });
            }
            out.push(c);
            self.i += 1;
        }
        Err(ParseError {
            pos: start,
            message: "unterminated quoted string".into(),
        })
    }

    fn value(&mut self) -> Result<Item, ParseError> {
        self.ws();
        let pos = self.i;
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => Ok(Item {
                text: self.quoted(q)?,
                quoted: true,
                pos,
            }),
            Some(c) if is_bare(c) => {
                while self.i < self.b.len() && is_bare(self.b[self.i]) {
                    self.i += 1;
                }
                // Never split a UTF-8 sequence: is_bare accepts every byte >= 0x80.
                Ok(Item {
                    text: self.s[pos..self.i].to_string(),
                    quoted: false,
                    pos,
                })
            }
            _ => Err(self.err(&format!("expected a value, got '{}'", self.snippet()))),
        }
    }

    fn list(&mut self) -> Result<Vec<Item>, ParseError> {
        // cursor on '('
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b')') {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                }
                Some(b')') => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(self.err("expected ',' or ')' in value list")),
            }
        }
    }

    fn rhs_operand(&mut self) -> Result<Option<Operand>, ParseError> {
        let Some((t, end)) = self.transformer_at() else {
            return Ok(None);
        };
        if t.is_none() && &self.s[self.i..end] == "val" {
            self.i = end + 1;
            let inner = self.operand()?;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err("expected ')' after val(field"));
            }
            self.i += 1;
            return Ok(Some(inner));
        }
        self.operand().map(Some)
    }

    fn condition(&mut self, lhs: Operand, pos: usize) -> Result<Expr, ParseError> {
        self.ws();
        let op_start = self.i;
        let op_text: &str = match self.peek() {
            Some(b'=') => {
                if self.b.get(self.i + 1) == Some(&b'=') {
                    self.i += 2;
                    "=="
                } else {
                    self.i += 1;
                    "="
                }
            }
            Some(b'!') if self.b.get(self.i + 1) == Some(&b'=') => {
                self.i += 2;
                "!="
            }
            Some(c @ (b'<' | b'>')) => {
                if self.b.get(self.i + 1) == Some(&b'=') {
                    self.i += 2;
                    if c == b'<' { "<=" } else { ">=" }
                } else {
                    self.i += 1;
                    if c == b'<' { "<" } else { ">" }
                }
            }
            _ => match self.ident_end(self.i) {
                Some(end) => {
                    let w = &self.s[self.i..end];
                    self.i = end;
                    w
                }
                None => {
                    return Err(
                        self.err(&format!("expected an operator, got '{}'", self.snippet()))
                    );
                }
            },
        };
        let Some(op) = Op::parse(op_text) else {
            self.i = op_start;
            return Err(self.err(&format!("unknown operator '{op_text}'")));
        };
        let rhs = if op == Op::Exists {
            Rhs::None
        } else if op.is_list() {
            self.ws();
            match self.peek() {
                Some(b'(') => Rhs::List(self.list()?),
                _ => {
                    if let Some(o) = self.rhs_operand()? {
                        Rhs::Operand(o)
                    } else if let Some(end) = self.ident_end(self.i) {
                        let item = Item {
                            text: self.s[self.i..end].to_string(),
                            quoted: false,
                            pos: self.i,
                        };
                        self.i = end;
                        Rhs::List(vec![item])
                    } else {
                        return Err(
                            self.err(&format!("expected '(' or a list name after '{op_text}'"))
                        );
                    }
                }
            }
        } else {
            self.ws();
            if let Some(o) = self.rhs_operand()? {
                Rhs::Operand(o)
            } else {
                Rhs::Value(self.value()?)
            }
        };
        Ok(Expr::Check(Box::new(Check { lhs, op, rhs, pos })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: &Expr) -> String {
        match e {
            Expr::Check(c) => match &c.lhs {
                Operand::Field { name, .. } => name.clone(),
                _ => "T".into(),
            },
            Expr::Macro(m, _) => m.clone(),
            Expr::And(v) => format!("and({})", v.iter().map(field).collect::<Vec<_>>().join(",")),
            Expr::Or(v) => format!("or({})", v.iter().map(field).collect::<Vec<_>>().join(",")),
            Expr::Not(e) => format!("not({})", field(e)),
        }
    }

    #[test]
    fn precedence() {
        let e = parse_condition("a.x=1 or b.x=1 and not c.x=1").unwrap();
        assert_eq!(field(&e), "or(a.x,and(b.x,not(c.x)))");
        let e = parse_condition("not a.x=1 and b").unwrap();
        assert_eq!(field(&e), "and(not(a.x),b)");
        let e = parse_condition("(a or b) and(c)").unwrap();
        assert_eq!(field(&e), "and(or(a,b),c)");
        let e = parse_condition("not(a) and not not b").unwrap();
        assert_eq!(field(&e), "and(not(a),not(not(b)))");
    }

    #[test]
    fn operators_and_values() {
        let e = parse_condition(
            "proc.name in (a, \"b c\", 'd') and fd.name pmatch (x) and proc.aname[2]=sh and evt.arg.flags contains O_TRUNC and proc.cmdline icontains 'x' and fd.name exists and proc.name=val(proc.pname) and tolower(proc.name) = toupper(proc.pname) and proc.name in shell_binaries and evt.type!=open and proc.pid<=3",
        )
        .unwrap();
        let Expr::And(v) = e else { panic!() };
        assert_eq!(v.len(), 11);
        let Expr::Check(c) = &v[0] else { panic!() };
        let Rhs::List(items) = &c.rhs else { panic!() };
        assert_eq!(items[1].text, "b c");
        assert!(items[1].quoted);
        let Expr::Check(c) = &v[2] else { panic!() };
        assert!(matches!(&c.lhs, Operand::Field { arg: Some(a), .. } if a == "2"));
        let Expr::Check(c) = &v[6] else { panic!() };
        assert!(matches!(&c.rhs, Rhs::Operand(_)));
        let Expr::Check(c) = &v[8] else { panic!() };
        assert!(matches!(&c.rhs, Rhs::List(l) if l[0].text == "shell_binaries"));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "proc.name =",
            "proc.name in (a,",
            "(proc.name = a",
            "proc.name foo bar",
            "proc.name = a b",
            "and",
            "proc.name = 'x",
            "proc.name[ = 1",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse_condition("proc.name = a )").unwrap_err();
        assert_eq!(e.pos, 14);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = "(".repeat(10_000) + "a" + &")".repeat(10_000);
        assert!(parse_condition(&s).is_err());
        let s = "not ".repeat(10_000) + "a";
        assert!(parse_condition(&s).is_err());
    }
}
