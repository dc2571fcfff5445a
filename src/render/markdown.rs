//! The Markdown postmortem section of a report.

use crate::model::CrashReport;

pub fn markdown(r: &CrashReport) -> String {
    format!("# {}\n", r.id)
}
