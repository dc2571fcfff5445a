//! The plain-text rendering of a report, for terminals (`coroner show`): the same sections and
//! facts as the Markdown postmortem, as aligned columns and wrapped prose with no markup.
//!
//! Strings from the report go through [`visible`], so captured output cannot move the cursor or
//! recolour the terminal it is printed on.

use super::doc::{plain, Block};
use super::postmortem::postmortem;
use super::words::visible;
use crate::model::CrashReport;

/// Prose is wrapped to this many columns; tables and verbatim lines are not.
const WIDTH: usize = 100;
const INDENT: &str = "  ";

pub fn text(r: &CrashReport) -> String {
    let blocks = postmortem(r);
    let mut out = String::new();
    let mut after_heading = false;
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 && !after_heading {
            out.push('\n');
        }
        after_heading = matches!(b, Block::Heading(..));
        block(b, &mut out);
    }
    out
}

fn block(b: &Block, out: &mut String) {
    match b {
        Block::Heading(1, s) => {
            push_wrapped(&visible(s, false), "", "", out);
            out.push('\n');
        }
        Block::Heading(2, s) => {
            out.push_str(&visible(s, false).to_uppercase());
            out.push('\n');
        }
        Block::Heading(_, s) => {
            out.push_str(INDENT);
            out.push_str(&visible(s, false));
            out.push_str(":\n");
        }
        Block::Para(line) => push_wrapped(&visible(&plain(line), false), INDENT, INDENT, out),
        Block::Bullets(items) => {
            for item in items {
                push_wrapped(&visible(&plain(item), false), "  - ", "    ", out);
            }
        }
        Block::Fields(fields) => {
            let w = fields
                .iter()
                .map(|(l, _)| l.chars().count())
                .max()
                .unwrap_or(0);
            for (label, value) in fields {
                let first = format!("{INDENT}{label:<w$}  ");
                let rest = " ".repeat(first.chars().count());
                push_wrapped(&visible(&plain(value), true), &first, &rest, out);
            }
        }
        Block::Table { head, right, rows } => {
            let cells: Vec<Vec<String>> =
                std::iter::once(head.iter().map(|h| h.to_string()).collect())
                    .chain(rows.iter().map(|row| {
                        row.iter()
                            .map(|c| visible(&plain(c), false))
                            .collect::<Vec<_>>()
                    }))
                    .collect();
            let mut widths = vec![0; head.len()];
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for row in &cells {
                let mut line = INDENT.to_string();
                for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    if right.get(i).copied().unwrap_or(false) {
                        line.push_str(&format!("{c:>w$}"));
                    } else {
                        line.push_str(&format!("{c:<w$}"));
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        Block::Code(content) => {
            let content = visible(content, true);
            for line in content.strip_suffix('\n').unwrap_or(&content).split('\n') {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        // The footer is set apart by the blank line before it.
        Block::Rule => {}
    }
}

/// `s` wrapped to [`WIDTH`], its first line after `first`, the others after `rest`.
fn push_wrapped(s: &str, first: &str, rest: &str, out: &mut String) {
    let width = WIDTH.saturating_sub(first.chars().count()).max(20);
    for (i, line) in wrap(s, width).iter().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
}

/// Greedy word wrap of one paragraph to `width` columns; words longer than a line stay whole.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for source in text.split('\n') {
        let mut line = String::new();
        for word in source.split(' ').filter(|w| !w.is_empty()) {
            let (lw, ww) = (line.chars().count(), word.chars().count());
            if lw > 0 && lw + 1 + ww > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}
