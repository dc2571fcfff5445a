//! coroner: a node agent that records why containers die and serves the reports over HTTP.
//!
//! Data flows one way: containerd events ([`containerd`]) -> live container registry
//! ([`registry`]) -> collection at exit ([`collect`], [`cgroup`]) -> store ([`store`]) -> HTTP and
//! metrics ([`http`]). [`agent`] wires them together; [`config`] parses and validates the flags.

pub mod cgroup;
pub mod model;
