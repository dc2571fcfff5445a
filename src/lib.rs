//! coroner: a node agent that records why containers die and serves the reports over HTTP.
//!
//! Data flows one way: containerd events ([`containerd`]) -> live container registry
//! ([`registry`]) -> collection at exit ([`collect`], [`cgroup`]) -> store ([`store`]) -> HTTP and
//! metrics ([`http`], [`metrics`]). [`agent`] wires them together; [`config`] parses and validates
//! the flags.

pub mod agent;
pub mod bpf;
pub mod cgroup;
pub mod client;
pub mod collect;
pub mod config;
pub mod containerd;
pub mod diagnose;
pub mod groups;
pub mod http;
pub mod metrics;
pub mod model;
pub mod recorder;
pub mod redact;
pub mod registry;
pub mod render;
pub mod store;
pub mod units;
