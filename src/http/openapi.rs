//! The OpenAPI 3.1 document of the HTTP API, served at `/api/v1/openapi.json`.
//!
//! The body schemas are derived from the model types with `schemars` (serialize contract, so they
//! describe what the agent sends), never written by hand, so they cannot drift from the JSON the
//! handlers produce. Only what the handlers build ad hoc is described here: the list envelopes, the
//! error body of `ApiError` and the `/readyz` body. Parameters mirror the rules of
//! `crate::store::query` and `Format::from_pairs`; `tests/openapi.rs` holds the document to the
//! real agent with schemathesis.
//!
//! This file owns the document only; routing and handlers live in `super`.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

use crate::model::{Cause, CrashGroup, CrashReport, CrashSummary, Outcome, RecorderState};
use crate::store::MAX_LIMIT;

/// Where component schemas live; `$ref`s point here.
const SCHEMAS: &str = "/components/schemas";

// The envelopes below describe JSON the handlers build with `json!`; they are hand-mirrored, so
// they refuse unknown properties: a field added there and not here fails the conformance tests.

/// `GET /api/v1/crashes`: a page of summaries, newest first.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // never built: only its schema is used
struct CrashList {
    items: Vec<CrashSummary>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/v1/groups`: crash-loop groups, most recently seen first.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GroupList {
    items: Vec<CrashGroup>,
}

/// The body of every 4xx/5xx answer of the API.
#[derive(JsonSchema)]
#[schemars(rename = "Error")]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ErrorDetail {
    code: ErrorCode,
    /// What went wrong, for a human.
    message: String,
    /// The query parameter at fault (`bad_request` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<String>,
}

/// Stable error code (`ApiError::code`).
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ErrorCode {
    /// A query parameter is unknown, repeated, empty or malformed (see `param`).
    BadRequest,
    /// No report or group with that id, or no such endpoint.
    NotFound,
    /// The agent failed to read its store.
    Internal,
    /// The agent has an API token (`--api-token-file`) and the request did not carry it.
    Unauthorized,
    /// Too many connections or live feed clients at once; retry after `Retry-After` seconds.
    Overloaded,
}

/// The OpenAPI document, built afresh (it is small and rarely fetched).
pub fn document() -> Value {
    let mut gen = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = SCHEMAS.into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let s = Schemas::new(&mut gen);
    let paths = paths(&s);
    let mut schemas = gen.take_definitions(true);
    schemas.insert("Ready".into(), ready_schema(&s));
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "coroner",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Crash reports of the containers on this node, one per container exit. \
                All endpoints are read-only GETs; errors are JSON with a stable `code`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(&s),
        },
    })
}

/// `$ref`s to the component schemas the paths use.
struct Schemas {
    report: Schema,
    crash_list: Schema,
    group: Schema,
    group_list: Schema,
    error: Schema,
    outcome: Schema,
    cause: Schema,
    recorder_state: Schema,
}

impl Schemas {
    fn new(gen: &mut SchemaGenerator) -> Schemas {
        Schemas {
            report: gen.subschema_for::<CrashReport>(),
            crash_list: gen.subschema_for::<CrashList>(),
            group: gen.subschema_for::<CrashGroup>(),
            group_list: gen.subschema_for::<GroupList>(),
            error: gen.subschema_for::<ErrorBody>(),
            outcome: gen.subschema_for::<Outcome>(),
            cause: gen.subschema_for::<Cause>(),
            recorder_state: gen.subschema_for::<RecorderState>(),
        }
    }
}

/// The body of `/readyz`, built with `json!` in the handler (closed, like the envelopes).
fn ready_schema(s: &Schemas) -> Value {
    let nullable_string = json!({ "type": ["string", "null"] });
    json!({
        "description": "Readiness: 200 once the first containerd subscription and reconcile \
            succeeded, 503 before, and 503 while report writes fail (until every queued report \
            is written).",
        "type": "object",
        "additionalProperties": false,
        "required": ["ready", "recorder", "containerd", "store"],
        "properties": {
            "ready": { "type": "boolean" },
            "recorder": {
                "description": "State of the eBPF flight recorder on this node.",
                "type": "object",
                "additionalProperties": false,
                "required": ["state", "reason"],
                "properties": {
                    "state": s.recorder_state,
                    "reason": nullable_string,
                },
            },
            "containerd": {
                "type": "object",
                "additionalProperties": false,
                "required": ["socket", "connected", "last_disconnect"],
                "properties": {
                    "socket": { "type": "string" },
                    "connected": { "type": "boolean" },
                    "last_disconnect": nullable_string,
                },
            },
            "store": {
                "description": "The report store: `failing` from a failed write until the \
                    reports queued in memory are written; `reason` is the fault's stable label.",
                "type": "object",
                "additionalProperties": false,
                "required": ["state", "pending"],
                "properties": {
                    "state": { "type": "string", "enum": ["ok", "failing"] },
                    "pending": { "type": "integer", "minimum": 0 },
                    "pending_bytes": { "type": "integer", "minimum": 0 },
                    "reason": {
                        "type": "string",
                        "enum": crate::store::WriteFault::ALL.map(|f| f.label()),
                    },
                    "error": { "type": "string" },
                    "since": { "type": "string", "format": "date-time" },
                },
            },
        },
    })
}

fn error_responses(s: &Schemas) -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": s.error } },
        })
    };
    json!({
        "BadRequest": error("A query parameter is unknown, repeated, empty or malformed; \
            `error.param` names it."),
        "NotFound": error("No such report, group or endpoint."),
        "Internal": error("The agent could not read its store."),
        "Unauthorized": error("The agent has an API token (`--api-token-file`) and the request \
            did not carry it as `Authorization: Bearer <token>` (`WWW-Authenticate: Bearer`)."),
        "Overloaded": error("Too many connections (`--max-connections`) or live feed clients \
            (`--max-sse-clients`) at once; `Retry-After` says when to try again."),
    })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn json_ok(description: &str, schema: &Schema) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

fn text_ok(description: &str, media_type: &str) -> Value {
    json!({
        "description": description,
        "content": { media_type: { "schema": { "type": "string" } } },
    })
}

/// An optional query parameter. Every one is refused when empty or given twice.
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema,
    })
}

fn non_empty() -> Value {
    json!({ "type": "string", "minLength": 1 })
}

fn since() -> Value {
    query(
        "since",
        "RFC 3339 time (`2026-11-22T10:00:00Z`); only exits at or after it.",
        json!({ "type": "string", "format": "date-time" }),
    )
}

fn limit(description: &str) -> Value {
    query(
        "limit",
        description,
        json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT }),
    )
}

fn id_param(description: &str) -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": description,
        // `crate::store::valid_id`: anything else is a 404, like an unknown id.
        "schema": { "type": "string", "pattern": "^[0-9a-f]+$", "maxLength": 64 },
    })
}

fn get(operation_id: &str, summary: &str, parameters: Vec<Value>, responses: Value) -> Value {
    json!({
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": responses,
        }
    })
}

fn paths(s: &Schemas) -> Map<String, Value> {
    let workload_filters = || {
        vec![
            query(
                "namespace",
                "Kubernetes namespace (the containerd namespace for other containers).",
                non_empty(),
            ),
            query("pod", "Pod name.", non_empty()),
            query(
                "container",
                "Kubernetes container name, or containerd container id.",
                non_empty(),
            ),
        ]
    };

    let mut crash_params = workload_filters();
    crash_params.extend([
        query(
            "outcome",
            "`crashed` (default), `completed`, or `all`.",
            json!({
                "anyOf": [s.outcome, { "const": "all", "description": "Every outcome." }],
                "default": "crashed",
            }),
        ),
        query("cause", "Probable cause of the crash.", json!(s.cause)),
        query(
            "group",
            "Crash-loop group id (a summary's `group_id`).",
            json!({ "type": "string", "pattern": "^[0-9a-fA-F]+$", "maxLength": 64 }),
        ),
        since(),
        limit("Page size (default 100)."),
        query(
            "cursor",
            "`next_cursor` of the previous page (opaque; other values are refused).",
            json!({ "type": "string", "pattern": "^-?(?:[0-9]{1,18}|[1-8][0-9]{18})\\.[0-9a-f]{1,64}$" }),
        ),
    ]);

    let mut group_params = workload_filters();
    group_params[1]["description"] =
        json!("The workload's owner prefix (`gateway` for `gateway-7d9f8b6c5d-x2x9q`) or any pod of the group.");
    group_params.extend([
        query(
            "cause",
            "Probable cause of the group's crashes.",
            json!(s.cause),
        ),
        query(
            "since",
            "RFC 3339 time; only groups seen at or after it.",
            json!({ "type": "string", "format": "date-time" }),
        ),
        limit("At most this many groups (default 100)."),
    ]);

    let errors = json!({
        "400": response_ref("BadRequest"),
        "500": response_ref("Internal"),
    });
    let with = |mut base: Value, extra: Value| {
        for (k, v) in extra.as_object().into_iter().flatten() {
            base[k] = v.clone();
        }
        base
    };

    let mut list_ok = json_ok(
        "Report summaries, newest first, oldest-first pages follow `next_cursor`.",
        &s.crash_list,
    );
    list_ok["links"] = json!({
        "GetCrash": {
            "operationId": "getCrash",
            "parameters": { "id": "$response.body#/items/0/id" },
            "description": "The full report of the first summary.",
        },
        "GetGroup": {
            "operationId": "getGroup",
            "parameters": { "id": "$response.body#/items/0/group_id" },
            "description": "The crash-loop group of the first summary.",
        },
    });
    let mut groups_ok = json_ok(
        "Crash-loop groups, most recently seen first.",
        &s.group_list,
    );
    groups_ok["links"] = json!({
        "GetGroup": {
            "operationId": "getGroup",
            "parameters": { "id": "$response.body#/items/0/id" },
        },
    });
    let mut group_ok = json_ok("The crash-loop group.", &s.group);
    group_ok["links"] = json!({
        "GetLatestReport": {
            "operationId": "getCrash",
            "parameters": { "id": "$response.body#/latest_report_id" },
        },
    });

    let mut paths = Map::new();
    paths.insert(
        "/api/v1/crashes".into(),
        get(
            "listCrashes",
            "List report summaries",
            crash_params,
            with(json!({ "200": list_ok }), errors.clone()),
        ),
    );
    paths.insert(
        "/api/v1/crashes/{id}".into(),
        get(
            "getCrash",
            "One full report, as JSON or rendered for humans",
            vec![
                id_param("Report id (`id` of a summary)."),
                query(
                    "format",
                    "`json` (default), `markdown` (alias `md`) or `text`.",
                    json!({ "type": "string", "enum": ["json", "markdown", "md", "text"], "default": "json" }),
                ),
            ],
            with(
                json!({
                    "200": {
                        "description": "The report in the requested format.",
                        "content": {
                            "application/json": { "schema": s.report },
                            "text/markdown": { "schema": { "type": "string" } },
                            "text/plain": { "schema": { "type": "string" } },
                        },
                    },
                    "404": response_ref("NotFound"),
                }),
                errors.clone(),
            ),
        ),
    );
    paths.insert(
        "/api/v1/crashes/{id}/artifacts/{name}".into(),
        get(
            "getCrashArtifact",
            "A post-mortem file kept beside a report (erl_crash.dump, hs_err_pid<pid>.log, ...)",
            vec![
                id_param("Report id (`id` of a summary)."),
                json!({
                    "name": "name",
                    "in": "path",
                    "required": true,
                    "description": "`name` of one of the report's `artifacts.files`.",
                    "schema": { "type": "string" },
                }),
            ],
            with(
                json!({
                    "200": {
                        "description": "The file as kept (its start when `truncated`; redacted unless the agent runs with `--no-redact-artifacts`), with the content type the report lists; gzip-encoded when the request accepts it.",
                        "content": {
                            "text/plain": { "schema": { "type": "string" } },
                            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                        },
                    },
                    "404": response_ref("NotFound"),
                }),
                errors.clone(),
            ),
        ),
    );
    paths.insert(
        "/api/v1/groups".into(),
        get(
            "listGroups",
            "List crash-loop groups",
            group_params,
            with(json!({ "200": groups_ok }), errors.clone()),
        ),
    );
    paths.insert(
        "/api/v1/groups/{id}".into(),
        get(
            "getGroup",
            "One crash-loop group",
            vec![id_param("Group id (`group_id` of a summary).")],
            json!({
                "200": group_ok,
                "404": response_ref("NotFound"),
                "500": response_ref("Internal"),
            }),
        ),
    );
    paths.insert(
        "/api/v1/events".into(),
        get(
            "streamEvents",
            "Server-Sent Events: one `crash` event per stored report",
            vec![json!({
                "name": "Last-Event-ID",
                "in": "header",
                "required": false,
                "description": "Id of the last report received: the reports stored after it \
                    come first, when the store still holds it.",
                "schema": { "type": "string" },
            })],
            json!({
                "200": {
                    "description": "An endless stream. Event `crash`: id is the report id, data \
                        a summary (`CrashSummary`, as in the list). Event `lagged`: this client \
                        missed reports (they are in `/api/v1/crashes`). Comments keep the \
                        connection alive.",
                    "content": {
                        "text/event-stream": {
                            "schema": { "type": "string" },
                        },
                    },
                },
                "503": response_ref("Overloaded"),
            }),
        ),
    );
    paths.insert(
        "/api/v1/openapi.json".into(),
        get(
            "getOpenApi",
            "This document",
            vec![],
            json!({ "200": json_ok("OpenAPI 3.1 document.", &Schema::from(true)) }),
        ),
    );
    paths.insert(
        "/healthz".into(),
        get(
            "healthz",
            "Liveness",
            vec![],
            json!({ "200": text_ok("`ok` while the process serves.", "text/plain") }),
        ),
    );
    let ready = json!({ "$ref": format!("#{SCHEMAS}/Ready") });
    paths.insert(
        "/readyz".into(),
        get(
            "readyz",
            "Readiness and the containerd connection state",
            vec![],
            json!({
                "200": { "description": "Ready.", "content": { "application/json": { "schema": ready } } },
                "503": { "description": "Not ready yet.", "content": { "application/json": { "schema": ready } } },
            }),
        ),
    );
    paths.insert(
        "/metrics".into(),
        get(
            "metrics",
            "Prometheus metrics",
            vec![],
            json!({ "200": {
                "description": "OpenMetrics 1.0.0 text when the Accept header asks for it (Prometheus does), else the Prometheus text format 0.0.4.",
                "content": {
                    "application/openmetrics-text": { "schema": { "type": "string" } },
                    "text/plain": { "schema": { "type": "string" } },
                },
            } }),
        ),
    );
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths `super::router` serves under `/api/v1`, plus health and metrics: read from its
    /// source, so a route added there without a description here fails this test.
    fn routed_api_paths() -> Vec<String> {
        let src = include_str!("mod.rs");
        let routed: Vec<String> = src
            .split(".route(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect();
        assert!(
            routed.len() >= 9,
            "could not read the routes of src/http/mod.rs: {routed:?}"
        );
        routed
            .into_iter()
            .filter(|p| {
                p.starts_with("/api/") || ["/healthz", "/readyz", "/metrics"].contains(&p.as_str())
            })
            .collect()
    }

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let doc = document();
        let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        let routed = routed_api_paths();
        for p in &routed {
            assert!(
                documented.contains(&p),
                "{p} is routed but not in the OpenAPI document"
            );
        }
        for p in &documented {
            assert!(routed.contains(p), "{p} is documented but not routed");
        }
    }

    #[test]
    fn document_has_the_openapi_31_shape() {
        let doc = document();
        // What is served: the document survives a JSON round trip unchanged.
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        for (path, item) in doc["paths"].as_object().unwrap() {
            let op = &item["get"];
            assert!(op["operationId"].is_string(), "{path} has no operationId");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{path} has no 200");
        }
    }

    /// Every `$ref` in the document resolves, so no schema is silently missing.
    #[test]
    fn every_ref_resolves() {
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        let pointer = r.strip_prefix('#').expect("local refs only");
                        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
                    }
                    m.values().for_each(|v| walk(v, doc));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        let doc = document();
        walk(&doc, &doc);
    }

    #[test]
    fn content_types_match_the_handlers() {
        let doc = document();
        let media = |path: &str, status: &str| -> Vec<String> {
            let r = &doc["paths"][path]["get"]["responses"][status];
            let r = match r["$ref"].as_str() {
                Some(p) => doc.pointer(p.strip_prefix('#').unwrap()).unwrap(),
                None => r,
            };
            r["content"].as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(
            media("/api/v1/crashes/{id}", "200"),
            ["application/json", "text/markdown", "text/plain"]
        );
        assert_eq!(media("/api/v1/events", "200"), ["text/event-stream"]);
        assert_eq!(
            media("/metrics", "200"),
            ["application/openmetrics-text", "text/plain"]
        );
        assert_eq!(media("/readyz", "503"), ["application/json"]);
        assert_eq!(media("/api/v1/crashes", "400"), ["application/json"]);
    }

    #[test]
    fn query_bounds_match_the_parser() {
        let doc = document();
        let param = |path: &str, name: &str| -> Value {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} has no parameter {name}"))["schema"]
                .clone()
        };
        for path in ["/api/v1/crashes", "/api/v1/groups"] {
            let limit = param(path, "limit");
            assert_eq!(
                (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
                (Some(1), Some(MAX_LIMIT as u64))
            );
            assert_eq!(param(path, "since")["format"], "date-time");
        }
        // The cursor pattern accepts what the store issues.
        let cursor = crate::store::Cursor {
            exited_at: chrono::DateTime::from_timestamp(1_700_000_000, 5).unwrap(),
            id: "00ff".into(),
        };
        let pattern = param("/api/v1/crashes", "cursor")["pattern"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            pattern,
            "^-?(?:[0-9]{1,18}|[1-8][0-9]{18})\\.[0-9a-f]{1,64}$"
        );
        let (nanos, id) = cursor
            .encode()
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        // Up to 18 digits, or 19 below 9e18 (an i64 of nanoseconds, good until 2255).
        assert!(nanos.bytes().all(|b| b.is_ascii_digit()), "{nanos}");
        assert!(
            nanos.len() <= 18 || (nanos.len() == 19 && nanos.as_bytes()[0] <= b'8'),
            "{nanos}"
        );
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // The cause filter offers exactly the vocabulary.
        let components = &doc["components"]["schemas"];
        let cause = serde_json::to_string(&components["Cause"]).unwrap();
        for c in Cause::ALL {
            assert!(
                cause.contains(&format!("\"{}\"", c.as_str())),
                "{c} missing from {cause}"
            );
        }
    }

    #[test]
    fn every_error_code_is_documented() {
        use crate::http::ApiError;
        let errors = [
            ApiError::BadQuery(crate::store::QueryError {
                param: "limit".into(),
                reason: "x".into(),
            }),
            ApiError::NotFound("x".into()),
            ApiError::GroupNotFound("x".into()),
            ApiError::ArtifactNotFound {
                id: "x".into(),
                name: "y".into(),
            },
            ApiError::NoRoute("x".into()),
            ApiError::Internal("x".into()),
            ApiError::Unauthorized,
            ApiError::Overloaded("x"),
        ];
        let doc = document();
        let codes = serde_json::to_string(&doc["components"]["schemas"]["ErrorCode"]).unwrap();
        for e in &errors {
            // A new variant breaks this match: add it to `errors` above.
            match e {
                ApiError::BadQuery(_)
                | ApiError::NotFound(_)
                | ApiError::GroupNotFound(_)
                | ApiError::ArtifactNotFound { .. }
                | ApiError::NoRoute(_)
                | ApiError::Internal(_)
                | ApiError::Unauthorized
                | ApiError::Overloaded(_) => {}
            }
            assert!(
                codes.contains(&format!("\"{}\"", e.code())),
                "{} not in {codes}",
                e.code()
            );
        }
    }
}
