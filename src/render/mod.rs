//! Human renderings of a report: a Markdown postmortem section and plain text for terminals.
//! Pure: a report in, a string out.
//!
//! [`postmortem`] decides what is said, in a small document model ([`doc`]); [`markdown`] and
//! [`text`] only decide how it looks, so the two carry the same facts in the same order.

mod common;
mod doc;
mod markdown;
mod postmortem;
mod text;

pub use markdown::markdown;
pub use text::text;

#[cfg(test)]
mod tests;
