//! The page shell every page shares: the inline style sheet, the header, and the error page.
//! No external assets: the pages must work through a port-forward on a laptop with no network.

use super::html::Html;

const STYLE: &str = r#"
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d8dde5; --bg: #ffffff; --panel: #f5f7fa;
  --bad: #b3261e; --bad-bg: #fdecea; --warn: #8a5a00; --warn-bg: #fff4db; --ok: #1e6b3a; --link: #1c5fb8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { background: #1d2330; color: #fff; padding: .6rem 1.5rem; display: flex; gap: 1.5rem; align-items: baseline; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header .sub { color: #b9c2cf; font-size: .9rem; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
a { color: var(--link); }
h1 { font-size: 1.45rem; margin: .6rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .5rem; padding-bottom: .2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .55rem; border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
table.kv th { width: 12rem; background: none; color: var(--muted); font-weight: 500; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .88rem; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6rem .8rem; overflow-x: auto;
  white-space: pre-wrap; overflow-wrap: anywhere; margin: .3rem 0; max-height: 32rem; overflow-y: auto; }
.muted { color: var(--muted); }
.small { font-size: .85rem; }
.nowrap { white-space: nowrap; }
.wrap { overflow-wrap: anywhere; }
.diagnosis { border: 1px solid var(--line); border-left: 6px solid var(--bad); background: var(--bad-bg);
  padding: .8rem 1.1rem; margin: .5rem 0 1rem; }
.diagnosis.completed { border-left-color: var(--ok); background: #eaf6ee; }
.diagnosis .summary { font-size: 1.2rem; font-weight: 600; margin: .2rem 0 .5rem; }
.diagnosis .statement, .diagnosis .advice { margin: .2rem 0 .4rem; }
.diagnosis ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .8rem; font-weight: 600;
  background: var(--panel); border: 1px solid var(--line); white-space: nowrap; }
.badge.bad { background: var(--bad-bg); color: var(--bad); border-color: #f3c1bc; }
.badge.warn { background: var(--warn-bg); color: var(--warn); border-color: #f1d9a6; }
.badge.ok { background: #eaf6ee; color: var(--ok); border-color: #bfe0ca; }
.notice { background: var(--warn-bg); border: 1px solid #f1d9a6; padding: .5rem .8rem; margin: .5rem 0; }
.bar { height: 1.1rem; background: var(--panel); border: 1px solid var(--line); border-radius: .3rem;
  overflow: hidden; max-width: 40rem; margin: .3rem 0; }
.bar .fill { height: 100%; background: #4a7fd0; }
.bar .fill.full { background: var(--bad); }
.bar .fill.high { background: #d08a1c; }
tr.failed td { background: var(--bad-bg); }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end; background: var(--panel);
  border: 1px solid var(--line); padding: .7rem .9rem; margin: .5rem 0 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
form.filters input, form.filters select { font: inherit; padding: .2rem .35rem; min-width: 9rem; }
.pager { margin: .6rem 0; display: flex; gap: 1.5rem; }
.links a { margin-right: 1rem; }
.error { border-left: 6px solid var(--bad); background: var(--bad-bg); padding: .8rem 1.1rem; }
"#;

/// A whole page: `<head>` with the inline style sheet, the header bar, then `body` in `<main>`.
pub fn page(title: &str, body: impl FnOnce(&mut Html)) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"referrer\" content=\"no-referrer\">")
        .el("title", &[], format_args!("{title} — coroner"))
        .raw("<style>")
        .raw(STYLE)
        .raw("</style></head><body><header>")
        .link("/", "coroner")
        .el("span", &[("class", "sub")], "crash reports of this node")
        .close("header")
        .raw("<main>");
    body(&mut h);
    h.raw("</main></body></html>\n");
    h.into_string()
}

/// The page for a request that cannot be answered: what went wrong, and the way back.
pub fn error_page(title: &str, message: &str) -> String {
    page(title, |h| {
        h.el("h1", &[], title)
            .open("div", &[("class", "error")])
            .el("p", &[], message)
            .close("div")
            .open("p", &[])
            .link("/", "Back to the crash list")
            .close("p");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_a_title_and_no_external_references() {
        let p = page("edge/<gateway>", |h| {
            h.el("p", &[], "body");
        });
        assert!(
            p.contains("<title>edge/&lt;gateway&gt; — coroner</title>"),
            "{p}"
        );
        for external in [
            "http:", "https:", "//", "<link", "<script", "<img", "@import", "url(",
        ] {
            assert!(!p.replace("</", "").contains(external), "{external} in {p}");
        }
    }

    #[test]
    fn error_pages_escape_the_message() {
        let p = error_page("Bad request", "query parameter `pod`: \"<b>\"");
        assert!(
            p.contains("query parameter `pod`: &quot;&lt;b&gt;&quot;"),
            "{p}"
        );
    }
}
