//! The PDF standard (base-14) fonts used by the report, their glyph widths and the WinAnsi
//! encoding. Standard fonts need no embedding: every PDF reader has them, and text stays
//! extractable (`pdftotext`).

/// A base-14 font.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Font {
    Regular,
    Bold,
    Italic,
    Mono,
}

impl Font {
    /// All fonts, in resource order (`/F1` … `/F4`).
    pub(crate) const ALL: [Font; 4] = [Font::Regular, Font::Bold, Font::Italic, Font::Mono];

    /// The resource name used in content streams.
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Italic => "F3",
            Font::Mono => "F4",
        }
    }

    /// The base font name.
    pub(crate) fn base_name(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
            Font::Italic => "Helvetica-Oblique",
            Font::Mono => "Courier",
        }
    }

    /// Advance width of one WinAnsi byte, in 1/1000 em.
    fn width_of_byte(self, b: u8) -> u16 {
        match self {
            Font::Mono => 600,
            Font::Regular | Font::Italic => width_in(&HELVETICA, b, false),
            Font::Bold => width_in(&HELVETICA_BOLD, b, true),
        }
    }

    /// Width of `s` at `size` points.
    pub(crate) fn width(self, s: &str, size: f64) -> f64 {
        let mut w = 0u32;
        for c in s.chars() {
            w += self.width_of_byte(encode_char(c)) as u32;
        }
        w as f64 * size / 1000.0
    }

    /// Width of one char at `size` points.
    pub(crate) fn char_width(self, c: char, size: f64) -> f64 {
        self.width_of_byte(encode_char(c)) as f64 * size / 1000.0
    }
}

fn width_in(table: &[u16; 95], b: u8, bold: bool) -> u16 {
    match b {
        32..=126 => table[(b - 32) as usize],
        0x80 => 556,                            // Euro
        0x85 | 0x89 | 0x97 => 1000,             // ellipsis, per mille, em dash
        0x95 => 350,                            // bullet
        0x96 => 556,                            // en dash
        0x91 | 0x92 => 222 + bold as u16 * 56,  // single quotes
        0x93 | 0x94 => 333 + bold as u16 * 167, // double quotes
        0x99 => 1000,                           // trade mark
        0xA0 => 278,                            // no-break space
        0xB0 => 400,                            // degree
        0xB7 => 278,                            // middle dot
        0xD7 => 584,                            // multiplication
        0xC0..=0xDE => 722,                     // capitals with accents (approximate)
        0xDF..=0xFF => 556,                     // small letters with accents (approximate)
        _ => 556,
    }
}

/// Helvetica advance widths for ASCII 32..=126 (Adobe's published metrics).
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space … /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556,                               // 0 … 9
    278, 278, 584, 584, 584, 556, 1015,                                             // : … @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,                // A … M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611,                // N … Z
    278, 278, 278, 469, 556, 333,                                                   // [ … `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833,                // a … m
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500,                // n … z
    334, 260, 334, 584,                                                             // { … ~
];

/// Helvetica-Bold advance widths for ASCII 32..=126 (Adobe's published metrics).
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // space … /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556,                               // 0 … 9
    333, 333, 584, 584, 584, 611, 975,                                              // : … @
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833,                // A … M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611,                // N … Z
    333, 278, 333, 584, 556, 333,                                                   // [ … `
    556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889,                // a … m
    611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500,                // n … z
    389, 280, 389, 584,                                                             // { … ~
];

/// Replaces common characters outside WinAnsi with ASCII look-alikes (`→` becomes `->`), so
/// they do not print as `?`.
pub(crate) fn ascii_fallbacks(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() || !s.chars().any(|c| FALLBACKS.iter().any(|(f, _)| *f == c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match FALLBACKS.iter().find(|(f, _)| *f == c) {
            Some((_, r)) => out.push_str(r),
            None => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

const FALLBACKS: [(char, &str); 12] = [
    ('→', "->"),
    ('←', "<-"),
    ('⇒', "=>"),
    ('↔', "<->"),
    ('≥', ">="),
    ('≤', "<="),
    ('≠', "!="),
    ('✓', "v"),
    ('✔', "v"),
    ('✗', "x"),
    ('⚠', "(!)"),
    ('\u{2212}', "-"),
];

/// Maps a char to its WinAnsiEncoding byte; chars outside it become `?`.
pub(crate) fn encode_char(c: char) -> u8 {
    let u = c as u32;
    match u {
        0x20..=0x7E | 0xA0..=0xFF => u as u8,
        0x09 => b' ',
        _ => match c {
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8A,
            '‹' => 0x8B,
            'Œ' => 0x8C,
            'Ž' => 0x8E,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201C}' => 0x93,
            '\u{201D}' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9A,
            '›' => 0x9B,
            'œ' => 0x9C,
            'ž' => 0x9E,
            'Ÿ' => 0x9F,
            _ => b'?',
        },
    }
}

/// Encodes `s` as a PDF literal string in WinAnsi: `(text)` with `(`, `)` and `\` escaped and
/// bytes above 126 written in octal.
pub(crate) fn pdf_string(s: &str, out: &mut String) {
    out.push('(');
    for c in s.chars() {
        let b = encode_char(c);
        match b {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            32..=126 => out.push(b as char),
            _ => {
                out.push_str(&format!("\\{b:03o}"));
            }
        }
    }
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_metrics() {
        // "Hello" in Helvetica: H722 e556 l222 l222 o556 = 2278/1000 em.
        assert!((Font::Regular.width("Hello", 10.0) - 22.78).abs() < 1e-9);
        assert!((Font::Mono.width("abc", 10.0) - 18.0).abs() < 1e-9);
        assert!(Font::Bold.width("Hello", 10.0) > Font::Regular.width("Hello", 10.0));
    }

    #[test]
    fn fallbacks_replace_arrows() {
        assert_eq!(ascii_fallbacks("open → contained"), "open -> contained");
        assert!(matches!(
            ascii_fallbacks("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn strings_escape() {
        let mut s = String::new();
        pdf_string("a(b)\\ – é ✓", &mut s);
        assert_eq!(s, "(a\\(b\\)\\\\ \\226 \\351 ?)");
    }
}
