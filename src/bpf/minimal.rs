//! The floor any syscall tracer pays (`minimal.bpf.c`), loaded beside coroner's recorder by
//! the overhead benchmark to compare against.

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle};

use super::load_error::{
    classify_load_error, handle, map_err, with_libbpf_log, RecorderError, KERNEL_BTF,
};
use super::wire::minimal_skel;

/// The floor any syscall tracer pays: a per-CPU counter bumped at every syscall exit
/// (`minimal.bpf.c`), for the overhead benchmark. Detached when dropped.
pub struct MinimalCounter {
    calls: MapHandle,
    _link: Link,
}

impl MinimalCounter {
    pub fn attach() -> Result<MinimalCounter, RecorderError> {
        if !Path::new(KERNEL_BTF).exists() {
            return Err(RecorderError::NoBtf);
        }
        let mut storage = MaybeUninit::uninit();
        let open = minimal_skel::MinimalSkelBuilder::default()
            .open(&mut storage)
            .map_err(RecorderError::Open)?;
        let (loaded, log) = with_libbpf_log(|| open.load());
        let skel = loaded.map_err(|e| classify_load_error(e, &log))?;
        let link =
            skel.progs
                .minimal_sys_exit
                .attach()
                .map_err(|source| RecorderError::Attach {
                    program: "minimal_sys_exit",
                    source,
                })?;
        Ok(MinimalCounter {
            calls: handle(&skel.maps.calls, "calls")?,
            _link: link,
        })
    }

    /// Syscall exits counted on all CPUs so far.
    pub fn calls(&self) -> Result<u64, RecorderError> {
        let per_cpu = self
            .calls
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("reading", "calls"))?
            .unwrap_or_default();
        Ok(per_cpu
            .iter()
            .filter_map(|v| {
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_ne_bytes)
            })
            .sum())
    }
}
