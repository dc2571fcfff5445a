//! Plain, left-aligned text tables that fit a terminal width. Pure: cells in, lines out; the
//! width comes from `super::term`.
//!
//! When the natural widths do not fit, the widest shrinkable column loses a character at a time
//! (so a long diagnosis gives way before a short pod name), and a cut cell ends with `…`.
//! Columns marked [`Column::keep`] (ids someone will copy, short fixed vocabularies) are never
//! cut. When even the minimums do not fit, the table overflows rather than becoming unreadable.

/// Spaces between columns.
const GAP: usize = 2;
/// A shrinkable column keeps at least this many characters (`ab…` plus one), its header too.
const MIN_WIDTH: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    /// Never truncated.
    pub keep: bool,
}

impl Column {
    pub const fn new(header: &'static str) -> Column {
        Column {
            header,
            keep: false,
        }
    }

    pub const fn keep(header: &'static str) -> Column {
        Column { header, keep: true }
    }
}

/// Replaces control characters (terminal escapes in a container's name or arguments, tabs,
/// newlines) so one cell is one line that cannot drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `w` characters, the last of them `…` when something was cut.
fn cut(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    match w {
        0 => String::new(),
        _ => s.chars().take(w - 1).chain(['…']).collect(),
    }
}

/// The width of each column after fitting the table into `max_width` characters.
pub fn fit(columns: &[Column], rows: &[Vec<String>], max_width: usize) -> Vec<usize> {
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|cell| width(cell))
                .chain([width(c.header)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mins: Vec<usize> = columns
        .iter()
        .zip(&widths)
        .map(|(c, &w)| match c.keep {
            true => w,
            false => w.min(MIN_WIDTH),
        })
        .collect();
    let mut total = widths.iter().sum::<usize>() + GAP * columns.len().saturating_sub(1);
    while total > max_width {
        // The widest column that can still shrink; of equals, the rightmost.
        let Some(i) = (0..widths.len())
            .filter(|&i| widths[i] > mins[i])
            .max_by_key(|&i| (widths[i], i))
        else {
            break;
        };
        widths[i] -= 1;
        total -= 1;
    }
    widths
}

/// Renders a header line and one line per row, each ending in `\n`, no line longer than
/// `max_width` unless the columns' minimums do not fit.
pub fn render(columns: &[Column], rows: &[Vec<String>], max_width: usize) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| sanitize(c)).collect())
        .collect();
    let widths = fit(columns, &rows, max_width);
    let header: Vec<String> = columns.iter().map(|c| c.header.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let cell = cut(row.get(i).map_or("", String::as_str), *w);
            if i > 0 {
                line.push_str(&" ".repeat(GAP));
            }
            let pad = w - width(&cell);
            line.push_str(&cell);
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 4] = [
        Column::new("POD"),
        Column::new("CAUSE"),
        Column::keep("ID"),
        Column::new("DIAGNOSIS"),
    ];

    fn rows() -> Vec<Vec<String>> {
        [
            ["gateway-7d9f8b6c5d-x2x9q", "oom_killed", "0f3a9c2e11d4b5a6c7d8", "the kernel OOM killer killed tail (pid 7): memory peaked at 20.0 MiB against a 20.0 MiB limit"],
            ["db-0", "exited_error", "aa00bb11cc22dd33ee44", "exited with code 1"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
    }

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    #[test]
    fn a_table_that_fits_is_left_aligned_and_untouched() {
        let out = render(&COLUMNS, &rows(), 500);
        let l = lines(&out);
        assert_eq!(l.len(), 3);
        assert!(!out.contains('…'));
        // Every column starts at the same offset on every line.
        let at = |line: &str, s: &str| line.find(s).unwrap();
        assert_eq!(at(l[0], "CAUSE"), at(l[1], "oom_killed"));
        assert_eq!(at(l[1], "oom_killed"), at(l[2], "exited_error"));
        assert_eq!(at(l[0], "ID"), at(l[2], "aa00bb11"));
        assert_eq!(at(l[0], "DIAGNOSIS"), at(l[2], "exited with"));
        assert!(l.iter().all(|l| l.trim_end() == *l), "no trailing spaces");
    }

    #[test]
    fn the_widest_column_is_cut_with_an_ellipsis_to_fit_the_width() {
        let out = render(&COLUMNS, &rows(), 100);
        for l in lines(&out) {
            assert!(l.chars().count() <= 100, "{} chars: {l}", l.chars().count());
        }
        let l = lines(&out);
        assert_eq!(l[1].chars().count(), 100, "uses the whole width: {}", l[1]);
        assert!(l[1].ends_with('…'), "{}", l[1]);
        assert!(
            l[1].contains("gateway-7d9f8b6c5d-x2x9q"),
            "short columns untouched"
        );
        assert!(
            l[2].ends_with("exited with code 1"),
            "short cells are not cut"
        );
    }

    #[test]
    fn ids_are_never_cut_and_wide_columns_shrink_evenly() {
        let out = render(&COLUMNS, &rows(), 60);
        let l = lines(&out);
        assert!(l[1].contains("0f3a9c2e11d4b5a6c7d8"), "{out}");
        assert!(l[2].contains("aa00bb11cc22dd33ee44"), "{out}");
        assert!(l.iter().all(|l| l.chars().count() <= 60), "{out}");
        let w = fit(&COLUMNS, &rows(), 60);
        // POD and DIAGNOSIS were both cut, to within one character of each other.
        assert!(w[0] < 24 && w[3] < 24 && w[0].abs_diff(w[3]) <= 1, "{w:?}");
    }

    #[test]
    fn a_terminal_too_narrow_overflows_at_the_minimums() {
        let w = fit(&COLUMNS, &rows(), 10);
        assert_eq!(w, [4, 4, 20, 4], "ids stay whole");
        let out = render(&COLUMNS, &rows(), 10);
        assert_eq!(lines(&out)[0], "POD   CAU…  ID                    DIA…");
        assert_eq!(lines(&out)[1], "gat…  oom…  0f3a9c2e11d4b5a6c7d8  the…");
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let rows = vec![vec![
            "evil\u{1b}[31mpod".to_string(),
            "a\tb".into(),
            "id".into(),
            "line\nbreak".into(),
        ]];
        let out = render(&COLUMNS, &rows, 200);
        assert!(!out.contains('\u{1b}') && !out.contains('\t'), "{out:?}");
        assert_eq!(lines(&out).len(), 2, "{out:?}");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(render(&COLUMNS, &[], 80), "POD  CAUSE  ID  DIAGNOSIS\n");
    }
}
