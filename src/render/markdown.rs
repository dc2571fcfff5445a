//! The Markdown postmortem section of a report (GitHub-flavoured: tables and fenced code), made to
//! be pasted into an incident document below its own title: it starts at `##`.
//!
//! Everything from the report is untrusted: text is escaped, inline code uses a backtick run
//! longer than any inside it, table cells escape `|` and newlines, and fenced blocks use a fence
//! longer than any backtick run in the captured output, so no report can break out of its place.

use super::doc::{Block, Inline};
use super::postmortem::postmortem;
use super::words::visible;
use crate::model::CrashReport;

pub fn markdown(r: &CrashReport) -> String {
    let blocks = postmortem(r);
    let mut out = String::new();
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        block(b, &mut out);
    }
    out
}

fn block(b: &Block, out: &mut String) {
    match b {
        Block::Heading(level, s) => {
            out.push_str(&"#".repeat(usize::from(*level) + 1));
            out.push(' ');
            out.push_str(&escape(s, Context::Para));
            out.push('\n');
        }
        Block::Para(line) => {
            out.push_str(&guard_line_start(&inlines(line, Context::Para)));
            out.push('\n');
        }
        Block::Bullets(items) => {
            for item in items {
                out.push_str("- ");
                out.push_str(&guard_line_start(&inlines(item, Context::Para)));
                out.push('\n');
            }
        }
        Block::Fields(fields) => {
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|(label, value)| {
                    vec![escape(label, Context::Cell), inlines(value, Context::Cell)]
                })
                .collect();
            table(&["Field", "Value"], &[false, false], &rows, out);
        }
        Block::Table { head, right, rows } => {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|row| row.iter().map(|c| inlines(c, Context::Cell)).collect())
                .collect();
            table(head, right, &rows, out);
        }
        Block::Code(content) => fenced(content, out),
        Block::Rule => out.push_str("---\n"),
    }
}

fn table(head: &[&str], right: &[bool], rows: &[Vec<String>], out: &mut String) {
    let line = |cells: &mut dyn Iterator<Item = String>, out: &mut String| {
        out.push('|');
        for c in cells {
            out.push(' ');
            out.push_str(&c);
            out.push_str(" |");
        }
        out.push('\n');
    };
    line(&mut head.iter().map(|h| escape(h, Context::Cell)), out);
    line(
        &mut (0..head.len()).map(|i| {
            if right.get(i).copied().unwrap_or(false) {
                "---:".to_string()
            } else {
                "---".to_string()
            }
        }),
        out,
    );
    for row in rows {
        line(&mut row.iter().cloned(), out);
    }
}

/// A fenced code block whose fence no line of `content` can close.
fn fenced(content: &str, out: &mut String) {
    let content = visible(content, true);
    let fence = "`".repeat(longest_backtick_run(&content).max(2) + 1);
    out.push_str(&fence);
    out.push_str("text\n");
    out.push_str(content.strip_suffix('\n').unwrap_or(&content));
    out.push('\n');
    out.push_str(&fence);
    out.push('\n');
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Where an inline is written: a paragraph (one line) or a table cell (also one line, and `|`
/// would end the cell).
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Para,
    Cell,
}

fn inlines(line: &[Inline], cx: Context) -> String {
    line.iter()
        .map(|i| match i {
            Inline::Text(s) => escape(s, cx),
            Inline::Code(s) => code_span(s, cx),
            Inline::Strong(s) if s.is_empty() => String::new(),
            Inline::Strong(s) => format!("**{}**", escape(s, cx)),
        })
        .collect()
}

/// Text with every character Markdown could act on backslash-escaped; newlines become a space in
/// paragraphs and `<br>` in table cells, where a newline would end the row.
fn escape(s: &str, cx: Context) -> String {
    let mut out = String::with_capacity(s.len());
    for c in visible(s, true).chars() {
        match c {
            '\n' if cx == Context::Cell => out.push_str("<br>"),
            '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Inline code that shows `s` verbatim: delimited by one backtick more than the longest run in
/// it, padded when it starts or ends with a backtick; `|` escaped inside table cells (GFM
/// splits cells before it parses code spans).
fn code_span(s: &str, cx: Context) -> String {
    let s = visible(s, false);
    if s.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || (s.starts_with(' ') && s.ends_with(' '))
    {
        " "
    } else {
        ""
    };
    let body = if cx == Context::Cell {
        s.replace('|', "\\|")
    } else {
        s
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A paragraph or list item must not start a block of its own kind: `- x`, `+ x`, `= x`, `1. x`.
fn guard_line_start(s: &str) -> String {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    match s.as_bytes().get(digits) {
        Some(b'.' | b')') if digits > 0 => format!("{}\\{}", &s[..digits], &s[digits..]),
        Some(b'-' | b'+' | b'=') if digits == 0 => format!("\\{s}"),
        _ => s.to_string(),
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! The escaping primitives, for the tests in `super::super::tests`.
    pub fn code_in_para(s: &str) -> String {
        super::code_span(s, super::Context::Para)
    }
    pub fn code_in_cell(s: &str) -> String {
        super::code_span(s, super::Context::Cell)
    }
    pub fn text_in_cell(s: &str) -> String {
        super::escape(s, super::Context::Cell)
    }
}
