//! Everything that talks to containerd: the client ([`client`]), the CRI plugin's record of exited
//! containers ([`cri`]), pure decoding of its messages ([`decode`]) and the event subscription that survives containerd restarts ([`watch`]).

pub mod client;
pub mod cri;
pub mod decode;
pub mod image;
pub mod watch;

pub use client::{ClientError, Containerd, ImageError, LookupError};
pub use cri::CriExit;
pub use decode::{ContainerMeta, Decoded, Event, TaskState};
pub use image::ResolvedImage;
