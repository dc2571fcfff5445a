//! The presentation layer: how a report is put into words, for every output that shows one to
//! people. Pure: a report in, a string (or a document) out.
//!
//! [`postmortem`] decides what is said, in a small document model ([`doc`]); [`markdown`] and
//! [`text`] only decide how it looks, so the two carry the same facts in the same order. The HTML
//! report page (`crate::http::pages`) keeps its own layout but takes its wording from [`words`]
//! and its section content (resources, process timeline) from [`postmortem`]'s builders, so a
//! browser, a terminal and an incident document say the same thing the same way. Figures come
//! from [`crate::units`].

pub mod doc;
mod markdown;
pub mod postmortem;
mod text;
pub mod words;

pub use markdown::markdown;
pub use text::text;

#[cfg(test)]
mod tests;
