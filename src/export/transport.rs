//! Sending one export request to the collector: OTLP/HTTP (protobuf body, `POST .../v1/logs`)
//! over reqwest, or OTLP/gRPC (`LogsService/Export`) over tonic, with TLS (rustls) when the
//! endpoint is `https://`. Header values and the client key are secrets: they go on the wire and
//! nowhere else (not in errors, not in logs).
//!
//! What an answer means follows the OTLP specification, with one difference: only an answer
//! saying the data itself is bad (HTTP 400 or 413, gRPC `INVALID_ARGUMENT`) drops the reports.
//! Everything else (unreachable, throttled, unavailable, unauthorized, not found) is retried,
//! because the reports are durable in the store and the usual fix is the collector's or the
//! configuration's, after which they should still arrive.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use crate::config::{OtlpProtocol, OtlpSettings, OtlpTls};

/// Longest collector answer kept in an error (it is logged).
const DETAIL_MAX: usize = 300;

/// The collector took the request; it may still have refused some records (OTLP's partial
/// success).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ack {
    pub rejected: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot reach the collector at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The TLS handshake failed: the collector's certificate is not trusted (a wrong
    /// `--otlp-certificate`), names another host, or the collector refused the client's.
    #[error("TLS with the collector at {endpoint} failed: {detail}")]
    Tls { endpoint: String, detail: String },
    #[error("the collector at {endpoint} did not answer within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    /// An answer that asks for a retry (or one the exporter retries: see the module docs).
    #[error("the collector at {endpoint} answered {status}: {detail}")]
    Failed {
        endpoint: String,
        status: String,
        label: &'static str,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The collector says the data is bad: retrying would not help.
    #[error("the collector at {endpoint} refused the reports ({status}): {detail}")]
    Refused {
        endpoint: String,
        status: String,
        detail: String,
    },
}

impl SendError {
    /// Stable label for `coroner_otlp_export_errors_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            SendError::Unreachable { .. } => "unreachable",
            SendError::Tls { .. } => "tls",
            SendError::Timeout { .. } => "timeout",
            SendError::Failed { label, .. } => label,
            SendError::Refused { .. } => "refused",
        }
    }

    pub const LABELS: [&'static str; 9] = [
        "unreachable",
        "tls",
        "timeout",
        "throttled",
        "unavailable",
        "unauthorized",
        "not_found",
        "refused",
        "other",
    ];

    pub fn is_retryable(&self) -> bool {
        !matches!(self, SendError::Refused { .. })
    }

    /// How long the collector asked the exporter to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Failed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why the settings cannot make a transport (checked by `config` before; kept for safety).
#[derive(Debug, thiserror::Error)]
#[error("OTLP setting {what}: {detail}")]
pub struct TransportError {
    what: &'static str,
    detail: String,
}

pub enum Transport {
    Http {
        client: reqwest::Client,
        url: String,
        headers: HeaderMap,
        timeout: Duration,
    },
    Grpc {
        client: LogsServiceClient<tonic::transport::Channel>,
        endpoint: String,
        metadata: MetadataMap,
        timeout: Duration,
    },
}

impl Transport {
    /// Builds the client; connects lazily, so a collector that is down is not an error here.
    pub fn new(s: &OtlpSettings) -> Result<Transport, TransportError> {
        let bad = |what, detail: String| TransportError { what, detail };
        match s.protocol {
            OtlpProtocol::HttpProtobuf => {
                let mut headers = HeaderMap::new();
                for (k, v) in &s.headers {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|e| bad("otlp-header", format!("{k:?}: {e}")))?;
                    let mut value = HeaderValue::from_str(v.expose())
                        .map_err(|_| bad("otlp-header", format!("{k:?}: invalid value")))?;
                    value.set_sensitive(true);
                    headers.append(name, value);
                }
                let mut builder = reqwest::Client::builder()
                    // The collector is reached directly, like the containerd socket.
                    .no_proxy();
                if let Some(tls) = &s.tls {
                    builder = builder.https_only(true);
                    if let Some(ca) = &tls.ca_pem {
                        let certs = reqwest::Certificate::from_pem_bundle(ca)
                            .map_err(|e| bad("otlp-certificate", e.to_string()))?;
                        // As the OTLP exporters do: the given CAs replace the system's roots.
                        builder = builder.tls_certs_only(certs);
                    }
                    if let Some((cert, key)) = &tls.client {
                        let pem = [cert.as_slice(), b"\n", key.expose().as_bytes()].concat();
                        let identity = reqwest::Identity::from_pem(&pem)
                            .map_err(|e| bad("otlp-client-certificate", e.to_string()))?;
                        builder = builder.identity(identity);
                    }
                } else {
                    // Plain http: no roots needed, and loading the system's fails on a node
                    // image without CA certificates (the agent would not start).
                    builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
                }
                let client = builder
                    .build()
                    .map_err(|e| bad("otlp-endpoint", e.to_string()))?;
                Ok(Transport::Http {
                    client,
                    url: s.url.clone(),
                    headers,
                    timeout: s.timeout,
                })
            }
            OtlpProtocol::Grpc => {
                let mut metadata = MetadataMap::new();
                for (k, v) in &s.headers {
                    let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| bad("otlp-header", format!("{k:?}: {e}")))?;
                    let value = AsciiMetadataValue::try_from(v.expose())
                        .map_err(|_| bad("otlp-header", format!("{k:?}: invalid value")))?;
                    metadata.append(key, value);
                }
                let mut endpoint = tonic::transport::Endpoint::from_shared(s.url.clone())
                    .map_err(|e| bad("otlp-endpoint", e.to_string()))?
                    .connect_timeout(s.timeout)
                    .timeout(s.timeout);
                if let Some(tls) = &s.tls {
                    endpoint = endpoint
                        .tls_config(grpc_tls(tls))
                        .map_err(|e| bad("otlp-endpoint", error_chain(&e)))?;
                }
                let channel = endpoint.connect_lazy();
                Ok(Transport::Grpc {
                    client: LogsServiceClient::new(channel),
                    endpoint: s.url.clone(),
                    metadata,
                    timeout: s.timeout,
                })
            }
        }
    }

    pub async fn send(&mut self, req: ExportLogsServiceRequest) -> Result<Ack, SendError> {
        match self {
            Transport::Http {
                client,
                url,
                headers,
                timeout,
            } => send_http(client, url, headers, *timeout, req).await,
            Transport::Grpc {
                client,
                endpoint,
                metadata,
                timeout,
            } => send_grpc(client, endpoint, metadata, *timeout, req).await,
        }
    }
}

/// tonic's TLS settings: the given CAs, or the system's roots; the client identity for mutual
/// TLS.
fn grpc_tls(tls: &OtlpTls) -> tonic::transport::ClientTlsConfig {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut config = ClientTlsConfig::new()
        .domain_name(tls.domain.clone())
        // gRPC is HTTP/2 whatever the handshake says: a TLS terminator that does no ALPN (a
        // load balancer, a sidecar) still carries it.
        .assume_http2(true);
    config = match &tls.ca_pem {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = &tls.client {
        config = config.identity(Identity::from_pem(cert, key.expose()));
    }
    config
}

async fn send_http(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    timeout: Duration,
    req: ExportLogsServiceRequest,
) -> Result<Ack, SendError> {
    let endpoint = url.to_string();
    let resp = client
        .post(url)
        .headers(headers.clone())
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(req.encode_to_vec())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                SendError::Timeout {
                    endpoint: endpoint.clone(),
                    timeout,
                }
            } else if is_tls_error(&e) {
                SendError::Tls {
                    endpoint: endpoint.clone(),
                    detail: error_chain(&e),
                }
            } else {
                SendError::Unreachable {
                    endpoint: endpoint.clone(),
                    detail: error_chain(&e),
                }
            }
        })?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp.bytes().await.map_err(|e| {
        if e.is_timeout() {
            SendError::Timeout {
                endpoint: endpoint.clone(),
                timeout,
            }
        } else {
            SendError::Unreachable {
                endpoint: endpoint.clone(),
                detail: error_chain(&e),
            }
        }
    })?;
    if status.is_success() {
        // An empty body is a full success; an undecodable one too (the status said so).
        let partial = ExportLogsServiceResponse::decode(body.as_ref())
            .ok()
            .and_then(|r| r.partial_success);
        return Ok(partial.map_or_else(Ack::default, |p| Ack {
            rejected: u64::try_from(p.rejected_log_records).unwrap_or(0),
            message: p.error_message,
        }));
    }
    let detail = detail(&String::from_utf8_lossy(&body));
    let label = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(SendError::Refused {
                endpoint,
                status: status.to_string(),
                detail,
            })
        }
        StatusCode::TOO_MANY_REQUESTS => "throttled",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "unauthorized",
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "not_found",
        s if s.is_server_error() => "unavailable",
        _ => "other",
    };
    Err(SendError::Failed {
        endpoint,
        status: status.to_string(),
        label,
        detail,
        retry_after,
    })
}

async fn send_grpc(
    client: &mut LogsServiceClient<tonic::transport::Channel>,
    endpoint: &str,
    metadata: &MetadataMap,
    timeout: Duration,
    req: ExportLogsServiceRequest,
) -> Result<Ack, SendError> {
    let mut request = tonic::Request::new(req);
    *request.metadata_mut() = metadata.clone();
    request.set_timeout(timeout);
    match client.export(request).await {
        Ok(resp) => Ok(resp
            .into_inner()
            .partial_success
            .map_or_else(Ack::default, |p| Ack {
                rejected: u64::try_from(p.rejected_log_records).unwrap_or(0),
                message: p.error_message,
            })),
        Err(status) => {
            use tonic::Code;
            let endpoint = endpoint.to_string();
            if is_tls_error(&status) {
                return Err(SendError::Tls {
                    endpoint,
                    detail: error_chain(&status),
                });
            }
            let detail = detail(status.message());
            let label = match status.code() {
                Code::InvalidArgument => {
                    return Err(SendError::Refused {
                        endpoint,
                        status: format!("{:?}", status.code()),
                        detail,
                    })
                }
                Code::DeadlineExceeded => return Err(SendError::Timeout { endpoint, timeout }),
                Code::ResourceExhausted => "throttled",
                Code::Unavailable | Code::Cancelled | Code::Aborted | Code::DataLoss => {
                    "unavailable"
                }
                Code::Unauthenticated | Code::PermissionDenied => "unauthorized",
                Code::Unimplemented | Code::NotFound => "not_found",
                _ => "other",
            };
            Err(SendError::Failed {
                endpoint,
                status: format!("{:?}", status.code()),
                label,
                detail,
                retry_after: None,
            })
        }
    }
}

/// Whether rustls failed somewhere in the error's causes. A handshake error arrives wrapped in
/// `io::Error`s, nested (hyper-rustls wraps tokio-rustls' `io::Error` in another), and an
/// `io::Error`'s `source()` skips the error it wraps: so each one's `get_ref()` is looked into.
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<rustls::Error>() {
            return true;
        }
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    false
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    detail(&out)
}

fn detail(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(DETAIL_MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_error_nested_in_io_errors_is_tls() {
        let rustls_error =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As hyper-rustls hands it over: tokio-rustls' io::Error inside another.
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls_error,
        ));
        assert!(is_tls_error(&nested));
        let refused =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_tls_error(&refused));
    }
}
