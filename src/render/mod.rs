//! Human renderings of a report: a Markdown postmortem section and plain text for terminals.
//! Pure: a report in, a string out.

mod markdown;
mod text;

pub use markdown::markdown;
pub use text::text;
