//! `completed`: exit 0. Failures the program met on the way were handled, so none is named.

use super::Rule;
use crate::diagnose::evidence::diagnosis;
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis};

pub(in crate::diagnose) struct Completed;

impl Rule for Completed {
    fn name(&self) -> &'static str {
        "completed"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        if !f.r.exit.is_success() {
            return None;
        }
        Some(diagnosis(
            Cause::Completed,
            Confidence::High,
            format!("Completed (exit 0){}", f.after()),
            vec![f.exit_evidence()],
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::Cause;

    #[test]
    fn clean_exit_is_completed() {
        let d = check(&fixture("completed"));
        assert_eq!(d.cause, Cause::Completed);
        assert_eq!(d.summary, "Completed (exit 0) after 2 ms");
        assert_eq!(d.key, None);
    }
}
