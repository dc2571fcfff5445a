pub mod decode;
pub mod errno;
pub mod loader;
pub mod pin;
pub mod raw;
pub mod syscalls;
pub mod timeline;
mod wire;
