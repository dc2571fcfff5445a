//! A small HTML writer. Markup comes only from `'static` strings written here; every value
//! (container output, argv, names, numbers) goes through an escaping writer, so nothing a
//! container controls can become markup. Pure: no I/O, no knowledge of reports.

use std::fmt::{self, Write};

use crate::render::words::escaped_control;

#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    pub fn new() -> Html {
        Html::default()
    }

    /// Markup. `'static` so that data can only ever reach the page through [`Html::text`].
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Escaped text.
    pub fn text(&mut self, value: impl fmt::Display) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = write!(Escape(&mut self.out), "{value}");
        self
    }

    /// `<tag a="v" ...>` with every attribute value escaped.
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            self.text(value);
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// An element holding escaped text.
    pub fn el(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, &str)],
        text: impl fmt::Display,
    ) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// `<a href="...">text</a>`.
    pub fn link(&mut self, href: &str, text: impl fmt::Display) -> &mut Self {
        self.el("a", &[("href", href)], text)
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// Escapes for text and double-quoted attribute values alike. Control characters and bidi
/// overrides are shown as `\x1b` / `\u{202e}` rather than passed through: container output is
/// shown as it was written, not as a terminal (or a spoofed line) would show it, and the same way
/// the Markdown and text renderings show it ([`escaped_control`]).
struct Escape<'a>(&'a mut String);

impl Write for Escape<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                '\n' | '\t' | '\r' => self.0.push(c),
                c => match escaped_control(c) {
                    Some(shown) => self.0.push_str(&shown),
                    None => self.0.push(c),
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut h = Html::new();
        h.text(s);
        h.into_string()
    }

    #[test]
    fn script_in_container_output_becomes_text() {
        assert_eq!(
            text("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn ampersands_are_escaped_once() {
        assert_eq!(text("a && b &amp;"), "a &amp;&amp; b &amp;amp;");
    }

    #[test]
    fn attribute_values_cannot_break_out_of_their_quotes() {
        let mut h = Html::new();
        h.open("a", &[("href", "/x\" onclick=\"alert(1)")]);
        assert_eq!(
            h.into_string(),
            "<a href=\"/x&quot; onclick=&quot;alert(1)\">"
        );
    }

    #[test]
    fn line_breaks_and_tabs_are_kept_other_controls_are_shown() {
        assert_eq!(text("a\tb\nc"), "a\tb\nc");
        assert_eq!(text("\u{1b}[31mred\0"), "\\x1b[31mred\\x00");
        assert_eq!(text("\u{85}"), "\\u{85}");
    }

    #[test]
    fn bidi_overrides_cannot_reorder_a_line() {
        assert_eq!(text("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
    }

    #[test]
    fn unicode_text_passes_through() {
        assert_eq!(text("naïve — 日本"), "naïve — 日本");
    }

    #[test]
    fn elements_nest_and_escape_their_text() {
        let mut h = Html::new();
        h.open("p", &[])
            .el("b", &[("class", "x")], 1 < 2)
            .raw("<br>")
            .close("p");
        assert_eq!(h.into_string(), "<p><b class=\"x\">true</b><br></p>");
    }
}
