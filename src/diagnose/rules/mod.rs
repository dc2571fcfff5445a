//! What a diagnosis rule is, and the rules, one per file. Their order is not kept here but in
//! `RULES` in `diagnose/mod.rs`, the one place that says which rule wins.

mod address_in_use;
mod completed;
pub(super) mod exec_failed;
mod exited_error;
mod lock_held;
mod oom;
mod pids_limit;
pub(super) mod runtime_statement;
mod signal;
mod start_failed;

pub(super) use address_in_use::AddressInUse;
pub(super) use completed::Completed;
pub(super) use exec_failed::ExecFailed;
pub(super) use exited_error::ExitedError;
pub(super) use lock_held::LockHeld;
pub(super) use oom::Oom;
pub(super) use pids_limit::PidsLimit;
pub(super) use runtime_statement::{RuntimeAbort, RuntimeStatement};
pub(super) use signal::Signal;
pub(super) use start_failed::StartFailed;

use super::facts::Facts;
use crate::model::Diagnosis;

/// One cause, or one family of causes, recognised in the facts of a report.
pub(super) trait Rule {
    /// The rule's name, as in the documented order: its file's name.
    // Only the test of the order reads it so far; a report does not say which rule answered.
    #[cfg_attr(not(test), allow(dead_code))]
    fn name(&self) -> &'static str;

    /// The diagnosis when the rule applies, else `None` so that the next rule is asked. A rule
    /// relies on the rules before it having declined (e.g. `completed` sees no signal death).
    fn diagnose(&self, f: &Facts) -> Option<Diagnosis>;
}
