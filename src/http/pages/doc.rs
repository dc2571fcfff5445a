//! The shared document model ([`crate::render::doc`]) written as HTML, for the report page's
//! sections whose content the postmortem builds: inline code as `<code>`, tables with their
//! numeric columns right-aligned. Layout only; what is said comes from `crate::render`.

use super::html::Html;
use crate::render::doc::{Block, Inline};

/// A line of text, code and emphasis, escaped.
pub fn line(h: &mut Html, line: &[Inline]) {
    for i in line {
        match i {
            Inline::Text(s) => h.text(s),
            Inline::Code(s) => h.el("code", &[], s),
            Inline::Strong(s) => h.el("strong", &[], s),
        };
    }
}

/// The blocks the page shows of a section: paragraphs (as small print, the way the page annotates
/// its tables) and tables, the first table with `id`. Other blocks are not used by the page.
pub fn blocks(h: &mut Html, id: &'static str, blocks: &[Block]) {
    let mut id = Some(id);
    for b in blocks {
        match b {
            Block::Para(l) => {
                h.open("p", &[("class", "muted small")]);
                line(h, l);
                h.close("p");
            }
            Block::Table { head, right, rows } => table(h, id.take(), head, right, rows),
            _ => {}
        }
    }
}

fn table(
    h: &mut Html,
    id: Option<&'static str>,
    head: &[&'static str],
    right: &[bool],
    rows: &[Vec<Vec<Inline>>],
) {
    let class = |i: usize| match right.get(i) {
        Some(true) => "num",
        _ => "",
    };
    match id {
        Some(id) => h.open("table", &[("id", id)]),
        None => h.open("table", &[]),
    };
    h.raw("<thead><tr>");
    for (i, name) in head.iter().enumerate() {
        cell(h, "th", class(i)).text(name).close("th");
    }
    h.raw("</tr></thead><tbody>");
    for row in rows {
        h.raw("<tr>");
        for (i, c) in row.iter().enumerate() {
            cell(h, "td", class(i));
            line(h, c);
            h.close("td");
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// `<td>` or `<td class="num">`: no empty class attribute on every cell.
fn cell<'h>(h: &'h mut Html, tag: &'static str, class: &str) -> &'h mut Html {
    if class.is_empty() {
        h.open(tag, &[])
    } else {
        h.open(tag, &[("class", class)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::doc::{code, text};

    #[test]
    fn code_in_a_table_cell_is_escaped_markup() {
        let mut h = Html::new();
        blocks(
            &mut h,
            "t",
            &[Block::Table {
                head: vec!["Event", "PID"],
                right: vec![false, true],
                rows: vec![vec![vec![text("exec")], vec![code("<b>"), text(" & co")]]],
            }],
        );
        assert_eq!(
            h.into_string(),
            "<table id=\"t\"><thead><tr><th>Event</th><th class=\"num\">PID</th></tr></thead>\
             <tbody><tr><td>exec</td><td class=\"num\"><code>&lt;b&gt;</code> &amp; co</td></tr>\
             </tbody></table>"
        );
    }
}
