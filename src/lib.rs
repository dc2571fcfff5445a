//! coroner: a node agent that records why containers die and serves the reports over HTTP.
//!
//! Data flows one way, and each stage has one home (`docs/ARCHITECTURE.md` draws it):
//!
//! - sources gather inputs, and all I/O lives there: [`containerd`] (events and look-ups),
//!   [`cgroup`] (limits and usage), [`recorder`] over [`bpf`] (the flight recorder), [`rootfs`]
//!   (the entrypoint as the container's filesystem has it);
//! - [`report`] builds the finished report from those inputs in one pure function, with
//!   [`diagnose`] (the probable cause) and [`groups`] (crash loops) beside it;
//! - [`store`] persists reports atomically and announces each one stored;
//! - outputs read the store or subscribe to it: [`http`] (API, pages, live feed), [`render`]
//!   (Markdown, text, HTML wording), [`metrics`], [`export`] (OTLP to a collector), [`client`]
//!   (the CLI).
//!
//! [`agent`] wires the stages; [`model`] is the report's types, [`config`] the flags, [`health`]
//! the agent's own state, [`units`] and [`redact`] pure helpers every stage may use.

pub mod agent;
pub mod artifacts;
pub mod bpf;
pub mod cgroup;
pub mod client;
pub mod config;
pub mod containerd;
pub mod diagnose;
pub mod export;
pub mod groups;
pub mod health;
pub mod http;
pub mod metrics;
pub mod model;
pub mod recorder;
pub mod redact;
pub mod render;
pub mod report;
pub mod rootfs;
pub mod stacks;
pub mod store;
pub mod units;
