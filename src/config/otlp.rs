//! The OTLP exporter's settings: the endpoint's URL, protocol and TLS, headers and the client key kept
//! secret.

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
    /// `None`: plain text (`http://`, `grpc://`, or a scheme-less gRPC endpoint with
    /// `--otlp-insecure`).
    pub tls: Option<OtlpTls>,
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Without a trailing `/`.
    pub report_base_url: Option<String>,
}

/// TLS to the collector, its files read and parsed at start-up.
#[derive(Debug, Clone)]
pub struct OtlpTls {
    /// The name the collector's certificate must carry: the endpoint's host.
    pub domain: String,
    /// PEM of `--otlp-certificate`; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// For mutual TLS: the client certificate chain's PEM and its key's PEM.
    pub client: Option<(Vec<u8>, Secret)>,
}

/// Where requests go, as [`otlp_url`] works it out.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OtlpTarget {
    pub(super) url: String,
    pub(super) protocol: OtlpProtocol,
    /// `Some(host)` when the connection uses TLS.
    pub(super) tls_domain: Option<String>,
}

/// The URL requests go to, the protocol and whether TLS is used, from `--otlp-endpoint`,
/// `--otlp-protocol` and `--otlp-insecure`, as the OTLP exporter conventions have them:
/// `https://` is TLS, `http://` is not, and a gRPC endpoint without a scheme is TLS unless
/// insecure. `grpc://` (coroner's own) is gRPC without TLS.
pub(super) fn otlp_url(
    endpoint: &str,
    protocol: Option<OtlpProtocol>,
    insecure: bool,
) -> Result<OtlpTarget, String> {
    let schemeless = !endpoint.contains("://");
    if insecure && !schemeless {
        return Err(format!(
            "--otlp-insecure is for a gRPC endpoint without a scheme (host:4317); {endpoint:?} says by its scheme whether it uses TLS"
        ));
    }
    let with_scheme;
    let endpoint = if schemeless {
        if protocol != Some(OtlpProtocol::Grpc) {
            return Err(format!(
                "{endpoint:?} has no scheme: http:// or https:// (host:port alone is for --otlp-protocol grpc)"
            ));
        }
        with_scheme = format!("{}://{endpoint}", if insecure { "http" } else { "https" });
        with_scheme.as_str()
    } else {
        endpoint
    };
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
        ("http" | "https", p) => p.unwrap_or(OtlpProtocol::HttpProtobuf),
        (other, _) => {
            return Err(format!(
                "scheme {other:?}: use http://, https:// or grpc://"
            ))
        }
    };
    let tls = u.scheme() == "https";
    let host = u.host_str().unwrap_or_default();
    let port = match u.port() {
        Some(p) => p,
        None if u.scheme() == "grpc" || schemeless => 4317,
        None if tls => 443,
        None => 80,
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let scheme = if tls { "https" } else { "http" };
    let url = match protocol {
        OtlpProtocol::Grpc => {
            if u.path() != "/" && !u.path().is_empty() {
                return Err("a gRPC endpoint has no path (the service path is fixed)".into());
            }
            format!("{scheme}://{authority}")
        }
        OtlpProtocol::HttpProtobuf => {
            let path = u.path().trim_end_matches('/');
            let path = if path.ends_with("/v1/logs") {
                path.to_string()
            } else {
                format!("{path}/v1/logs")
            };
            format!("{scheme}://{authority}{path}")
        }
    };
    Ok(OtlpTarget {
        url,
        protocol,
        tls_domain: tls.then(|| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }),
    })
}

/// Reads a PEM file for a TLS flag; its error names the file.
pub(super) fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        return Err(format!("{} holds no PEM block", path.display()));
    }
    Ok(bytes)
}
