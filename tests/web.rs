//! End-to-end tests of the web pages: real containers crash under a real agent, and headless
//! Chromium loads the pages the way a user behind `kubectl port-forward` would. The assertions
//! are on the DOM Chromium built, so what is checked is what a browser shows (and runs).
//!
//! Needs `chromium` on PATH (`scripts/install-deps.sh` installs it). Chromium takes seconds per
//! page on a small machine, so one agent serves every check and each page is loaded once.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Agent, Containerd};
use reqwest::StatusCode;
use serde_json::Value;

const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// What a hostile container writes to stderr (and carries in its argv): if the page ran it, the
/// title would change; if the page loaded it, an external URL would be referenced.
const HOSTILE: &str =
    "<script>document.title=\"pwned\"</script><img src=http://example.invalid/x.png>";

#[tokio::test(flavor = "multi_thread")]
async fn web_pages_show_real_crashes_and_never_run_their_output() {
    let browser = Browser::find();
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let cri = cd.cri().await;
    cri.run_pod("gateway", "edge")
        .await
        .container("beam")
        .command([
            "sh",
            "-c",
            "echo 'allocating until the limit' >&2; exec tail /dev/zero",
        ])
        .memory_limit(20 << 20)
        .start()
        .await;
    let script = format!("echo '{HOSTILE}' >&2; exit 3");
    cri.run_pod("evil", "default")
        .await
        .container("xss")
        .command(["sh", "-c", &script])
        .start()
        .await;
    let oom = agent.report_for("gateway", "beam").await;
    let hostile = agent.report_for("evil", "xss").await;

    oom_report_page_shows_the_diagnosis_memory_timeline_syscalls_and_stderr(&browser, &agent, &oom);
    hostile_output_is_shown_as_text_and_never_runs(&browser, &agent, &hostile);
    let group = group_of(&agent, &oom).await;
    crash_list_shows_both_crashes_and_the_group(&browser, &agent, &oom, &hostile, &group);
    filter_form_keeps_only_the_matching_crash(&browser, &agent, &oom, &hostile);
    group_page_shows_count_cause_and_reports(&browser, &agent, &oom, &group);
    bad_requests_get_error_pages_naming_the_problem(&agent).await;
    if let Some(dir) = std::env::var_os("CORONER_WEB_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        for (name, path) in [
            ("list", "/".to_string()),
            ("oom", format!("/crashes/{}", oom["id"].as_str().unwrap())),
            (
                "hostile",
                format!("/crashes/{}", hostile["id"].as_str().unwrap()),
            ),
            ("group", format!("/groups/{group}")),
        ] {
            browser.screenshot(
                &format!("{}{path}", agent.base_url()),
                &dir.join(format!("{name}.png")),
            );
        }
    }
}

fn oom_report_page_shows_the_diagnosis_memory_timeline_syscalls_and_stderr(
    browser: &Browser,
    agent: &Agent,
    r: &Value,
) {
    let id = r["id"].as_str().unwrap();
    let dom = browser.dump_dom(&format!("{}/crashes/{id}", agent.base_url()));
    assert_local_only(&dom);
    assert_eq!(title(&dom), "edge/gateway/beam — coroner");

    let d = &r["diagnosis"];
    assert_eq!(d["cause"], "oom_killed", "{d}");
    let summary = dom_text(d["summary"].as_str().unwrap());
    let at = dom
        .find(&summary)
        .unwrap_or_else(|| panic!("summary {summary:?} not on the page:\n{dom}"));
    assert!(
        at < dom.find("Identity and exit").unwrap(),
        "the diagnosis is not on top"
    );
    assert!(dom.contains("high confidence"), "{dom}");
    for e in d["evidence"].as_array().unwrap() {
        let fact = dom_text(e["fact"].as_str().unwrap());
        assert!(dom.contains(&fact), "evidence {fact:?} missing");
    }

    let peak = r["cgroup"]["usage"]["memory_peak_bytes"]
        .as_u64()
        .expect("peak recorded");
    let limit = r["cgroup"]["limits"]["memory_limit_bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(limit, 20 << 20);
    // Shown with one decimal, as the Markdown shows it; the bar's width is the whole percent.
    let pct = peak * 100 / limit;
    let shown = format!("{:.1}%", peak as f64 * 100.0 / limit as f64);
    let figures = format!("peak {} of 20.0 MiB ({shown})", mib(peak));
    assert!(
        dom.contains(&figures),
        "memory figures {figures:?} missing:\n{dom}"
    );
    assert!(
        dom.contains(&format!("style=\"width: {}%", pct.min(100))),
        "memory bar missing:\n{dom}"
    );

    let timeline = section(&dom, "timeline");
    assert!(timeline.contains("<td>exec</td>"), "{timeline}");
    assert!(
        timeline.contains("<code>tail /dev/zero</code>"),
        "the exec of tail: {timeline}"
    );
    let syscalls = section(&dom, "syscalls");
    assert!(
        syscalls.contains("<td class=\"mono\">read</td>"),
        "{syscalls}"
    );
    assert!(section(&dom, "fatal-signal").contains("OOM killer"));
    assert!(section(&dom, "stderr").starts_with("id=\"stderr\">allocating until the limit"));
    assert!(dom.contains("Captured by coroner"), "{dom}");
    assert!(dom.contains(&format!("href=\"/api/v1/crashes/{id}?format=markdown\"")));
}

fn hostile_output_is_shown_as_text_and_never_runs(browser: &Browser, agent: &Agent, r: &Value) {
    let id = r["id"].as_str().unwrap();
    let dom = browser.dump_dom(&format!("{}/crashes/{id}", agent.base_url()));
    assert_eq!(title(&dom), "default/evil/xss — coroner", "the script ran");
    assert!(
        !dom.contains("<script"),
        "a script element made it into the page:\n{dom}"
    );
    assert!(
        !dom.contains("<img"),
        "an image element made it into the page:\n{dom}"
    );
    let stderr = section(&dom, "stderr");
    assert!(
        stderr.starts_with(&format!("id=\"stderr\">{}", dom_text(HOSTILE))),
        "{stderr}"
    );
    assert_local_only(&dom);
}

fn crash_list_shows_both_crashes_and_the_group(
    browser: &Browser,
    agent: &Agent,
    oom: &Value,
    hostile: &Value,
    group: &str,
) {
    let dom = browser.dump_dom(&format!("{}/", agent.base_url()));
    assert_local_only(&dom);
    // The hostile crash's diagnosis quotes its stderr on this page too.
    assert_eq!(title(&dom), "Crashes — coroner", "a script ran");
    for r in [oom, hostile] {
        let link = format!("href=\"/crashes/{}\"", r["id"].as_str().unwrap());
        assert!(dom.contains(&link), "{link} missing:\n{dom}");
    }
    assert!(
        dom.contains(&format!("href=\"/groups/{group}\"")),
        "group link missing:\n{dom}"
    );
    assert!(dom.contains("edge/gateway/beam"));
    assert!(
        dom.contains("<span class=\"badge bad\">OOM</span>"),
        "{dom}"
    );
    assert!(dom.contains(" UTC<br>"), "exit times in UTC: {dom}");
    assert!(dom.contains("ago</span>"), "ages: {dom}");
}

fn filter_form_keeps_only_the_matching_crash(
    browser: &Browser,
    agent: &Agent,
    oom: &Value,
    hostile: &Value,
) {
    // What the form submits: every field, the untouched ones blank.
    let url = format!(
        "{}/?namespace=edge&pod=&container=&since=&outcome=crashed&cause=oom_killed",
        agent.base_url()
    );
    let dom = browser.dump_dom(&url);
    let crashes = section(&dom, "crashes");
    assert!(crashes.contains(oom["id"].as_str().unwrap()), "{crashes}");
    assert!(
        !dom.contains(hostile["id"].as_str().unwrap()),
        "filtered out, yet shown:\n{dom}"
    );
    assert!(
        dom.contains("name=\"namespace\" value=\"edge\""),
        "the form keeps its values: {dom}"
    );
    assert!(
        dom.contains("<option value=\"oom_killed\" selected=\"selected\">"),
        "{dom}"
    );
}

fn group_page_shows_count_cause_and_reports(
    browser: &Browser,
    agent: &Agent,
    oom: &Value,
    group: &str,
) {
    let dom = browser.dump_dom(&format!("{}/groups/{group}", agent.base_url()));
    assert_local_only(&dom);
    assert!(dom.contains("Crash group: edge/gateway/beam"), "{dom}");
    assert!(
        dom.contains("<th>crashes</th><td class=\"wrap\">1</td>"),
        "{dom}"
    );
    assert!(dom.contains(">oom_killed<"), "{dom}");
    assert!(dom.contains("<th>first seen</th>") && dom.contains("<th>last seen</th>"));
    assert!(dom.contains(&format!(
        "href=\"/crashes/{}\"",
        oom["id"].as_str().unwrap()
    )));
}

async fn bad_requests_get_error_pages_naming_the_problem(agent: &Agent) {
    let (status, body) = agent.get_text("/?outcome=dead").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("query parameter `outcome`: &quot;dead&quot; is not one of"),
        "{body}"
    );
    let (status, body) = agent.get_text("/?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("query parameter `colour`: unknown parameter"),
        "{body}"
    );
    let (status, body) = agent.get_text("/crashes/0123456789abcdef0123").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no report with id"), "{body}");
    let (status, _) = agent.get_text("/crashes/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = agent.get_text("/groups/0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = agent.get_text("/groups/%3Cscript%3E").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The crash group of a report, from the API's summary.
async fn group_of(agent: &Agent, r: &Value) -> String {
    let (status, list) = agent.get("/api/v1/crashes?outcome=all").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == r["id"])
        .unwrap_or_else(|| panic!("{} not listed: {list}", r["id"]));
    item["group_id"]
        .as_str()
        .expect("a diagnosed crash has a group")
        .to_string()
}

/// Headless Chromium, found on PATH.
struct Browser {
    binary: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn find() -> Browser {
        let binary = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| on_path(name))
            .unwrap_or_else(|| {
                panic!("no chromium on PATH: the web page tests drive a real browser; run scripts/install-deps.sh")
            });
        Browser {
            binary,
            profile: tempfile::tempdir().expect("creating a browser profile dir"),
        }
    }

    /// The DOM after loading `url` (and running whatever scripts the page had), serialised.
    fn dump_dom(&self, url: &str) -> String {
        let dom = self.run(url, &["--dump-dom"]);
        assert!(
            dom.contains("</html>"),
            "chromium dumped no page for {url}: {dom}"
        );
        dom
    }

    /// A laptop-sized screenshot of `url`, for a human to look at (`CORONER_WEB_SCREENSHOTS`).
    fn screenshot(&self, url: &str, png: &Path) {
        let arg = format!("--screenshot={}", png.display());
        self.run(url, &[&arg, "--window-size=1440,2400", "--hide-scrollbars"]);
        assert!(png.is_file(), "chromium wrote no screenshot of {url}");
    }

    /// Runs chromium on `url` with `args`; its stdout.
    fn run(&self, url: &str, args: &[&str]) -> String {
        let out_path = self.profile.path().join("stdout.txt");
        let out = std::fs::File::create(&out_path).unwrap();
        let err = std::fs::File::create(self.profile.path().join("stderr.txt")).unwrap();
        let mut child = Command::new(&self.binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(["--disable-background-networking", "--disable-extensions"])
            .arg(format!(
                "--user-data-dir={}",
                self.profile.path().join("profile").display()
            ))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish loading {url} within {BROWSER_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap();
        assert!(
            status.success(),
            "chromium failed on {url} ({status}): {}",
            std::fs::read_to_string(self.profile.path().join("stderr.txt")).unwrap_or_default()
        );
        stdout
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `s` as Chromium serialises a text node: `&`, `<` and `>` escaped, quotes kept.
fn dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn title(dom: &str) -> &str {
    let start = dom.find("<title>").expect("a title") + "<title>".len();
    &dom[start..start + dom[start..].find("</title>").unwrap()]
}

/// From the element with `id` to the end of the page.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} on the page:\n{dom}"));
    &dom[at..]
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Every element of the page: no scripts, frames or images, and every URL an attribute holds
/// points back at the agent (`/...`, `?...`, `#...`), so the page works offline and leaks
/// nothing.
fn assert_local_only(dom: &str) {
    for (tag, attrs) in tags(dom) {
        assert!(
            !["script", "img", "iframe", "frame", "object", "embed", "link", "base"]
                .contains(&tag.as_str()),
            "<{tag}> on the page"
        );
        for (name, value) in attrs {
            let url_attr = [
                "href",
                "src",
                "action",
                "formaction",
                "srcset",
                "poster",
                "data",
                "background",
            ];
            if url_attr.contains(&name.as_str()) {
                let local = (value.starts_with('/') && !value.starts_with("//"))
                    || value.starts_with('?')
                    || value.starts_with('#');
                assert!(
                    local,
                    "<{tag} {name}=\"{value}\"> references something outside the agent"
                );
            }
            assert!(
                !name.starts_with("on"),
                "<{tag} {name}=...>: an event handler"
            );
            assert!(
                !value.contains("url("),
                "<{tag} {name}=\"{value}\">: a CSS url()"
            );
        }
    }
    let style = &dom[dom.find("<style>").expect("inline style")..dom.find("</style>").unwrap()];
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "external CSS: {style}"
    );
}

/// (tag, [(attribute, value)]) of every start tag of a serialised DOM. Text never holds a raw
/// `<` there, so a `<` followed by a letter starts a tag; values are double-quoted.
fn tags(dom: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap();
        let tag = rest[..name_end].to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut s = &rest[name_end..];
        loop {
            s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if s.starts_with('>') || s.is_empty() {
                break;
            }
            let n_end = s
                .find(|c: char| c == '=' || c.is_whitespace() || c == '>')
                .unwrap();
            let name = s[..n_end].to_ascii_lowercase();
            s = &s[n_end..];
            let value = if let Some(v) = s.strip_prefix("=\"") {
                let end = v.find('"').expect("a closed attribute value");
                s = &v[end + 1..];
                v[..end].replace("&amp;", "&")
            } else {
                String::new()
            };
            attrs.push((name, value));
        }
        rest = s;
        out.push((tag, attrs));
    }
    out
}

#[test]
fn tag_scanner_finds_attributes_but_not_text() {
    let dom = "<html><body><a href=\"/x?a=1&amp;b=2\" class=\"c\">&lt;img src=\"http://e\"&gt;</a><input disabled></body></html>";
    let tags = tags(dom);
    let names: Vec<&str> = tags.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["html", "body", "a", "input"]);
    assert_eq!(tags[2].1[0], ("href".to_string(), "/x?a=1&b=2".to_string()));
    assert_eq!(tags[3].1[0].0, "disabled");
    assert_local_only(&format!("{dom}<style></style>"));
}

/// A container that leaks into its limit: its page plots the memory history as an inline SVG
/// that Chromium renders (no script), rising towards the dashed limit line.
#[tokio::test(flavor = "multi_thread")]
async fn memory_history_is_plotted_against_the_limit() {
    let browser = Browser::find();
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    // busybox awk holding a new 128 KiB string every ~20 ms: a leak, OOM-killed in seconds.
    let leak = "BEGIN { s = \"x\"; for (i = 0; i < 17; i++) s = s s; \
                while (1) { a[n++] = s n; for (i = 0; i < 100000; i++); } }";
    cd.cri()
        .await
        .run_pod("leaky", "default")
        .await
        .container("app")
        .command(["awk", leak])
        .memory_limit(24 << 20)
        .start()
        .await;
    let r = agent.report_for("leaky", "app").await;
    assert_eq!(r["diagnosis"]["cause"], "oom_killed", "{}", r["diagnosis"]);
    let id = r["id"].as_str().unwrap();
    let dom = browser.dump_dom(&format!("{}/crashes/{id}", agent.base_url()));
    assert_local_only(&dom);

    let plot = section(&dom, "memory-history");
    assert!(plot.contains("limit 24.0 MiB"), "{plot}");
    assert!(
        dom.contains("<line class=\"limit\""),
        "no limit line:\n{plot}"
    );
    let points = plot
        .split("<polyline class=\"memory\" points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or_else(|| panic!("no memory line in the plot:\n{plot}"));
    let ys: Vec<f64> = points
        .split(' ')
        .filter_map(|p| p.split(',').nth(1)?.parse().ok())
        .collect();
    let samples = r["usage_history"]["samples"].as_array().unwrap().len();
    assert_eq!(ys.len(), samples, "one point a sample: {points}");
    assert!(ys.len() >= 5, "{points}");
    // SVG's y grows downwards: memory rising is y falling.
    assert!(ys[ys.len() - 1] < ys[0] - 50.0, "not rising: {points}");
    assert!(
        dom.contains("memory grew steadily for"),
        "steady growth not said on the page"
    );
}
