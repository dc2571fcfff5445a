//! The plain-text rendering of a report, for terminals.

use crate::model::CrashReport;

pub fn text(r: &CrashReport) -> String {
    format!("{}\n", r.id)
}
