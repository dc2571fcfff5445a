//! `address_in_use`: `bind` failed with EADDRINUSE: another process holds the address.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, main_arg};
use crate::diagnose::facts::Facts;
use crate::model::{Cause, Confidence, Diagnosis};

pub(in crate::diagnose) struct AddressInUse;

impl Rule for AddressInUse {
    fn name(&self) -> &'static str {
        "address_in_use"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let (field, e) =
            f.find_failure(|e| e.syscall == "bind" && e.errno.as_deref() == Some("EADDRINUSE"))?;
        let addr = main_arg(e);
        let evidence = f.failure_evidence(&field, e);
        Some(diagnosis(
            Cause::AddressInUse,
            Confidence::High,
            format!(
                "{}: bind({addr}) = EADDRINUSE: another process holds the address",
                f.exited()
            ),
            evidence,
            Some(format!("bind {addr} EADDRINUSE")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture};
    use crate::model::Cause;

    #[test]
    fn bind_to_a_held_port_is_address_in_use() {
        // The program's own words are taken out, so this rule answers as it does for a program
        // that says nothing (busybox httpd says `httpd: bind: Address already in use`).
        let mut r = fixture("address_in_use");
        r.recorder.as_mut().unwrap().output = None;
        let d = check(&r);
        assert_eq!(d.cause, Cause::AddressInUse);
        assert_eq!(
            d.summary,
            "Exited 1 after 496 ms: bind(127.0.0.1:22321) = EADDRINUSE: another process holds the address"
        );
        assert_eq!(d.key.as_deref(), Some("bind 127.0.0.1:22321 EADDRINUSE"));
    }

    #[test]
    fn a_program_that_says_the_address_is_taken_leads_with_its_words_and_the_bind() {
        let d = check(&fixture("address_in_use"));
        assert_eq!(d.cause, Cause::AddressInUse);
        assert_eq!(
            d.summary,
            "httpd: bind: Address already in use (bind(127.0.0.1:22321) = EADDRINUSE, another \
             process holds the address); exited 1 after 496 ms"
        );
        assert_eq!(d.key.as_deref(), Some("bind 127.0.0.1:22321 EADDRINUSE"));
        assert!(
            d.advice
                .as_deref()
                .unwrap()
                .contains("holds 127.0.0.1:22321"),
            "{d:?}"
        );
    }
}
