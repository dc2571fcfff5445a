//! The OTLP exporter's settings: the endpoint's URL and protocol, headers kept secret.

use std::time::Duration;

use clap::ValueEnum;

/// How reports reach the collector (`--otlp-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with a protobuf body, `POST <endpoint>/v1/logs`.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC, `opentelemetry.proto.collector.logs.v1.LogsService/Export`.
    #[value(name = "grpc")]
    Grpc,
}

/// A value that must not be shown: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `--otlp-header KEY=VALUE` as given; checked by [`AgentArgs::validate`], which never shows
/// the value.
#[derive(Clone)]
pub struct HeaderArg(Secret);

impl HeaderArg {
    /// (name, value), when there is a `=`.
    pub(super) fn split(&self) -> Option<(&str, &str)> {
        self.0.expose().split_once('=')
    }
}

impl std::fmt::Debug for HeaderArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split() {
            Some((name, _)) => write!(f, "{name}=<redacted>"),
            None => f.write_str("<redacted>"),
        }
    }
}

/// Never fails: a malformed header is reported by `validate` without its value (clap would
/// print the whole argument).
pub(super) fn parse_header_arg(s: &str) -> Result<HeaderArg, String> {
    Ok(HeaderArg(Secret(s.to_string())))
}

/// The OTLP export as configured and checked.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// Where requests go: the full `.../v1/logs` URL for http/protobuf; `http://host:port` for
    /// gRPC.
    pub url: String,
    pub protocol: OtlpProtocol,
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Without a trailing `/`.
    pub report_base_url: Option<String>,
}

/// The URL requests go to, and the protocol, from `--otlp-endpoint` and `--otlp-protocol`.
pub(super) fn otlp_url(
    endpoint: &str,
    protocol: Option<OtlpProtocol>,
) -> Result<(String, OtlpProtocol), String> {
    let u = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("{endpoint:?} is not a URL like http://otel-collector:4318 ({e})"))?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} names no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL would be logged; use --otlp-header".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let protocol = match (u.scheme(), protocol) {
        ("grpc", None | Some(OtlpProtocol::Grpc)) => OtlpProtocol::Grpc,
        ("grpc", Some(OtlpProtocol::HttpProtobuf)) => {
            return Err("a grpc:// URL with --otlp-protocol http/protobuf".into())
        }
        ("http", p) => p.unwrap_or(OtlpProtocol::HttpProtobuf),
        ("https", _) => {
            return Err(
                "https is not supported (this build has no TLS): send to a collector on the node or in the cluster over http://, and let it forward with TLS"
                    .into(),
            )
        }
        (other, _) => return Err(format!("scheme {other:?}: use http:// or grpc://")),
    };
    let host = u.host_str().unwrap_or_default();
    let port = u
        .port()
        .unwrap_or(if u.scheme() == "grpc" { 4317 } else { 80 });
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match protocol {
        OtlpProtocol::Grpc => {
            if u.path() != "/" && !u.path().is_empty() {
                return Err("a gRPC endpoint has no path (the service path is fixed)".into());
            }
            Ok((format!("http://{authority}"), protocol))
        }
        OtlpProtocol::HttpProtobuf => {
            let path = u.path().trim_end_matches('/');
            let path = if path.ends_with("/v1/logs") {
                path.to_string()
            } else {
                format!("{path}/v1/logs")
            };
            Ok((format!("http://{authority}{path}"), protocol))
        }
    }
}
