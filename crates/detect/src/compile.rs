//! From collected definitions to compiled rules: list expansion, macro resolution (with
//! visibility and loop detection), exceptions, field lookup, typed values, event-type sets.

use crate::diag::{Diagnostic, LeftOut, Level};
use crate::eval::{CCheck, COperand, Cidr, Glob, Node, Ord_, PathSet, StrSet, Test};
use crate::loader::{self, Collected, Entry, ExceptionDef, Loc, RuleDef, Source, Text};
use crate::output::OutputFormat;
use crate::parser::{self, Check, Expr, Item, Op, Operand, Rhs};
use model::fields::{FieldKind, FieldType, Lookup};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

/// Where a check came from (to place diagnostics).
#[derive(Debug, Clone, Copy)]
enum Origin {
    Rule,
    Macro(usize),
    Fixed(Loc),
}

/// A condition with macros resolved.
#[derive(Debug, Clone)]
enum RExpr {
    And(Vec<RExpr>),
    Or(Vec<RExpr>),
    Not(Box<RExpr>),
    Check(Rc<Check>, Origin),
    Shared(Rc<RExpr>),
}

/// Event types a rule can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSet {
    /// Only these.
    Only(BTreeSet<String>),
    /// All but these.
    AllExcept(BTreeSet<String>),
}

impl TypeSet {
    fn all() -> Self {
        TypeSet::AllExcept(BTreeSet::new())
    }
    fn complement(self) -> Self {
        match self {
            TypeSet::Only(s) => TypeSet::AllExcept(s),
            TypeSet::AllExcept(s) => TypeSet::Only(s),
        }
    }
    fn union(self, o: Self) -> Self {
        use TypeSet::*;
        match (self, o) {
            (Only(a), Only(b)) => Only(a.union(&b).cloned().collect()),
            (Only(a), AllExcept(b)) | (AllExcept(b), Only(a)) => {
                AllExcept(b.difference(&a).cloned().collect())
            }
            (AllExcept(a), AllExcept(b)) => AllExcept(a.intersection(&b).cloned().collect()),
        }
    }
    fn intersect(self, o: Self) -> Self {
        self.complement().union(o.complement()).complement()
    }
}

/// (may be true for, may be false for).
fn type_sets(n: &Node) -> (TypeSet, TypeSet) {
    match n {
        Node::And(v) => v.iter().fold(
            (TypeSet::all(), TypeSet::Only(BTreeSet::new())),
            |(t, f), n| {
                let (nt, nf) = type_sets(n);
                (t.intersect(nt), f.union(nf))
            },
        ),
        Node::Or(v) => v.iter().fold(
            (TypeSet::Only(BTreeSet::new()), TypeSet::all()),
            |(t, f), n| {
                let (nt, nf) = type_sets(n);
                (t.union(nt), f.intersect(nf))
            },
        ),
        Node::Not(n) => {
            let (t, f) = type_sets(n);
            (f, t)
        }
        Node::Const(true) => (TypeSet::all(), TypeSet::Only(BTreeSet::new())),
        Node::Const(false) => (TypeSet::Only(BTreeSet::new()), TypeSet::all()),
        Node::Check(c) => {
            if c.lhs.field.kind != FieldKind::EvtType || !c.lhs.transforms.is_empty() {
                return (TypeSet::all(), TypeSet::all());
            }
            match &c.test {
                Test::StrEq(s, ne) => {
                    let one: BTreeSet<String> = [s.to_string()].into();
                    let t = TypeSet::Only(one.clone());
                    let f = TypeSet::AllExcept(one);
                    if *ne { (f, t) } else { (t, f) }
                }
                Test::StrIn(set) => {
                    let items: BTreeSet<String> = match set {
                        StrSet::Small(v) => v.iter().map(|s| s.to_string()).collect(),
                        StrSet::Hashed(h, _) => h.iter().map(|s| s.to_string()).collect(),
                    };
                    (TypeSet::Only(items.clone()), TypeSet::AllExcept(items))
                }
                _ => (TypeSet::all(), TypeSet::all()),
            }
        }
    }
}

/// A compiled rule (crate-internal parts).
pub struct Compiled {
    /// The public rule.
    pub rule: crate::Rule,
    /// Its condition.
    pub cond: Node,
    /// Its output.
    pub output: OutputFormat,
    /// Event types it can match.
    pub types: TypeSet,
}

struct Cx<'a> {
    sources: &'a [Source],
    col: &'a Collected,
    lists: Vec<Option<Rc<Vec<String>>>>,
    list_by_name: HashMap<&'a str, usize>,
    macro_exprs: Vec<Option<Rc<RExpr>>>,
    macro_texts: Vec<&'a Text>,
    diags: Vec<Diagnostic>,
    /// Fields used by each macro that are unsupported or unknown: (name, msg, pos).
    used_lists: Vec<bool>,
}

enum Issue {
    Unsupported(String),
    Unknown(String, Loc),
    Invalid(String, Loc),
}

/// Compiles everything collected. Returns the compiled rules (in definition order), the
/// rules left out, and diagnostics.
pub fn compile(
    sources: &[Source],
    col: &Collected,
) -> (Vec<Compiled>, Vec<LeftOut>, Vec<Diagnostic>) {
    let mut cx = Cx {
        sources,
        col,
        lists: vec![None; col.lists.len()],
        list_by_name: col
            .lists
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect(),
        macro_exprs: vec![None; col.macros.len()],
        macro_texts: col.macros.iter().map(|m| &m.cond).collect(),
        diags: Vec::new(),
        used_lists: vec![false; col.lists.len()],
    };
    cx.expand_lists();
    cx.resolve_macros();
    let mut out = Vec::new();
    let mut left_out = Vec::new();
    for r in &col.rules {
        if r.unknown_source {
            left_out.push(LeftOut {
                rule: r.name.clone(),
                reason: format!("unknown source '{}'", r.source),
                fields: vec![],
            });
            continue;
        }
        match cx.compile_rule(r) {
            Ok(c) => out.push(c),
            Err(l) => left_out.push(l),
        }
    }
    let _ = &cx.used_lists;
    (out, left_out, cx.diags)
}

impl<'a> Cx<'a> {
    fn error(&mut self, code: &'static str, item: String, msg: String, loc: Option<Loc>) {
        self.diags.push(loader::diag(
            self.sources,
            Level::Error,
            code,
            Some(item),
            msg,
            loc,
        ));
    }

    fn warn(&mut self, code: &'static str, item: String, msg: String, loc: Option<Loc>) {
        self.diags.push(loader::diag(
            self.sources,
            Level::Warning,
            code,
            Some(item),
            msg,
            loc,
        ));
    }

    fn expand_lists(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum St {
            New,
            Busy,
            Done,
        }
        let n = self.col.lists.len();
        let mut state = vec![St::New; n];
        fn go(
            cx: &mut Cx<'_>,
            i: usize,
            state: &mut Vec<St>,
            path: &mut Vec<usize>,
        ) -> Result<Rc<Vec<String>>, Vec<usize>> {
            if state[i] == St::Done {
                return cx.lists[i].clone().ok_or_else(Vec::new);
            }
            if state[i] == St::Busy {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cyc = path[start..].to_vec();
                cyc.push(i);
                return Err(cyc);
            }
            state[i] = St::Busy;
            path.push(i);
            let def = &cx.col.lists[i];
            let mut items = Vec::new();
            let mut result = Ok(());
            for it in &def.items {
                match cx.list_by_name.get(it.as_str()).copied() {
                    Some(j) if cx.col.lists[j].index < def.visibility => {
                        cx.used_lists[j] = true;
                        match go(cx, j, state, path) {
                            Ok(v) => items.extend(v.iter().cloned()),
                            Err(c) => {
                                result = Err(c);
                                break;
                            }
                        }
                    }
                    _ => items.push(it.clone()),
                }
            }
            path.pop();
            state[i] = St::Done;
            match result {
                Ok(()) => {
                    let v = Rc::new(items);
                    cx.lists[i] = Some(v.clone());
                    Ok(v)
                }
                Err(c) => Err(c),
            }
        }
        for i in 0..n {
            if state[i] != St::New {
                continue;
            }
            let mut path = Vec::new();
            if let Err(cyc) = go(self, i, &mut state, &mut path) {
                if cyc.is_empty() {
                    continue;
                }
                let names: Vec<&str> = cyc
                    .iter()
                    .map(|&j| self.col.lists[j].name.as_str())
                    .collect();
                let msg = format!("Reference loop in list: {}", names.join(" -> "));
                let first = cyc[0];
                let loc = self.col.lists[first].loc;
                let item = format!("list '{}'", self.col.lists[first].name);
                self.error("LOAD_ERR_VALIDATE", item, msg, Some(loc));
            }
        }
    }

    fn resolve_macros(&mut self) {
        let n = self.col.macros.len();
        let mut parsed: Vec<Option<Expr>> = Vec::with_capacity(n);
        for m in &self.col.macros {
            match parser::parse_condition(&m.cond.text) {
                Ok(e) => parsed.push(Some(e)),
                Err(e) => {
                    let loc = loader::locate(self.sources, &m.cond, e.pos);
                    let item = format!("macro '{}'", m.name);
                    self.error("LOAD_ERR_COMPILE_CONDITION", item, e.message, loc);
                    parsed.push(None);
                }
            }
        }
        #[derive(Clone, Copy, PartialEq)]
        enum St {
            New,
            Busy,
            Done,
        }
        let mut state = vec![St::New; n];
        // Iterative over macros, recursive over references.
        fn go(
            cx: &mut Cx<'_>,
            parsed: &[Option<Expr>],
            i: usize,
            state: &mut Vec<St>,
            stack: &mut Vec<usize>,
        ) -> Option<Rc<RExpr>> {
            match state[i] {
                St::Done => return cx.macro_exprs[i].clone(),
                St::Busy => return None,
                St::New => {}
            }
            state[i] = St::Busy;
            stack.push(i);
            let vis = cx.col.macros[i].visibility;
            let res = match &parsed[i] {
                Some(e) => {
                    let mut errs = Vec::new();
                    let r = resolve(
                        cx,
                        parsed,
                        e,
                        Origin::Macro(i),
                        Some(vis),
                        state,
                        stack,
                        &mut errs,
                    );
                    if let Some((msg, pos)) = errs.into_iter().next() {
                        let loc = loader::locate(cx.sources, &cx.col.macros[i].cond, pos);
                        let item = format!("macro '{}'", cx.col.macros[i].name);
                        cx.error("LOAD_ERR_COMPILE_CONDITION", item, msg, loc);
                        None
                    } else {
                        r.map(Rc::new)
                    }
                }
                None => None,
            };
            stack.pop();
            state[i] = St::Done;
            cx.macro_exprs[i] = res.clone();
            res
        }
        #[allow(clippy::too_many_arguments)]
        fn resolve(
            cx: &mut Cx<'_>,
            parsed: &[Option<Expr>],
            e: &Expr,
            origin: Origin,
            vis: Option<u32>,
            state: &mut Vec<St>,
            stack: &mut Vec<usize>,
            errs: &mut Vec<(String, usize)>,
        ) -> Option<RExpr> {
            Some(match e {
                Expr::And(v) => RExpr::And(
                    v.iter()
                        .map(|x| resolve(cx, parsed, x, origin, vis, state, stack, errs))
                        .collect::<Option<_>>()?,
                ),
                Expr::Or(v) => RExpr::Or(
                    v.iter()
                        .map(|x| resolve(cx, parsed, x, origin, vis, state, stack, errs))
                        .collect::<Option<_>>()?,
                ),
                Expr::Not(x) => RExpr::Not(Box::new(resolve(
                    cx, parsed, x, origin, vis, state, stack, errs,
                )?)),
                Expr::Check(c) => RExpr::Check(Rc::new((**c).clone()), origin),
                Expr::Macro(name, pos) => {
                    let j = cx.col.macro_(name).filter(|&j| match vis {
                        Some(v) => cx.col.macros[j].index < v,
                        None => true,
                    });
                    let Some(j) = j else {
                        errs.push((format!("Undefined macro '{name}' used in filter."), *pos));
                        return None;
                    };
                    if state[j] == St::Busy {
                        let start = stack.iter().position(|&p| p == j).unwrap_or(0);
                        let mut names: Vec<&str> = stack[start..]
                            .iter()
                            .map(|&k| cx.col.macros[k].name.as_str())
                            .collect();
                        names.push(name);
                        errs.push((
                            format!("Reference loop in macro '{name}': {}", names.join(" -> ")),
                            *pos,
                        ));
                        return None;
                    }
                    match go(cx, parsed, j, state, stack) {
                        Some(r) => RExpr::Shared(r),
                        None => {
                            if cx.macro_exprs[j].is_none() && state[j] == St::Done {
                                errs.push((format!("macro '{name}' has errors"), *pos));
                            }
                            return None;
                        }
                    }
                }
            })
        }
        for i in 0..n {
            let mut stack = Vec::new();
            go(self, &parsed, i, &mut state, &mut stack);
        }
    }
}

// Rules see every macro (no visibility limit); macros are all resolved by now.
impl Cx<'_> {
    fn resolve_rule(&mut self, e: &Expr, origin: Origin) -> Result<RExpr, Vec<(String, usize)>> {
        let mut errs = Vec::new();
        let r = self.resolve_rule_inner(e, origin, &mut errs);
        match r {
            Some(r) if errs.is_empty() => Ok(r),
            _ => Err(errs),
        }
    }

    fn resolve_rule_inner(
        &mut self,
        e: &Expr,
        origin: Origin,
        errs: &mut Vec<(String, usize)>,
    ) -> Option<RExpr> {
        Some(match e {
            Expr::And(v) => RExpr::And(
                v.iter()
                    .map(|x| self.resolve_rule_inner(x, origin, errs))
                    .collect::<Option<_>>()?,
            ),
            Expr::Or(v) => RExpr::Or(
                v.iter()
                    .map(|x| self.resolve_rule_inner(x, origin, errs))
                    .collect::<Option<_>>()?,
            ),
            Expr::Not(x) => RExpr::Not(Box::new(self.resolve_rule_inner(x, origin, errs)?)),
            Expr::Check(c) => RExpr::Check(Rc::new((**c).clone()), origin),
            Expr::Macro(name, pos) => {
                let Some(j) = self.col.macro_(name) else {
                    errs.push((format!("Undefined macro '{name}' used in filter."), *pos));
                    return None;
                };
                match self.macro_exprs[j].clone() {
                    Some(r) => RExpr::Shared(r),
                    None => {
                        errs.push((format!("macro '{name}' has errors"), *pos));
                        return None;
                    }
                }
            }
        })
    }
}

/// Falco's `quote_item` + parse: an exception value as a condition item.
fn exception_item(v: &str, loc_pos: usize) -> Item {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        return Item {
            text: v[1..v.len() - 1].to_string(),
            quoted: true,
            pos: loc_pos,
        };
    }
    Item {
        text: v.to_string(),
        quoted: v.contains(' '),
        pos: loc_pos,
    }
}

fn exception_list(v: &str) -> Vec<Item> {
    // "(a, b)" written as one value: split it as the condition parser would.
    let inner = v.trim().trim_start_matches('(').trim_end_matches(')');
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| exception_item(s, 0))
        .collect()
}

fn field_operand(name: &str) -> Operand {
    match name.find('[') {
        Some(i) if name.ends_with(']') => Operand::Field {
            name: name[..i].to_string(),
            arg: Some(name[i + 1..name.len() - 1].to_string()),
            pos: 0,
        },
        _ => Operand::Field {
            name: name.to_string(),
            arg: None,
            pos: 0,
        },
    }
}

/// Builds `not (...)` for one exception (`None` when it has no values).
fn exception_expr(ex: &ExceptionDef) -> Result<Option<RExpr>, String> {
    let origin = Origin::Fixed(ex.loc);
    let check = |field: &str, op: Op, rhs: Rhs| {
        RExpr::Check(
            Rc::new(Check {
                lhs: field_operand(field),
                op,
                rhs,
                pos: 0,
            }),
            origin,
        )
    };
    match &ex.fields {
        Entry::Item(field) => {
            let comp = match &ex.comps {
                Entry::Item(c) => c.as_str(),
                _ => "in",
            };
            let op = Op::parse(comp)
                .ok_or_else(|| format!("'{comp}' is not a supported comparison operator"))?;
            let mut items = Vec::new();
            for v in &ex.values {
                match v {
                    Entry::Item(s) => items.push(exception_item(s, 0)),
                    _ => return Err("Expected values array to contain a list of strings".into()),
                }
            }
            if items.is_empty() {
                return Ok(None);
            }
            Ok(Some(RExpr::Not(Box::new(check(
                field,
                op,
                Rhs::List(items),
            )))))
        }
        Entry::List(fields) => {
            let fields: Vec<&str> = fields
                .iter()
                .map(|f| match f {
                    Entry::Item(s) => Ok(s.as_str()),
                    _ => Err("exception fields must be strings".to_string()),
                })
                .collect::<Result<_, _>>()?;
            let comps: Vec<Op> = match &ex.comps {
                Entry::List(c) => c
                    .iter()
                    .map(|c| match c {
                        Entry::Item(s) => Op::parse(s)
                            .ok_or_else(|| format!("'{s}' is not a supported comparison operator")),
                        _ => Err("exception comps must be strings".to_string()),
                    })
                    .collect::<Result<_, _>>()?,
                _ => vec![Op::Eq; fields.len()],
            };
            let mut rows = Vec::new();
            for row in &ex.values {
                let Entry::List(vals) = row else {
                    return Err("Fields and values lists must have equal length".into());
                };
                if vals.len() != fields.len() {
                    return Err("Fields and values lists must have equal length".into());
                }
                let mut conj = Vec::new();
                for ((f, op), v) in fields.iter().zip(&comps).zip(vals) {
                    let rhs = match v {
                        Entry::List(items) => Rhs::List(
                            items
                                .iter()
                                .map(|i| match i {
                                    Entry::Item(s) => Ok(exception_item(s, 0)),
                                    _ => Err("nested lists in exception values".to_string()),
                                })
                                .collect::<Result<_, _>>()?,
                        ),
                        Entry::Item(s) if op.is_list() => {
                            if s.trim_start().starts_with('(') {
                                Rhs::List(exception_list(s))
                            } else {
                                Rhs::List(vec![Item {
                                    text: s.clone(),
                                    quoted: false,
                                    pos: 0,
                                }])
                            }
                        }
                        Entry::Item(s) => Rhs::Value(exception_item(s, 0)),
                        Entry::Unset => return Err("empty exception value".into()),
                    };
                    let rhs = if *op == Op::Exists { Rhs::None } else { rhs };
                    conj.push(check(f, *op, rhs));
                }
                rows.push(RExpr::And(conj));
            }
            if rows.is_empty() {
                return Ok(None);
            }
            Ok(Some(RExpr::Not(Box::new(RExpr::Or(rows)))))
        }
        Entry::Unset => {
            Err("Rule exception item must have fields property with a list of fields".into())
        }
    }
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    t.parse::<i64>().ok()
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Cx<'_> {
    fn place(&self, origin: Origin, rule: &RuleDef, pos: usize) -> Loc {
        match origin {
            Origin::Rule => loader::locate(self.sources, &rule.cond, pos).unwrap_or(rule.loc),
            Origin::Macro(i) => loader::locate(self.sources, self.macro_texts[i], pos)
                .unwrap_or(self.col.macros[i].loc),
            Origin::Fixed(l) => l,
        }
    }

    fn operand(
        &self,
        o: &Operand,
        origin: Origin,
        rule: &RuleDef,
        issues: &mut Vec<Issue>,
    ) -> Option<COperand> {
        let mut ts = Vec::new();
        let mut cur = o;
        while let Operand::Transform(t, inner) = cur {
            ts.push(*t);
            cur = inner;
        }
        ts.reverse();
        let Operand::Field { name, arg, pos } = cur else {
            return None;
        };
        match model::fields::lookup(name, arg.as_deref()) {
            Lookup::Supported(field) => Some(COperand {
                field,
                transforms: ts.into(),
            }),
            Lookup::Unsupported => {
                let full = match arg {
                    Some(a) => format!("{name}[{a}]"),
                    None => name.clone(),
                };
                issues.push(Issue::Unsupported(full));
                None
            }
            Lookup::Unknown(msg) => {
                issues.push(Issue::Unknown(msg, self.place(origin, rule, *pos)));
                None
            }
        }
    }

    fn expand_items(&mut self, items: &[Item]) -> Vec<String> {
        let mut out = Vec::new();
        for it in items {
            if !it.quoted
                && let Some(&j) = self.list_by_name.get(it.text.as_str())
            {
                self.used_lists[j] = true;
                if let Some(v) = &self.lists[j] {
                    // Falco splices list items into the condition text, so quoted items are
                    // unquoted by the condition parser.
                    out.extend(v.iter().map(|i| unquote(i).to_string()));
                }
                continue;
            }
            out.push(it.text.clone());
        }
        out
    }

    fn check(
        &mut self,
        c: &Check,
        origin: Origin,
        rule: &RuleDef,
        issues: &mut Vec<Issue>,
    ) -> Option<Node> {
        let lhs = self.operand(&c.lhs, origin, rule, issues);
        let rhs_op = match &c.rhs {
            Rhs::Operand(o) => Some(self.operand(o, origin, rule, issues)),
            _ => None,
        };
        let lhs = lhs?;
        let invalid = |this: &Self, issues: &mut Vec<Issue>, msg: String| {
            issues.push(Issue::Invalid(msg, this.place(origin, rule, c.pos)));
            None::<Node>
        };
        let fname = lhs.field.display_name();
        let ty = lhs.ty();
        let op = c.op;
        let test = match (&c.rhs, rhs_op) {
            (_, Some(Some(r))) => Test::Field(op, Box::new(r)),
            (_, Some(None)) => return None,
            (Rhs::None, _) => Test::Exists,
            (Rhs::List(items), _) => {
                if !op.is_list() {
                    return invalid(
                        self,
                        issues,
                        format!(
                            "operator '{}' takes a single value, not a list",
                            op.as_str()
                        ),
                    );
                }
                let vals = self.expand_items(items);
                match (op, ty) {
                    (Op::Pmatch, _) => Test::Pmatch(Box::new(PathSet::new(vals))),
                    (_, FieldType::Int) => {
                        let mut ints = Vec::new();
                        for v in &vals {
                            match parse_int(v) {
                                Some(i) => ints.push(i),
                                None => {
                                    return invalid(
                                        self,
                                        issues,
                                        format!("'{v}' is not a number (field {fname})"),
                                    );
                                }
                            }
                        }
                        Test::IntIn(ints.into())
                    }
                    (_, FieldType::Ip | FieldType::Net) => {
                        let mut nets = Vec::new();
                        for v in &vals {
                            match Cidr::parse(v) {
                                Some(n) => nets.push(n),
                                None => {
                                    return invalid(
                                        self,
                                        issues,
                                        format!(
                                            "'{v}' is not an IP address or network (field {fname})"
                                        ),
                                    );
                                }
                            }
                        }
                        Test::Nets(nets.into(), false)
                    }
                    _ => Test::StrIn(StrSet::new(vals)),
                }
            }
            (Rhs::Value(item), _) => {
                let v = item.text.as_str();
                match op {
                    Op::Eq | Op::Ne => {
                        let ne = op == Op::Ne;
                        match ty {
                            FieldType::Str => Test::StrEq(v.into(), ne),
                            FieldType::Int => match parse_int(v) {
                                Some(i) => Test::Int(if ne { Ord_::Ne } else { Ord_::Eq }, i),
                                None => {
                                    return invalid(
                                        self,
                                        issues,
                                        format!("'{v}' is not a number (field {fname})"),
                                    );
                                }
                            },
                            FieldType::Bool => match v {
                                "true" | "TRUE" | "True" | "1" => Test::Bool(true, ne),
                                "false" | "FALSE" | "False" | "0" => Test::Bool(false, ne),
                                _ => {
                                    return invalid(
                                        self,
                                        issues,
                                        format!("'{v}' is not a boolean (field {fname})"),
                                    );
                                }
                            },
                            FieldType::Ip | FieldType::Net => match (ty, v.parse()) {
                                (FieldType::Ip, Ok(ip)) => Test::Ip(ip, ne),
                                _ => match Cidr::parse(v) {
                                    Some(n) => Test::Nets(Box::new([n]), ne),
                                    None => {
                                        return invalid(
                                            self,
                                            issues,
                                            format!(
                                                "'{v}' is not an IP address or network (field {fname})"
                                            ),
                                        );
                                    }
                                },
                            },
                        }
                    }
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                        let o = match op {
                            Op::Lt => Ord_::Lt,
                            Op::Le => Ord_::Le,
                            Op::Gt => Ord_::Gt,
                            _ => Ord_::Ge,
                        };
                        match ty {
                            FieldType::Int => match parse_int(v) {
                                Some(i) => Test::Int(o, i),
                                None => {
                                    return invalid(
                                        self,
                                        issues,
                                        format!("'{v}' is not a number (field {fname})"),
                                    );
                                }
                            },
                            FieldType::Str => Test::StrOrd(o, v.into()),
                            _ => {
                                return invalid(
                                    self,
                                    issues,
                                    format!(
                                        "operator '{}' is not supported on field {fname}",
                                        op.as_str()
                                    ),
                                );
                            }
                        }
                    }
                    Op::Contains => Test::Contains(Box::new(
                        memchr::memmem::Finder::new(v.as_bytes()).into_owned(),
                    )),
                    Op::IContains => Test::IContains(v.to_ascii_lowercase().into_bytes().into()),
                    Op::StartsWith => Test::StartsWith(v.into()),
                    Op::EndsWith => Test::EndsWith(v.into()),
                    // `*literal*` is a substring test (and can join a multi-pattern matcher).
                    Op::Glob
                        if v.len() > 2
                            && v.starts_with('*')
                            && v.ends_with('*')
                            && !v[1..v.len() - 1].contains(['*', '?', '[', '\\']) =>
                    {
                        Test::Contains(Box::new(
                            memchr::memmem::Finder::new(&v.as_bytes()[1..v.len() - 1]).into_owned(),
                        ))
                    }
                    Op::Glob => Test::Glob(Glob::new(v, false)),
                    Op::IGlob => Test::Glob(Glob::new(v, true)),
                    Op::Regex => match regex::Regex::new(&format!("^(?:{v})$")) {
                        Ok(r) => Test::Regex(Box::new(r)),
                        Err(e) => {
                            return invalid(self, issues, format!("invalid regex '{v}': {e}"));
                        }
                    },
                    Op::BContains | Op::BStartsWith => match parse_hex(v) {
                        Some(bytes) if op == Op::BContains => Test::BContains(Box::new(
                            memchr::memmem::Finder::new(&bytes).into_owned(),
                        )),
                        Some(bytes) => Test::BStartsWith(bytes.into()),
                        None => return invalid(self, issues, format!("'{v}' is not a hex string")),
                    },
                    Op::In | Op::Intersects | Op::Pmatch => {
                        return invalid(
                            self,
                            issues,
                            format!("operator '{}' needs a list", op.as_str()),
                        );
                    }
                    Op::Exists => Test::Exists,
                }
            }
            (Rhs::Operand(_), None) => return None,
        };
        Some(Node::Check(Box::new(CCheck::new(lhs, test))))
    }

    fn lower(&mut self, e: &RExpr, rule: &RuleDef, issues: &mut Vec<Issue>) -> Option<Node> {
        match e {
            RExpr::And(v) => {
                let mut out = Vec::with_capacity(v.len());
                let mut ok = true;
                for x in v {
                    match self.lower(x, rule, issues) {
                        Some(n) => out.push(n),
                        None => ok = false,
                    }
                }
                ok.then(|| flatten(Node::And(out.into())))
            }
            RExpr::Or(v) => {
                let mut out = Vec::with_capacity(v.len());
                let mut ok = true;
                for x in v {
                    match self.lower(x, rule, issues) {
                        Some(n) => out.push(n),
                        None => ok = false,
                    }
                }
                ok.then(|| flatten(Node::Or(out.into())))
            }
            RExpr::Not(x) => self.lower(x, rule, issues).map(|n| Node::Not(Box::new(n))),
            RExpr::Check(c, origin) => self.check(c, *origin, rule, issues),
            RExpr::Shared(r) => self.lower(r, rule, issues),
        }
    }

    fn compile_rule(&mut self, r: &RuleDef) -> Result<Compiled, LeftOut> {
        let item = format!("rule '{}'", r.name);
        let left = |reason: String, fields: Vec<String>| LeftOut {
            rule: r.name.clone(),
            reason,
            fields,
        };
        let parsed = match parser::parse_condition(&r.cond.text) {
            Ok(e) => e,
            Err(e) => {
                let loc = loader::locate(self.sources, &r.cond, e.pos).or(Some(r.loc));
                self.error("LOAD_ERR_COMPILE_CONDITION", item, e.message.clone(), loc);
                return Err(left(format!("condition error: {}", e.message), vec![]));
            }
        };
        let mut resolved = match self.resolve_rule(&parsed, Origin::Rule) {
            Ok(x) => x,
            Err(errs) => {
                let (msg, pos) = errs.into_iter().next().unwrap_or_default();
                let loc = loader::locate(self.sources, &r.cond, pos).or(Some(r.loc));
                self.error("LOAD_ERR_COMPILE_CONDITION", item, msg.clone(), loc);
                return Err(left(format!("condition error: {msg}"), vec![]));
            }
        };
        let mut conj = vec![resolved];
        for ex in &r.exceptions {
            match exception_expr(ex) {
                Ok(Some(x)) => conj.push(x),
                Ok(None) => {}
                Err(msg) => {
                    self.error("LOAD_ERR_VALIDATE", item, msg.clone(), Some(ex.loc));
                    return Err(left(format!("exception error: {msg}"), vec![]));
                }
            }
        }
        resolved = if conj.len() == 1 {
            conj.pop().unwrap_or(RExpr::And(vec![]))
        } else {
            RExpr::And(conj)
        };
        let mut issues = Vec::new();
        let node = self.lower(&resolved, r, &mut issues);
        // Output.
        let out_text = &r.output;
        let output = OutputFormat::parse(&out_text.text);
        let mut out_unknown = Vec::new();
        let mut out_unsupported = Vec::new();
        for (name, l) in output.lookups() {
            match l {
                Lookup::Unknown(msg) => out_unknown.push(msg),
                Lookup::Unsupported => out_unsupported.push(name),
                Lookup::Supported(_) => {}
            }
        }
        let mut unsupported: Vec<String> = Vec::new();
        let mut unknown = Vec::new();
        let mut invalid = Vec::new();
        for i in issues {
            match i {
                Issue::Unsupported(f) => {
                    if !unsupported.contains(&f) {
                        unsupported.push(f);
                    }
                }
                Issue::Unknown(m, l) => unknown.push((m, l)),
                Issue::Invalid(m, l) => invalid.push((m, l)),
            }
        }
        if let Some((m, l)) = invalid.into_iter().next() {
            self.error("LOAD_ERR_COMPILE_CONDITION", item, m.clone(), Some(l));
            return Err(left(format!("condition error: {m}"), vec![]));
        }
        if let Some((m, l)) = unknown.into_iter().next() {
            if r.skip_if_unknown_filter {
                self.warn(
                    "LOAD_UNKNOWN_FILTER",
                    item,
                    format!("{m}; rule skipped (skip-if-unknown-filter)"),
                    Some(l),
                );
            } else {
                self.error("LOAD_ERR_COMPILE_CONDITION", item, m.clone(), Some(l));
            }
            return Err(left(format!("unknown field: {m}"), vec![]));
        }
        if let Some(m) = out_unknown.into_iter().next() {
            let loc = out_text.segments.first().map(|s| s.loc).or(Some(r.loc));
            if r.skip_if_unknown_filter {
                self.warn(
                    "LOAD_UNKNOWN_FILTER",
                    item,
                    format!("output: {m}; rule skipped (skip-if-unknown-filter)"),
                    loc,
                );
            } else {
                self.error("LOAD_ERR_COMPILE_OUTPUT", item, format!("output: {m}"), loc);
            }
            return Err(left(format!("unknown output field: {m}"), vec![]));
        }
        if !unsupported.is_empty() {
            if !r.skip_if_unknown_filter {
                self.warn(
                    "LOAD_UNKNOWN_FILTER",
                    item,
                    format!(
                        "uses fields Vigil does not collect yet: {}; rule left out",
                        unsupported.join(", ")
                    ),
                    Some(r.cond.segments.first().map_or(r.loc, |s| s.loc)),
                );
            }
            return Err(left(
                format!(
                    "uses fields Vigil does not collect yet: {}",
                    unsupported.join(", ")
                ),
                unsupported,
            ));
        }
        let Some(node) = node else {
            return Err(left("condition could not be compiled".into(), vec![]));
        };
        if !out_unsupported.is_empty() {
            let loc = out_text.segments.first().map(|s| s.loc).or(Some(r.loc));
            self.warn(
                "LOAD_UNKNOWN_FILTER",
                item.clone(),
                format!(
                    "output uses fields Vigil does not collect yet (shown as <NA>): {}",
                    out_unsupported.join(", ")
                ),
                loc,
            );
        }
        let (types, _) = type_sets(&node);
        if r.source == "syscall" && r.warn_evttypes && matches!(&types, TypeSet::AllExcept(_)) {
            self.warn(
                "LOAD_NO_EVTTYPE",
                item,
                "Rule matches too many evt.type values. This has a significant performance penalty.".into(),
                Some(r.loc),
            );
        }
        let rule = crate::Rule {
            name: r.name.clone(),
            desc: r.desc.clone(),
            priority: r.priority,
            source: r.source.clone(),
            tags: r.tags.iter().cloned().collect(),
            enabled: r.enabled,
            condition: r.cond.text.clone(),
            output: r.output.text.clone(),
        };
        Ok(Compiled {
            rule,
            cond: node,
            output,
            types,
        })
    }
}

fn flatten(n: Node) -> Node {
    match n {
        Node::And(v) if v.len() == 1 => v.into_vec().pop().unwrap_or(Node::Const(true)),
        Node::Or(v) if v.len() == 1 => v.into_vec().pop().unwrap_or(Node::Const(false)),
        Node::And(v) => {
            let mut out = Vec::with_capacity(v.len());
            for x in v.into_vec() {
                match x {
                    Node::And(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            Node::And(out.into())
        }
        Node::Or(v) => {
            let mut out = Vec::with_capacity(v.len());
            for x in v.into_vec() {
                match x {
                    Node::Or(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            Node::Or(out.into())
        }
        other => other,
    }
}

/// Rough evaluation cost, to try cheap checks first in `and` / `or`.
fn cost(n: &Node) -> u32 {
    match n {
        Node::Const(_) => 0,
        Node::Not(x) => cost(x),
        Node::And(v) | Node::Or(v) => v.iter().map(cost).sum::<u32>() / 2 + 1,
        Node::Check(c) => {
            let base = match &c.test {
                Test::Exists | Test::Bool(..) | Test::Int(..) | Test::IntIn(_) | Test::Ip(..) => 1,
                Test::StrEq(..) | Test::StrOrd(..) | Test::Nets(..) => 2,
                Test::StrIn(_) | Test::StartsWith(_) | Test::EndsWith(_) | Test::BStartsWith(_) => {
                    3
                }
                Test::Pmatch(_) => 5,
                Test::Contains(_) | Test::BContains(_) => 8,
                Test::IContains(_) | Test::Glob(_) => 12,
                Test::Regex(_) | Test::Field(..) => 20,
                Test::AnyContains(_) => 10,
            };
            let mut c2 = base;
            if c.lhs.field.needs_scratch() {
                c2 += 4;
            }
            if c.lhs.field.is_multi() {
                c2 *= 3;
            }
            if !c.lhs.transforms.is_empty() {
                c2 += 10;
            }
            c2
        }
    }
}

/// Specializes a condition for events of type `kind` (when known): `evt.type` checks become
/// constants, constants are folded, and the operands of `and` / `or` are ordered cheapest
/// first. The result matches exactly the same events of that type.
pub fn specialize(n: &Node, kind: Option<&str>) -> Node {
    match n {
        Node::Const(b) => Node::Const(*b),
        Node::Not(x) => match specialize(x, kind) {
            Node::Const(b) => Node::Const(!b),
            other => Node::Not(Box::new(other)),
        },
        Node::And(v) | Node::Or(v) => {
            let is_and = matches!(n, Node::And(_));
            let mut out = Vec::with_capacity(v.len());
            for x in v.iter() {
                match specialize(x, kind) {
                    Node::Const(b) if b == is_and => {}
                    Node::Const(b) => return Node::Const(b),
                    other => out.push(other),
                }
            }
            let mut out = merge_sets(out, is_and);
            if !is_and {
                out = merge_contains(out);
                out = factor_or(out);
            }
            // In `and`, negated parts (usually exception lists, nearly always true) cannot
            // reject an event early: evaluate positive parts first, cheapest first.
            out.sort_by_key(|n| (is_and && matches!(n, Node::Not(_)), cost(n)));
            match out.len() {
                0 => Node::Const(is_and),
                1 => out.pop().unwrap_or(Node::Const(is_and)),
                _ => flatten(if is_and {
                    Node::And(out.into())
                } else {
                    Node::Or(out.into())
                }),
            }
        }
        Node::Check(c) => {
            // Membership in an empty list never holds, whatever the value (or its absence).
            if matches!(&c.test, Test::StrIn(set) if set.is_empty())
                || matches!(&c.test, Test::IntIn(v) if v.is_empty())
            {
                return Node::Const(false);
            }
            // Fields with a constant value: evt.dir is always "<"; evt.num is > 0, so tests
            // against 0 or below are constant.
            let constant = c.lhs.transforms.is_empty()
                && match (&c.lhs.field.kind, &c.test) {
                    (FieldKind::EvtDir, t) => !matches!(t, Test::Field(..)),
                    (FieldKind::EvtNum, Test::Int(_, v)) => *v <= 0,
                    _ => false,
                };
            if constant {
                let probe = model::Event {
                    ts: chrono_one(),
                    ..Default::default()
                };
                let mut s = crate::eval::EvalScratch::default();
                return Node::Const(crate::eval::eval(n, &probe, &mut s));
            }
            if let Some(k) = kind
                && c.lhs.field.kind == FieldKind::EvtType
                && !matches!(c.test, Test::Field(..))
            {
                let probe = model::Event {
                    kind: k.to_string().into(),
                    ..Default::default()
                };
                let mut s = crate::eval::EvalScratch::default();
                return Node::Const(crate::eval::eval(n, &probe, &mut s));
            }
            n.clone()
        }
    }
}

/// Identity of a plain check for factoring (`None` for other nodes and for tests whose
/// debug form is large).
fn factor_key(n: &Node) -> Option<String> {
    let Node::Check(c) = n else { return None };
    if matches!(c.test, Test::AnyContains(_) | Test::Regex(_)) {
        return None;
    }
    Some(format!("{:?}|{:?}", c.lhs, c.test))
}

/// `(a and b) or (a and c) or d` → `(a and (b or c)) or d`: a check shared by several
/// branches of an `or` is then evaluated once, and rejects all of them at once when false.
/// Pure boolean algebra (evaluation has no side effects), so the same events match.
fn factor_or(mut nodes: Vec<Node>) -> Vec<Node> {
    loop {
        // The check shared by the most `and` branches.
        let mut counts: HashMap<String, usize> = HashMap::new();
        for n in &nodes {
            if let Node::And(v) = n {
                let mut seen = std::collections::HashSet::new();
                for k in v.iter().filter_map(factor_key) {
                    if seen.insert(k.clone()) {
                        *counts.entry(k).or_default() += 1;
                    }
                }
            }
        }
        let Some((key, _)) = counts
            .into_iter()
            .filter(|(_, c)| *c >= 2)
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        else {
            return nodes;
        };
        let mut shared: Option<Node> = None;
        let mut rests: Vec<Node> = Vec::new();
        let mut absorbed = false;
        let mut at = None;
        let mut keep = Vec::with_capacity(nodes.len());
        for n in nodes {
            let Node::And(v) = n else {
                keep.push(n);
                continue;
            };
            if !v
                .iter()
                .any(|x| factor_key(x).as_deref() == Some(key.as_str()))
            {
                keep.push(Node::And(v));
                continue;
            }
            at.get_or_insert(keep.len());
            let mut rest = Vec::with_capacity(v.len());
            for x in v.into_vec() {
                if factor_key(&x).as_deref() == Some(key.as_str()) {
                    shared.get_or_insert(x);
                } else {
                    rest.push(x);
                }
            }
            match rest.len() {
                // `a or (a and b)` = `a`.
                0 => absorbed = true,
                1 => rests.extend(rest),
                _ => rests.push(Node::And(rest.into())),
            }
        }
        let (Some(shared), Some(at)) = (shared, at) else {
            return keep;
        };
        let group = if absorbed {
            shared
        } else {
            let mut inner = factor_or(merge_contains(merge_sets(rests, false)));
            inner.sort_by_key(cost);
            let inner = if inner.len() == 1 {
                inner.pop().unwrap_or(Node::Const(false))
            } else {
                flatten(Node::Or(inner.into()))
            };
            let mut and = vec![shared, inner];
            and.sort_by_key(|n| (matches!(n, Node::Not(_)), cost(n)));
            flatten(Node::And(and.into()))
        };
        keep.insert(at, group);
        nodes = keep;
    }
}

fn chrono_one() -> model::Time {
    // Any time after the epoch: evt.num is then >= 1.
    model::Time::default() + std::time::Duration::from_secs(1)
}

/// A set-membership check on a plain single-valued field: `(field, items)`.
fn set_check(n: &Node) -> Option<(&model::fields::Field, Vec<String>)> {
    let Node::Check(c) = n else { return None };
    if !c.lhs.transforms.is_empty() || c.lhs.field.is_multi() {
        return None;
    }
    if c.lhs.field.field_type() != FieldType::Str {
        return None;
    }
    match &c.test {
        Test::StrEq(v, false) => Some((&c.lhs.field, vec![v.to_string()])),
        Test::StrIn(set) => Some((&c.lhs.field, set.items())),
        _ => None,
    }
}

/// `a contains X or a icontains Y or …` → one multi-pattern matcher (Aho-Corasick).
fn merge_contains(nodes: Vec<Node>) -> Vec<Node> {
    fn pat(n: &Node) -> Option<(&model::fields::Field, Vec<u8>, bool)> {
        let Node::Check(c) = n else { return None };
        if !c.lhs.transforms.is_empty() || c.lhs.field.is_multi() {
            return None;
        }
        match &c.test {
            Test::Contains(f) => Some((&c.lhs.field, f.needle().to_vec(), false)),
            Test::IContains(n) => Some((&c.lhs.field, n.to_vec(), true)),
            _ => None,
        }
    }
    let mut groups: Vec<(model::fields::Field, bool, Vec<Vec<u8>>)> = Vec::new();
    for n in &nodes {
        if let Some((f, p, ci)) = pat(n) {
            match groups.iter_mut().find(|g| &g.0 == f && g.1 == ci) {
                Some(g) => g.2.push(p),
                None => groups.push((f.clone(), ci, vec![p])),
            }
        }
    }
    if groups.iter().all(|g| g.2.len() < 2) {
        return nodes;
    }
    let mut out = Vec::with_capacity(nodes.len());
    let mut done: Vec<usize> = Vec::new();
    for n in nodes {
        let Some((f, _, ci)) = pat(&n) else {
            out.push(n);
            continue;
        };
        let gi = groups
            .iter()
            .position(|g| &g.0 == f && g.1 == ci)
            .unwrap_or(usize::MAX);
        let Some(g) = groups.get(gi) else {
            out.push(n);
            continue;
        };
        if g.2.len() < 2 {
            out.push(n);
            continue;
        }
        if done.contains(&gi) {
            continue;
        }
        done.push(gi);
        let built = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(g.1)
            .build(&g.2);
        match built {
            Ok(ac) => out.push(Node::Check(Box::new(CCheck::new(
                COperand {
                    field: g.0.clone(),
                    transforms: Box::new([]),
                },
                Test::AnyContains(Box::new(ac)),
            )))),
            Err(_) => out.push(n),
        }
    }
    out
}

/// `a in X or a in Y` → `a in X∪Y`; `not a in X and not a in Y` → `not a in X∪Y` (a missing
/// value makes every part false, so the merged form agrees).
fn merge_sets(nodes: Vec<Node>, is_and: bool) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    let mut groups: Vec<(model::fields::Field, Vec<String>, usize)> = Vec::new();
    for n in nodes {
        let candidate = if is_and {
            match &n {
                Node::Not(inner) => set_check(inner),
                _ => None,
            }
        } else {
            set_check(&n)
        };
        match candidate {
            Some((f, items)) => {
                if let Some(g) = groups.iter_mut().find(|g| &g.0 == f) {
                    g.1.extend(items);
                    g.2 += 1;
                } else {
                    groups.push((f.clone(), items, 1));
                    out.push(n);
                }
            }
            None => out.push(n),
        }
    }
    // Rebuild merged groups in place of their first member.
    for (field, mut items, count) in groups {
        if count < 2 {
            continue;
        }
        items.sort();
        items.dedup();
        let merged = Node::Check(Box::new(CCheck::new(
            COperand {
                field: field.clone(),
                transforms: Box::new([]),
            },
            Test::StrIn(StrSet::new(items)),
        )));
        let merged = if is_and {
            Node::Not(Box::new(merged))
        } else {
            merged
        };
        if let Some(slot) = out.iter_mut().find(|n| {
            let inner = if is_and {
                match n {
                    Node::Not(i) => &**i,
                    other => other,
                }
            } else {
                &**n
            };
            set_check(inner).is_some_and(|(f, _)| *f == field)
                && (!is_and || matches!(n, Node::Not(_)))
        }) {
            *slot = merged;
        }
    }
    out
}

/// Gives structurally equal checks of a bucket (the conditions evaluated for one event)
/// the same id: their result is then computed once per event. A check that occurs only once
/// in every bucket is not memoized (id `u32::MAX`): recording its result would only cost
/// time. Returns the number of ids.
pub fn assign_ids(buckets: &mut [Vec<&mut Node>]) -> u32 {
    fn key(c: &CCheck) -> String {
        format!("{:?}|{:?}", c.lhs, c.test)
    }
    fn count(n: &Node, seen: &mut HashMap<String, u32>) {
        match n {
            Node::And(v) | Node::Or(v) => v.iter().for_each(|x| count(x, seen)),
            Node::Not(x) => count(x, seen),
            Node::Const(_) => {}
            Node::Check(c) => *seen.entry(key(c)).or_default() += 1,
        }
    }
    fn walk(n: &mut Node, shared: &BTreeSet<String>, ids: &mut HashMap<String, u32>) {
        match n {
            Node::And(v) | Node::Or(v) => v.iter_mut().for_each(|x| walk(x, shared, ids)),
            Node::Not(x) => walk(x, shared, ids),
            Node::Const(_) => {}
            Node::Check(c) => {
                let k = key(c);
                c.id = if shared.contains(&k) {
                    let next = ids.len() as u32;
                    *ids.entry(k).or_insert(next)
                } else {
                    u32::MAX
                };
            }
        }
    }
    let mut shared = BTreeSet::new();
    for b in buckets.iter() {
        let mut seen = HashMap::new();
        for n in b {
            count(n, &mut seen);
        }
        shared.extend(seen.into_iter().filter(|(_, c)| *c >= 2).map(|(k, _)| k));
    }
    let mut ids: HashMap<String, u32> = HashMap::new();
    for b in buckets.iter_mut() {
        for n in b.iter_mut() {
            walk(n, &shared, &mut ids);
        }
    }
    ids.len() as u32
}

#[cfg(test)]
mod tests {
    use crate::RuleSetBuilder;
    use model::{Ancestor, Event, ProcessInfo, UserInfo};

    /// Factoring shared checks out of `or` branches keeps exactly the same matches.
    /// An execve of process `n` run by user `u`, with parent `p` (none when empty).
    fn exec_event(n: &str, p: &str, u: &str) -> Event {
        Event {
            kind: "execve".into(),
            process: Some(
                ProcessInfo {
                    name: n.into(),
                    user: UserInfo {
                        name: u.into(),
                        ..Default::default()
                    },
                    ancestors: if p.is_empty() {
                        Vec::new()
                    } else {
                        vec![
                            Ancestor {
                                name: p.into(),
                                ..Default::default()
                            }
                            .into(),
                        ]
                    },
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn factored_or_matches_like_the_original() {
        let cond = "evt.type = execve and ((proc.name = a and proc.pname = x) \
                    or (proc.name = a and proc.pname = y and user.name = u) \
                    or (proc.pname = x and user.name = v) or proc.name = b \
                    or (proc.name = a and proc.name = a))";
        let text =
            format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n");
        let (rules, report) = RuleSetBuilder::new()
            .add_source("f.yaml", text)
            .build()
            .unwrap();
        assert!(!report.has_errors(), "{report}");
        let tree = rules.debug_tree(0, "execve", "R");
        assert_eq!(tree.matches("proc.name StrEq(\"a\"").count(), 1, "{tree}");
        let expect = |n: &str, p: &str, u: &str| {
            (n == "a" && p == "x")
                || (n == "a" && p == "y" && u == "u")
                || (p == "x" && u == "v")
                || n == "b"
                || n == "a"
        };
        let mut seen = [0usize; 2];
        for n in ["a", "b", "c"] {
            for p in ["x", "y", "z"] {
                for u in ["u", "v", "w"] {
                    let ev = exec_event(n, p, u);
                    let mut hit = false;
                    rules.matches(&ev, |_| hit = true);
                    assert_eq!(hit, expect(n, p, u), "{n} {p} {u}\n{tree}");
                    seen[usize::from(hit)] += 1;
                }
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0);
    }

    /// `x in ()` never holds: rules requiring it leave the index, and `not x in ()` always
    /// holds, with or without the field.
    #[test]
    fn empty_lists_fold() {
        let text = "- list: none\n  items: []\n\
                    - rule: Never\n  desc: d\n  condition: evt.type = connect and k8s.ns.name in (none)\n  output: o\n  priority: INFO\n\
                    - rule: Always\n  desc: d\n  condition: evt.type = connect and not proc.name in (none) and not fd.sport in ()\n  output: o\n  priority: INFO\n";
        let (rules, report) = RuleSetBuilder::new()
            .add_source("f.yaml", text)
            .build()
            .unwrap();
        assert!(!report.has_errors(), "{report}");
        assert_eq!(rules.debug_tree(0, "connect", "Never"), "");
        assert_eq!(rules.debug_tree(0, "connect", "Always"), "true\n");
        for process in [None, Some(ProcessInfo::default().into())] {
            let ev = Event {
                kind: "connect".into(),
                process,
                ..Default::default()
            };
            let mut got = Vec::new();
            rules.matches(&ev, |r| got.push(r.name.clone()));
            assert_eq!(got, vec!["Always".to_string()]);
        }
    }

    /// Without absorption: the shared check is evaluated once, the rest stays an `or`.
    #[test]
    fn factored_or_without_absorption() {
        let cond = "evt.type = execve and ((proc.name = a and proc.pname = x) \
                    or (proc.name = a and proc.pname = y and user.name = u) \
                    or (proc.pname = x and user.name = v) or proc.name = b)";
        let text =
            format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n");
        let (rules, _) = RuleSetBuilder::new()
            .add_source("f.yaml", text)
            .build()
            .unwrap();
        let tree = rules.debug_tree(0, "execve", "R");
        assert_eq!(tree.matches("proc.name StrEq(\"a\"").count(), 1, "{tree}");
        let expect = |n: &str, p: &str, u: &str| {
            (n == "a" && p == "x")
                || (n == "a" && p == "y" && u == "u")
                || (p == "x" && u == "v")
                || n == "b"
        };
        for n in ["a", "b", "c"] {
            for p in ["x", "y", "z", ""] {
                for u in ["u", "v", "w"] {
                    let ev = exec_event(n, p, u);
                    let mut hit = false;
                    rules.matches(&ev, |_| hit = true);
                    assert_eq!(hit, expect(n, p, u), "{n} {p} {u}\n{tree}");
                }
            }
        }
    }
    /// Checks shared by the rules of a bucket are memoized; checks occurring once are not,
    /// and both kinds match the same events.
    #[test]
    fn only_shared_checks_are_memoized() {
        let text = "- rule: A\n  desc: d\n  condition: evt.type = execve and proc.name = a and user.name = u\n  output: o\n  priority: INFO\n\
                    - rule: B\n  desc: d\n  condition: evt.type = execve and proc.name = a and not user.name = v\n  output: o\n  priority: INFO\n";
        let (rules, report) = RuleSetBuilder::new()
            .add_source("f.yaml", text)
            .build()
            .unwrap();
        assert!(!report.has_errors(), "{report}");
        let a = rules.debug_tree(0, "execve", "A");
        let b = rules.debug_tree(0, "execve", "B");
        assert!(a.contains("[0] proc.name"), "{a}");
        assert!(b.contains("[0] proc.name"), "{b}");
        assert!(a.contains(&format!("[{}] user.name", u32::MAX)), "{a}");
        assert!(b.contains(&format!("[{}] user.name", u32::MAX)), "{b}");
        for (n, u, want) in [
            ("a", "u", vec!["A", "B"]),
            ("a", "v", vec![]),
            ("a", "w", vec!["B"]),
            ("b", "u", vec![]),
        ] {
            let ev = exec_event(n, "", u);
            let mut got = Vec::new();
            rules.matches(&ev, |r| got.push(r.name.clone()));
            assert_eq!(got, want, "{n} {u}");
        }
    }
}
