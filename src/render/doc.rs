//! A small document model between the report and its writers: the postmortem decides what is
//! said once ([`super::postmortem`]), and the Markdown and text writers only decide how it looks,
//! so both renderings carry the same facts in the same order. The HTML report page writes the
//! same model for the sections and phrases it shares (`crate::http::pages::doc`).

/// A run of text within a paragraph, list item or table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    /// Identifiers, paths, commands, errnos: inline code in Markdown, plain in text.
    Code(String),
    Strong(String),
}

pub type Line = Vec<Inline>;

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Level 1 is the document's title, 2 a section, 3 a subsection.
    Heading(u8, String),
    Para(Line),
    Bullets(Vec<Line>),
    /// Label/value pairs: a two-column table in Markdown, aligned lines in text.
    Fields(Vec<(String, Line)>),
    Table {
        head: Vec<&'static str>,
        /// Columns aligned right (numbers).
        right: Vec<bool>,
        rows: Vec<Vec<Line>>,
    },
    /// Verbatim lines (syscalls, captured output).
    Code(String),
    Rule,
}

pub fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

pub fn code(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

pub fn strong(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

/// Prose written with backtick code spans (the diagnosis' summaries and facts) as inlines; with
/// unbalanced backticks the whole string stays text.
pub fn prose(s: &str) -> Line {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() % 2 == 0 {
        return vec![text(s)];
    }
    parts
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(i, p)| if i % 2 == 1 { code(*p) } else { text(*p) })
        .collect()
}

/// The line as plain text, as the text writer shows it.
pub fn plain(line: &[Inline]) -> String {
    line.iter()
        .map(|i| match i {
            Inline::Text(s) | Inline::Code(s) | Inline::Strong(s) => s.as_str(),
        })
        .collect()
}
