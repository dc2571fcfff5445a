//! Exporters: outputs that send stored reports off the node. One today, OTLP logs to an
//! OpenTelemetry collector (`docs/export.md`).
//!
//! - [`otlp`]: a report as an OTLP log record (pure, tested with captured reports);
//! - [`cursor`]: which reports the collector acknowledged, persisted in the data dir;
//! - [`transport`]: one request over OTLP/HTTP (reqwest) or OTLP/gRPC (tonic);
//! - [`driver`]: the task that reads the store's index and its "report stored" feed, sends,
//!   retries and counts.
//!
//! Like every output it reads the store and never writes it; the agent starts it
//! (`crate::agent`).

pub mod cursor;
pub mod driver;
pub mod otlp;
pub mod transport;

pub use driver::Exporter;
