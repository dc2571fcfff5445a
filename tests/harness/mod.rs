//! Test harness for coroner's integration tests and benches: a private containerd per test
//! ([`Containerd`]), registry-free busybox images ([`images`]), kubelet-like CRI calls ([`Cri`]),
//! plain containerd containers ([`PlainContainer`]), the agent binary under test ([`Agent`]) and
//! Kubernetes manifests run through CRI the way kubelet would ([`kube`]), and a real
//! OpenTelemetry collector for the export ([`Collector`]) with certificates and a TLS front for it
//! ([`tls`]).
//!
//! Included with `mod harness;` from `tests/*.rs` and with
//! `#[path = "../tests/harness/mod.rs"] mod harness;` from benches, so it holds no tests itself.
//! Helpers panic with a message naming what failed: a harness failure is a test failure, never a
//! skip. Needs root and the packages `scripts/install-deps.sh` installs. See README.md.

pub mod agent;
pub mod bench_images;
pub mod collector;
pub mod containerd;
pub mod crash_images;
pub mod cri;
pub mod erlang_image;
pub mod exec_images;
pub mod host;
pub mod images;
pub mod kube;
pub mod plain;
pub mod runtimes_image;
pub mod scenarios;
pub mod stale_images;
pub mod stories;
pub mod tls;

#[allow(unused_imports)] // re-exports: each test binary uses a subset
pub use agent::{metric_value, Agent, AgentBuilder};
#[allow(unused_imports)]
pub use collector::Collector;
#[allow(unused_imports)]
pub use containerd::{Containerd, K8S_NAMESPACE, PLAIN_NAMESPACE};
#[allow(unused_imports)]
pub use cri::{ContainerBuilder, Cri, Pod, PodBuilder};
#[allow(unused_imports)]
pub use host::Footprint;
#[allow(unused_imports)]
pub use images::{TestImage, TestImages, BUSYBOX_IMAGE, PAUSE_IMAGE};
#[allow(unused_imports)]
pub use kube::{KubeContainer, Kubelet};
#[allow(unused_imports)]
pub use plain::{PlainBuilder, PlainContainer};
