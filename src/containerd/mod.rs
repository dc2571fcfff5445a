//! Everything that talks to containerd: the client ([`client`]), pure decoding of its messages
//! ([`decode`]) and the event subscription that survives containerd restarts ([`watch`]).

pub mod client;
pub mod decode;
pub mod watch;

pub use client::{ClientError, Containerd, LookupError};
pub use decode::{ContainerMeta, Decoded, Event, TaskState};
