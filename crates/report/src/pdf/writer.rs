//! Serialises pages into a PDF 1.7 file: catalog, page tree, base-14 fonts, compressed content
//! streams, outline (bookmarks), document info and the cross-reference table.

use super::fonts::{Font, pdf_string};

/// A finished page: its content stream (uncompressed operators).
pub(crate) struct Page {
    pub content: String,
}

/// A bookmark: title, page index, y position (PDF coordinates).
pub(crate) struct Bookmark {
    pub title: String,
    pub page: usize,
    pub y: f64,
}

/// Page size in points (A4).
pub(crate) const PAGE_W: f64 = 595.28;
/// Page height in points (A4).
pub(crate) const PAGE_H: f64 = 841.89;

struct Objects {
    buf: Vec<u8>,
    offsets: Vec<usize>,
}

impl Objects {
    fn begin(&mut self, id: usize) {
        if self.offsets.len() <= id {
            self.offsets.resize(id + 1, 0);
        }
        self.offsets[id] = self.buf.len();
        self.buf
            .extend_from_slice(format!("{id} 0 obj\n").as_bytes());
    }
    fn end(&mut self) {
        self.buf.extend_from_slice(b"\nendobj\n");
    }
    fn dict(&mut self, id: usize, body: &str) {
        self.begin(id);
        self.buf.extend_from_slice(body.as_bytes());
        self.end();
    }
    fn stream(&mut self, id: usize, data: &[u8]) {
        let z = miniz_oxide::deflate::compress_to_vec_zlib(data, 6);
        self.begin(id);
        self.buf.extend_from_slice(
            format!("<< /Length {} /Filter /FlateDecode >>\nstream\n", z.len()).as_bytes(),
        );
        self.buf.extend_from_slice(&z);
        self.buf.extend_from_slice(b"\nendstream");
        self.end();
    }
}

/// Writes the document.
pub(crate) fn write(pages: &[Page], bookmarks: &[Bookmark], title: &str, subject: &str) -> Vec<u8> {
    // Object numbers: 1 catalog, 2 page tree, 3..=6 fonts, 7 info, 8 outline root,
    // then 9.. bookmarks, then a (page, content) pair per page.
    const CATALOG: usize = 1;
    const PAGES: usize = 2;
    const FONT0: usize = 3;
    const INFO: usize = 7;
    const OUTLINES: usize = 8;
    let bm0 = 9;
    let page0 = bm0 + bookmarks.len();
    let page_id = |i: usize| page0 + 2 * i;

    let mut o = Objects {
        buf: Vec::with_capacity(64 * 1024),
        offsets: vec![0],
    };
    o.buf.extend_from_slice(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n");

    let outlines = if bookmarks.is_empty() {
        String::new()
    } else {
        format!(" /Outlines {OUTLINES} 0 R /PageMode /UseOutlines")
    };
    o.dict(
        CATALOG,
        &format!("<< /Type /Catalog /Pages {PAGES} 0 R{outlines} /Lang (en) >>"),
    );
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", page_id(i)))
        .collect();
    o.dict(
        PAGES,
        &format!(
            "<< /Type /Pages /Kids [{}] /Count {} /MediaBox [0 0 {PAGE_W} {PAGE_H}] >>",
            kids.join(" "),
            pages.len()
        ),
    );
    for (i, f) in Font::ALL.iter().enumerate() {
        o.dict(
            FONT0 + i,
            &format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
                f.base_name()
            ),
        );
    }
    let mut info = String::from("<< /Title ");
    pdf_string(title, &mut info);
    info.push_str(" /Subject ");
    pdf_string(subject, &mut info);
    info.push_str(" /Creator (Vigil) /Producer (Vigil report) >>");
    o.dict(INFO, &info);

    if bookmarks.is_empty() {
        o.dict(OUTLINES, "<< /Type /Outlines /Count 0 >>");
    } else {
        o.dict(
            OUTLINES,
            &format!(
                "<< /Type /Outlines /First {} 0 R /Last {} 0 R /Count {} >>",
                bm0,
                bm0 + bookmarks.len() - 1,
                bookmarks.len()
            ),
        );
        for (i, b) in bookmarks.iter().enumerate() {
            let mut d = String::from("<< /Title ");
            pdf_string(&b.title, &mut d);
            d.push_str(&format!(" /Parent {OUTLINES} 0 R"));
            if i > 0 {
                d.push_str(&format!(" /Prev {} 0 R", bm0 + i - 1));
            }
            if i + 1 < bookmarks.len() {
                d.push_str(&format!(" /Next {} 0 R", bm0 + i + 1));
            }
            d.push_str(&format!(
                " /Dest [{} 0 R /XYZ 0 {:.1} 0] >>",
                page_id(b.page.min(pages.len().saturating_sub(1))),
                b.y
            ));
            o.dict(bm0 + i, &d);
        }
    }

    let fonts: Vec<String> = Font::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| format!("/{} {} 0 R", f.resource(), FONT0 + i))
        .collect();
    let resources = format!("<< /Font << {} >> >>", fonts.join(" "));
    for (i, p) in pages.iter().enumerate() {
        o.dict(
            page_id(i),
            &format!(
                "<< /Type /Page /Parent {PAGES} 0 R /Resources {resources} /Contents {} 0 R >>",
                page_id(i) + 1
            ),
        );
        o.stream(page_id(i) + 1, p.content.as_bytes());
    }

    let xref_at = o.buf.len();
    let n = o.offsets.len();
    let mut x = format!("xref\n0 {n}\n0000000000 65535 f \n");
    for off in &o.offsets[1..] {
        x.push_str(&format!("{off:010} 00000 n \n"));
    }
    x.push_str(&format!(
        "trailer\n<< /Size {n} /Root {CATALOG} 0 R /Info {INFO} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n"
    ));
    o.buf.extend_from_slice(x.as_bytes());
    o.buf
}
