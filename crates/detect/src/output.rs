//! Rule output formats: `%field`, `%field[arg]`, `%transformer(field)`, missing values as `<NA>`.

use crate::eval::EvalScratch;
use crate::parser::Transformer;
use model::Event;
use model::fields::{Field, Lookup};

#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    Field {
        /// As written, e.g. `proc.aname[2]` or `toupper(user.name)`.
        name: String,
        field: Option<Field>,
        lookup: LookupKind,
        transforms: Vec<Transformer>,
    },
}

#[derive(Debug, Clone)]
enum LookupKind {
    Ok,
    Unsupported,
    Unknown(String),
}

/// A parsed output format.
#[derive(Debug, Clone, Default)]
pub struct OutputFormat {
    segs: Vec<Seg>,
}

fn field_chars_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    // A trailing '.' belongs to the text ("... %proc.name.").
    while i > 0 && b[i - 1] == b'.' {
        i -= 1;
    }
    i
}

fn transformer(name: &str) -> Option<Transformer> {
    Some(match name {
        "tolower" => Transformer::ToLower,
        "toupper" => Transformer::ToUpper,
        "b64" => Transformer::B64,
        "basename" => Transformer::Basename,
        "len" => Transformer::Len,
        _ => return None,
    })
}

impl OutputFormat {
    /// Parses a format. Never fails: text that is not a field reference stays literal.
    pub fn parse(fmt: &str) -> Self {
        let fmt = fmt.strip_prefix('*').unwrap_or(fmt);
        let b = fmt.as_bytes();
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let mut lit_start = 0;
        while i < b.len() {
            if b[i] != b'%' {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1; // width, ignored
            }
            // Transformers: %name(field)
            let mut transforms = Vec::new();
            let mut k = j;
            loop {
                let e = field_chars_end(b, k);
                if e < b.len() && b[e] == b'(' {
                    match transformer(&fmt[k..e]) {
                        Some(t) => {
                            transforms.push(t);
                            k = e + 1;
                            continue;
                        }
                        None => break,
                    }
                }
                break;
            }
            let name_start = k;
            let mut e = field_chars_end(b, k);
            let mut arg = None;
            if e < b.len()
                && b[e] == b'['
                && let Some(close) = fmt[e..].find(']')
            {
                arg = Some(fmt[e + 1..e + close].to_string());
                e += close + 1;
            }
            let base = &fmt[name_start..e.min(fmt.len())];
            let base_name = match base.find('[') {
                Some(x) => &base[..x],
                None => base,
            };
            if !base_name.contains('.') {
                i = j.max(i + 1);
                continue;
            }
            // Close transformer parens.
            let mut end = e;
            let mut ok = true;
            for _ in &transforms {
                if end < b.len() && b[end] == b')' {
                    end += 1;
                } else {
                    ok = false;
                }
            }
            if !ok {
                i = j.max(i + 1);
                continue;
            }
            lit.push_str(&fmt[lit_start..i]);
            if !lit.is_empty() {
                segs.push(Seg::Lit(std::mem::take(&mut lit)));
            }
            transforms.reverse();
            let (field, lookup) = if base_name == "container.info" {
                (None, LookupKind::Ok)
            } else {
                match model::fields::lookup(base_name, arg.as_deref()) {
                    Lookup::Supported(f) => (Some(f), LookupKind::Ok),
                    Lookup::Unsupported => (None, LookupKind::Unsupported),
                    Lookup::Unknown(m) => (None, LookupKind::Unknown(m)),
                }
            };
            segs.push(Seg::Field {
                name: fmt[j..end].to_string(),
                field,
                lookup,
                transforms,
            });
            i = end;
            lit_start = end;
        }
        lit.push_str(&fmt[lit_start..]);
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        OutputFormat { segs }
    }

    /// Every field reference with its lookup result.
    pub fn lookups(&self) -> Vec<(String, Lookup)> {
        self.segs
            .iter()
            .filter_map(|s| match s {
                Seg::Field {
                    name,
                    field,
                    lookup,
                    ..
                } => Some((
                    name.clone(),
                    match lookup {
                        LookupKind::Ok => match field {
                            Some(f) => Lookup::Supported(f.clone()),
                            None => return None, // container.info
                        },
                        LookupKind::Unsupported => Lookup::Unsupported,
                        LookupKind::Unknown(m) => Lookup::Unknown(m.clone()),
                    },
                )),
                Seg::Lit(_) => None,
            })
            .collect()
    }

    /// Formats for `ev`; also returns `(field, value)` for every field referenced
    /// (`None` = missing, shown as `<NA>`).
    pub fn format(
        &self,
        ev: &Event,
        scratch: &mut EvalScratch,
    ) -> (String, Vec<(String, Option<String>)>) {
        let mut out = String::new();
        let mut fields = Vec::new();
        for s in &self.segs {
            match s {
                Seg::Lit(t) => out.push_str(t),
                Seg::Field {
                    name,
                    field,
                    transforms,
                    lookup,
                } => {
                    if field.is_none() && matches!(lookup, LookupKind::Ok) {
                        continue; // %container.info: dropped, as Falco does
                    }
                    let v = field.as_ref().and_then(|f| {
                        scratch.fields.prepare(f, ev);
                        let mut vals = Vec::new();
                        let mut i = 0;
                        while let Some(v) = f.value_at(ev, &scratch.fields, i) {
                            vals.push(v.to_string());
                            i += 1;
                            if !f.is_multi() {
                                break;
                            }
                        }
                        if vals.is_empty() {
                            None
                        } else {
                            Some(vals.join(","))
                        }
                    });
                    let v = v.map(|mut v| {
                        for t in transforms {
                            v = match t {
                                Transformer::ToLower => v.to_ascii_lowercase(),
                                Transformer::ToUpper => v.to_ascii_uppercase(),
                                Transformer::Basename => {
                                    if v.ends_with('/') {
                                        String::new()
                                    } else {
                                        v.rsplit('/').next().unwrap_or("").to_string()
                                    }
                                }
                                Transformer::Len => v.chars().count().to_string(),
                                Transformer::B64 => {
                                    let mut s = String::new();
                                    crate::eval::b64_decode(&v, &mut s);
                                    s
                                }
                            };
                        }
                        v
                    });
                    match &v {
                        Some(v) => out.push_str(v),
                        None => out.push_str("<NA>"),
                    }
                    fields.push((name.clone(), v));
                }
            }
        }
        (out, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{ContainerInfo, ProcessInfo};

    #[test]
    fn formats_fields_and_na() {
        let f = OutputFormat::parse(
            "Shell (user=%user.name proc=%proc.name parent=%proc.aname[1] id=%container.id %toupper(proc.name) 100% done %proc.name.",
        );
        let ev = Event {
            kind: "execve".into(),
            process: Some(
                ProcessInfo {
                    name: "sh".into(),
                    ..Default::default()
                }
                .into(),
            ),
            container: Some(
                ContainerInfo {
                    id: "abcdef0123456789".into(),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        };
        let mut s = EvalScratch::default();
        let (text, fields) = f.format(&ev, &mut s);
        assert_eq!(
            text,
            "Shell (user=<NA> proc=sh parent=<NA> id=abcdef012345 SH 100% done sh."
        );
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[0], ("user.name".to_string(), None));
        assert_eq!(
            fields[4],
            ("toupper(proc.name)".to_string(), Some("SH".into()))
        );
    }
}
