//! The served OpenAPI document against the real agent: real crashed containers, so lists have
//! items and `{id}` paths have reports and groups to find.
//!
//! Two views: the agent's real responses for those reports, checked here against the document's
//! own schemas, and the `schemathesis` CLI fuzzing every operation from the document (status
//! codes, content types, response schemas, headers, no 5xx, valid input accepted, invalid input
//! refused). Needs `schemathesis` on PATH (`scripts/install-deps.sh`); without it the test fails.

mod harness;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Agent, Containerd};
use serde_json::Value;

use harness::agent::REPORT_TIMEOUT;
/// Upper bound of one schemathesis run; it normally takes well under a minute.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(150);

/// An agent with a few real reports: a crash loop (two attempts, one group), a one-off crash and
/// a completed container.
async fn agent_with_reports() -> (Containerd, Agent) {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let pod = cd
        .cri()
        .await
        .run_pod("checkout-7d9f8b6c5d-x2x9q", "shop")
        .await;
    for attempt in 0..2 {
        pod.container("api")
            .attempt(attempt)
            .command(["sh", "-c", "echo no config >&2; exit 3"])
            .start()
            .await;
        wait_for(&agent, "api", Some(attempt)).await;
    }
    pod.container("migrate")
        .command(["sh", "-c", "kill -SEGV $$"])
        .start()
        .await;
    pod.container("init").command(["true"]).start().await;
    wait_for(&agent, "migrate", None).await;
    wait_for(&agent, "init", None).await;
    (cd, agent)
}

async fn wait_for(agent: &Agent, container: &str, attempt: Option<u32>) -> Value {
    let container = container.to_string();
    agent
        .wait_for_report(
            move |r| {
                r["kubernetes"]["container"] == container.as_str()
                    && attempt.is_none_or(|a| r["kubernetes"]["attempt"] == a)
            },
            REPORT_TIMEOUT,
        )
        .await
}

async fn openapi_document(agent: &Agent) -> Value {
    let (status, doc) = agent.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200, "GET /api/v1/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn real_reports_and_groups_conform_to_the_openapi_document() {
    let (_cd, agent) = agent_with_reports().await;
    let doc = openapi_document(&agent).await;
    let http = reqwest::Client::new();
    let (doc, http, base) = (&doc, &http, agent.base_url());
    let check = move |path: String, template: &'static str, status: u16| {
        let base = base.clone();
        async move { conforms(http, doc, &base, &path, template, status).await }
    };

    let list = check("/api/v1/crashes?outcome=all".into(), "/api/v1/crashes", 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{list}");
    let paged = check("/api/v1/crashes?limit=1".into(), "/api/v1/crashes", 200).await;
    let cursor = paged["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    check(
        format!("/api/v1/crashes?limit=1&cursor={cursor}"),
        "/api/v1/crashes",
        200,
    )
    .await;
    for item in items {
        let id = item["id"].as_str().unwrap();
        for format in ["", "?format=json", "?format=markdown", "?format=text"] {
            check(
                format!("/api/v1/crashes/{id}{format}"),
                "/api/v1/crashes/{id}",
                200,
            )
            .await;
        }
    }

    let groups = check("/api/v1/groups".into(), "/api/v1/groups", 200).await;
    let groups = groups["items"].as_array().unwrap();
    assert!(
        groups.iter().any(|g| g["count"] == 2),
        "the two attempts of `api` form one group: {groups:?}"
    );
    for g in groups {
        let id = g["id"].as_str().unwrap();
        check(format!("/api/v1/groups/{id}"), "/api/v1/groups/{id}", 200).await;
    }
    check(
        "/api/v1/groups?cause=exited_error&limit=1".into(),
        "/api/v1/groups",
        200,
    )
    .await;

    check("/healthz".into(), "/healthz", 200).await;
    check("/readyz".into(), "/readyz", 200).await;
    check("/metrics".into(), "/metrics", 200).await;
    check("/api/v1/openapi.json".into(), "/api/v1/openapi.json", 200).await;

    // Errors: the documented error body, with the parameter named.
    let e = check("/api/v1/crashes?limit=0".into(), "/api/v1/crashes", 400).await;
    assert_eq!(e["error"]["param"], "limit");
    check("/api/v1/groups?cause=bored".into(), "/api/v1/groups", 400).await;
    check(
        "/api/v1/crashes/0123456789abcdef0123".into(),
        "/api/v1/crashes/{id}",
        404,
    )
    .await;
    check(
        "/api/v1/crashes/0123?format=pdf".into(),
        "/api/v1/crashes/{id}",
        400,
    )
    .await;
    check("/api/v1/groups/00ff".into(), "/api/v1/groups/{id}", 404).await;
}

/// `/api/v1/events` never ends, so schemathesis cannot check it: its content type is checked here
/// from the response head alone.
#[tokio::test(flavor = "multi_thread")]
async fn event_stream_is_documented_and_served_as_text_event_stream() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let doc = openapi_document(&agent).await;
    let content = &doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"];
    let media: Vec<&String> = content
        .as_object()
        .expect("documented content")
        .keys()
        .collect();
    assert_eq!(media, ["text/event-stream"]);
    let resp = reqwest::get(format!("{}/api/v1/events", agent.base_url()))
        .await
        .expect("GET /api/v1/events");
    assert_eq!(resp.status(), 200);
    assert_eq!(essence(&resp), "text/event-stream");
}

/// An id that is not UTF-8 once percent-decoded can name no report: the answer must still be the
/// documented JSON error, not the extractor's plain-text rejection. (Found while probing the
/// document; schemathesis generates only UTF-8 strings, so it cannot send this.)
#[tokio::test(flavor = "multi_thread")]
async fn undecodable_id_gets_the_documented_json_error() {
    let cd = Containerd::start().await;
    let agent = Agent::start(&cd).await;
    let doc = openapi_document(&agent).await;
    let http = reqwest::Client::new();
    for template in ["/api/v1/crashes/{id}", "/api/v1/groups/{id}"] {
        let path = template.replace("{id}", "%FF");
        let status = http
            .get(format!("{}{path}", agent.base_url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(matches!(status, 400 | 404), "GET {path}: {status}");
        let body = conforms(&http, &doc, &agent.base_url(), &path, template, status).await;
        assert!(body["error"]["code"].is_string(), "GET {path}: {body}");
    }
}

/// The hand-written validator below must reject what a schema forbids, or the conformance test
/// above proves nothing.
#[test]
fn the_test_validator_rejects_what_the_schema_forbids() {
    let doc = serde_json::json!({
        "components": { "schemas": {
            "Item": {
                "type": "object",
                "required": ["n", "at", "kind"],
                "properties": {
                    "n": { "type": "integer", "format": "uint32", "minimum": 0 },
                    "at": { "type": "string", "format": "date-time" },
                    "kind": { "oneOf": [{ "const": "a" }, { "const": "b" }] },
                    "note": { "type": ["string", "null"] },
                },
            },
        } },
    });
    let schema =
        serde_json::json!({ "type": "array", "items": { "$ref": "#/components/schemas/Item" } });
    let errors_for = |v: Value| {
        let mut e = Vec::new();
        validate(&doc, &schema, &v, "", &mut e);
        e
    };
    let good =
        serde_json::json!([{ "n": 3, "at": "2026-11-22T10:00:00Z", "kind": "a", "note": null }]);
    assert_eq!(errors_for(good), Vec::<String>::new());
    for bad in [
        serde_json::json!([{ "n": -1, "at": "2026-11-22T10:00:00Z", "kind": "a" }]),
        serde_json::json!([{ "n": 4294967296u64, "at": "2026-11-22T10:00:00Z", "kind": "a" }]),
        serde_json::json!([{ "n": 1, "at": "yesterday", "kind": "a" }]),
        serde_json::json!([{ "n": 1, "at": "2026-11-22T10:00:00Z", "kind": "c" }]),
        serde_json::json!([{ "n": 1, "at": "2026-11-22T10:00:00Z" }]),
        serde_json::json!([{ "n": 1, "at": "2026-11-22T10:00:00Z", "kind": "a", "note": 5 }]),
        serde_json::json!({}),
    ] {
        assert!(!errors_for(bad.clone()).is_empty(), "accepted {bad}");
    }
    let mut e = Vec::new();
    validate(
        &doc,
        &serde_json::json!({ "pattern": "^a$" }),
        &Value::Null,
        "",
        &mut e,
    );
    assert!(e[0].contains("does not know keyword"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_mismatch_between_document_and_agent() {
    let bin = schemathesis_binary();
    let (_cd, agent) = agent_with_reports().await;
    openapi_document(&agent).await;
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("schemathesis.log");
    let url = format!("{}/api/v1/openapi.json", agent.base_url());
    let args = [
        "run",
        url.as_str(),
        // Every check; the auth ones have no auth to test and skip themselves.
        "--checks",
        "all",
        // The SSE stream never ends, so a request to it never completes: excluded here and checked
        // by `event_stream_is_documented_and_served_as_text_event_stream`.
        "--exclude-path",
        "/api/v1/events",
        // Examples, boundary values (coverage), random inputs (fuzzing) and the documented links
        // (stateful: list -> report -> group with the real ids).
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--mode",
        "all",
        "--max-examples",
        "100",
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "false",
    ];
    let started = Instant::now();
    let (status, output) = run_with_timeout(&bin, &args, work.path(), &log);
    let took = started.elapsed();
    assert!(
        status == Some(0),
        "schemathesis {} (exit {status:?}, {took:?}) found mismatches between \
         /api/v1/openapi.json and the agent:\n{output}\n--- agent log ---\n{}",
        args.join(" "),
        agent.log(),
    );
    eprintln!("schemathesis passed in {took:?}:\n{output}");
}

/// `CORONER_SCHEMATHESIS` or `schemathesis` on PATH; a missing tool fails the test.
fn schemathesis_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CORONER_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("schemathesis"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the schemathesis CLI is not on PATH (nor set in CORONER_SCHEMATHESIS): \
             install it with scripts/install-deps.sh (pip install schemathesis==4.32.5)"
        )
    })
}

/// Runs `bin args` in `dir` with its output in `log`; kills it after [`SCHEMATHESIS_TIMEOUT`].
fn run_with_timeout(
    bin: &PathBuf,
    args: &[&str],
    dir: &std::path::Path,
    log: &std::path::Path,
) -> (Option<i32>, String) {
    let out = std::fs::File::create(log).unwrap();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let deadline = Instant::now() + SCHEMATHESIS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(log).unwrap_or_default();
            panic!("schemathesis still running after {SCHEMATHESIS_TIMEOUT:?}:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

fn essence(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_ascii_lowercase()
}

/// `GET path` answers `status` with a content type the document lists for the operation at
/// `template` and that status, and a JSON body valid against the documented schema. Returns the
/// body (`Null` when it is not JSON).
async fn conforms(
    http: &reqwest::Client,
    doc: &Value,
    base: &str,
    path: &str,
    template: &str,
    status: u16,
) -> Value {
    let resp = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(resp.status().as_u16(), status, "GET {path}");
    let media = essence(&resp);
    let text = resp.text().await.unwrap();
    let op = &doc["paths"][template]["get"];
    assert!(op.is_object(), "GET {template} is not in the document");
    let response = resolve(doc, &op["responses"][status.to_string()]);
    assert!(
        response.is_object(),
        "GET {path}: status {status} is not documented for {template}"
    );
    let content = response["content"].as_object().unwrap();
    let schema = content.get(&media).unwrap_or_else(|| {
        panic!(
            "GET {path}: content type {media:?} is not documented (documented: {:?})",
            content.keys().collect::<Vec<_>>()
        )
    })["schema"]
        .clone();
    if media != "application/json" {
        return Value::Null;
    }
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("GET {path}: body is not JSON ({e}): {text}"));
    let mut errors = Vec::new();
    validate(doc, &schema, &body, "", &mut errors);
    assert!(
        errors.is_empty(),
        "GET {path}: the body does not match the documented schema:\n  {}\nbody: {body:#}",
        errors.join("\n  ")
    );
    body
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}")),
            )
        }
        None => v,
    }
}

/// A JSON Schema (2020-12) validator for the keywords the document uses. Any other keyword is an
/// error, so a schema it does not understand fails instead of passing unchecked.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errors.push(format!("{at}: nothing is allowed here")),
        Value::Object(s) => s,
        _ => return errors.push(format!("{at}: schema {schema} is not a schema")),
    };
    for (keyword, arg) in s {
        match keyword.as_str() {
            "$ref" => {
                let pointer = arg.as_str().and_then(|r| r.strip_prefix('#')).unwrap();
                match doc.pointer(pointer) {
                    Some(target) => validate(doc, target, v, at, errors),
                    None => errors.push(format!("{at}: dangling $ref {arg}")),
                }
            }
            "type" => {
                let types: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !types.iter().any(|t| has_type(v, t)) {
                    errors.push(format!("{at}: {v} is not of type {arg}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(v) {
                    errors.push(format!("{at}: {v} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != v {
                    errors.push(format!("{at}: {v} is not {arg}"));
                }
            }
            "properties" => {
                if let Value::Object(o) = v {
                    for (name, sub) in arg.as_object().unwrap() {
                        if let Some(x) = o.get(name) {
                            validate(doc, sub, x, &format!("{at}/{name}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let Value::Object(o) = v {
                    for name in arg.as_array().unwrap().iter().filter_map(Value::as_str) {
                        if !o.contains_key(name) {
                            errors.push(format!("{at}: required property {name:?} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Value::Object(o) = v {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (name, x) in o {
                        if !known.is_some_and(|k| k.contains_key(name)) {
                            validate(doc, arg, x, &format!("{at}/{name}"), errors);
                        }
                    }
                }
            }
            "items" => {
                if let Value::Array(a) = v {
                    for (i, x) in a.iter().enumerate() {
                        validate(doc, arg, x, &format!("{at}/{i}"), errors);
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let matching = arg
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| {
                        let mut e = Vec::new();
                        validate(doc, sub, v, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    errors.push(format!("{at}: {v} matches {matching} of {keyword} {arg}"));
                }
            }
            "format" => {
                if let Some(e) = check_format(arg.as_str().unwrap(), v) {
                    errors.push(format!("{at}: {e}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(x), Some(bound)) = (v.as_f64(), arg.as_f64()) {
                    let ok = if keyword == "minimum" {
                        x >= bound
                    } else {
                        x <= bound
                    };
                    if !ok {
                        errors.push(format!("{at}: {v} is beyond {keyword} {bound}"));
                    }
                }
            }
            "description" | "title" | "default" | "examples" | "$comment" => {}
            other => errors.push(format!(
                "{at}: the test's validator does not know keyword {other:?}; teach it"
            )),
        }
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

/// `None` when `v` satisfies `format` (or is not a value the format applies to).
fn check_format(format: &str, v: &Value) -> Option<String> {
    let in_range = |lo: i128, hi: i128| {
        let n = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from))?;
        (!(lo..=hi).contains(&n)).then(|| format!("{v} is not a {format}"))
    };
    match format {
        "date-time" => {
            let s = v.as_str()?;
            chrono::DateTime::parse_from_rfc3339(s)
                .err()
                .map(|e| format!("{s:?} is not an RFC 3339 date-time: {e}"))
        }
        "uint8" => in_range(0, u8::MAX.into()),
        "uint16" => in_range(0, u16::MAX.into()),
        "uint32" => in_range(0, u32::MAX.into()),
        "uint64" => in_range(0, u64::MAX.into()),
        "int32" => in_range(i32::MIN.into(), i32::MAX.into()),
        "int64" => in_range(i64::MIN.into(), i64::MAX.into()),
        other => Some(format!(
            "the test's validator does not know format {other:?}"
        )),
    }
}
