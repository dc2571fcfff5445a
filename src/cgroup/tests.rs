//! Readers against trees captured from real kernels (`tests/fixtures/cgroup`, see its README):
//! v1 from the kernel 6.18 hybrid host, v2 from Debian's 6.1 kernel booted with cgroup2 only.

use std::path::{Path, PathBuf};

use super::*;

const V1_PATH: &str = "/coroner-fixture";
const V2_SPEC_PATH: &str = "kubepods-burstable-pod7c0b1d2e_5f6a_4b7c_8d9e_0f1a2b3c4d5e.slice:\
                            cri-containerd:3f9ac2d41e7b4c65a8d0f1e2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6";
const V2_UNLIMITED_SPEC_PATH: &str = "/k8s.io/coroner-unlimited";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(rel)
}

fn v2_path() -> String {
    CgroupFs::resolve_spec_path(V2_SPEC_PATH).unwrap()
}

/// Copies a fixture tree into a temporary directory so a test can break it.
fn scratch_copy(rel: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixture(rel), dir.path());
    dir
}

// ---- v1, kernel 6.18 ----

#[test]
fn v1_limits_are_what_was_written() {
    let fs = CgroupFs::v1_at(&fixture("v1/limited"));
    assert_eq!(fs.version(), Some(CgroupVersion::V1));
    let limits = fs.read_limits_detailed(V1_PATH).unwrap();
    assert!(limits.problems.is_empty(), "{:?}", limits.problems);
    assert_eq!(
        limits.value,
        CgroupLimits {
            memory_limit_bytes: Some(20 << 20),
            memory_swap_limit_bytes: Some(20 << 20),
            cpu_quota_us: Some(50_000),
            cpu_period_us: Some(100_000),
            cpu_shares: Some(512),
            cpu_weight: None,
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            pids_max: Some(64),
        }
    );
}

#[test]
fn v1_unlimited_memory_quota_and_pids_are_none() {
    let fs = CgroupFs::v1_at(&fixture("v1/unlimited"));
    let limits = fs.read_limits(V1_PATH).unwrap();
    // The files say 9223372036854771712, -1 and max.
    assert_eq!(limits.memory_limit_bytes, None);
    assert_eq!(limits.memory_swap_limit_bytes, None);
    assert_eq!(limits.cpu_quota_us, None);
    assert_eq!(limits.pids_max, None);
    // Not limits, but still figures.
    assert_eq!(limits.cpu_period_us, Some(100_000));
    assert_eq!(limits.cpu_shares, Some(1024));
    assert_eq!(limits.cpuset_cpus.as_deref(), Some("0-1"));
}

#[test]
fn v1_oom_kill_reports_peak_at_limit() {
    let fs = CgroupFs::v1_at(&fixture("v1/limited"));
    let usage = fs.read_usage_detailed(V1_PATH).unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    let usage = usage.value;
    assert_eq!(usage.oom_kill_count, Some(1));
    assert_eq!(usage.memory_peak_bytes, Some(20 << 20));
    assert_eq!(usage.memory_current_bytes, Some(241_664));
    // v1 has no count of OOM invocations, only of kills.
    assert_eq!(usage.oom_count, None);
}

#[test]
fn v1_failcnt_stays_zero_through_oom_kill_when_memsw_equals_limit() {
    // Seen on 6.18: with memory.memsw.limit_in_bytes == memory.limit_in_bytes (what runc sets for
    // a Kubernetes pod without swap) neither failcnt moves, though the OOM killer ran. Diagnosis
    // must not read "failcnt 0" as "never hit the limit".
    let usage = CgroupFs::v1_at(&fixture("v1/limited"))
        .read_usage(V1_PATH)
        .unwrap();
    assert_eq!(usage.memory_failcnt, Some(0));
    assert_eq!(usage.oom_kill_count, Some(1));
}

#[test]
fn v1_cpu_times_are_converted_from_ns_to_usec() {
    let usage = CgroupFs::v1_at(&fixture("v1/limited"))
        .read_usage(V1_PATH)
        .unwrap();
    // cpuacct.usage 4119466332 ns, cpu.stat throttled_time 4089854415 ns.
    assert_eq!(usage.cpu_usage_usec, Some(4_119_466));
    assert_eq!(usage.cpu_throttled_usec, Some(4_089_854));
    assert_eq!(usage.cpu_nr_periods, Some(84));
    assert_eq!(usage.cpu_nr_throttled, Some(82));
}

#[test]
fn v1_fork_refused_by_pids_max_is_counted() {
    let usage = CgroupFs::v1_at(&fixture("v1/limited"))
        .read_usage(V1_PATH)
        .unwrap();
    assert_eq!(usage.pids_max_events, Some(1));
    assert_eq!(usage.pids_peak, Some(64));
    assert_eq!(usage.pids_current, Some(0));
}

#[test]
fn v1_co_mounted_cpu_and_cpuacct_read_from_one_directory() {
    // Lay the fixture out as a `cpu,cpuacct` host: one directory with both controllers' files.
    let tmp = scratch_copy("v1/limited");
    let both = tmp.path().join("cpu,cpuacct");
    std::fs::rename(tmp.path().join("cpu"), &both).unwrap();
    for f in ["cpuacct.usage", "cpuacct.stat"] {
        std::fs::copy(
            tmp.path().join("cpuacct/coroner-fixture").join(f),
            both.join("coroner-fixture").join(f),
        )
        .unwrap();
    }
    std::fs::remove_dir_all(tmp.path().join("cpuacct")).unwrap();
    let root = tmp.path().display();
    let mountinfo = format!(
        "1 0 0:1 / {root}/memory rw - cgroup cgroup rw,memory\n\
         2 0 0:2 / {root}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    );
    let fs = CgroupFs::from_mountinfo(&mountinfo);
    let usage = fs.read_usage_detailed(V1_PATH).unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    assert_eq!(usage.value.cpu_usage_usec, Some(4_119_466));
    assert_eq!(usage.value.cpu_nr_throttled, Some(82));
}

#[test]
fn v1_missing_memory_dir_is_gone_even_if_other_controllers_remain() {
    let tmp = scratch_copy("v1/limited");
    std::fs::remove_dir_all(tmp.path().join("memory/coroner-fixture")).unwrap();
    let err = CgroupFs::v1_at(tmp.path()).read_usage(V1_PATH).unwrap_err();
    assert!(err.is_gone(), "{err}");
    assert_eq!(err.label(), "cgroup_gone");
}

#[test]
fn v1_missing_other_controller_dir_leaves_only_its_figures_empty() {
    let tmp = scratch_copy("v1/limited");
    std::fs::remove_dir_all(tmp.path().join("pids/coroner-fixture")).unwrap();
    let usage = CgroupFs::v1_at(tmp.path())
        .read_usage_detailed(V1_PATH)
        .unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    assert_eq!(usage.value.pids_current, None);
    assert_eq!(usage.value.oom_kill_count, Some(1));
}

// ---- v2, kernel 6.1 ----

#[test]
fn v2_systemd_spec_path_finds_the_scope_directory() {
    let fs = CgroupFs::v2_at(&fixture("v2/limited"));
    assert_eq!(fs.version(), Some(CgroupVersion::V2));
    assert!(fs.read_usage(&v2_path()).is_ok());
}

#[test]
fn v2_limits_are_what_was_written() {
    let fs = CgroupFs::v2_at(&fixture("v2/limited"));
    let limits = fs.read_limits_detailed(&v2_path()).unwrap();
    assert!(limits.problems.is_empty(), "{:?}", limits.problems);
    assert_eq!(
        limits.value,
        CgroupLimits {
            memory_limit_bytes: Some(20 << 20),
            // memory.swap.max is 0: no swap on top of the memory limit.
            memory_swap_limit_bytes: Some(20 << 20),
            cpu_quota_us: Some(50_000),
            cpu_period_us: Some(100_000),
            cpu_shares: None,
            cpu_weight: Some(20),
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            pids_max: Some(64),
        }
    );
}

#[test]
fn v2_oom_kill_reports_peak_at_limit() {
    let fs = CgroupFs::v2_at(&fixture("v2/limited"));
    let usage = fs.read_usage_detailed(&v2_path()).unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    let usage = usage.value;
    assert_eq!(usage.memory_peak_bytes, Some(20 << 20));
    assert_eq!(usage.memory_current_bytes, Some(4096));
    assert_eq!(usage.oom_count, Some(1));
    // memory.events `max`: the limit was hit 21 times before the OOM killer ran.
    assert_eq!(usage.memory_failcnt, Some(21));
}

#[test]
fn v2_group_oom_kill_counts_every_killed_process() {
    // memory.oom.group=1 (kubelet sets it on cgroup v2): one OOM, four processes killed.
    let usage = CgroupFs::v2_at(&fixture("v2/limited"))
        .read_usage(&v2_path())
        .unwrap();
    assert_eq!(usage.oom_count, Some(1));
    assert_eq!(usage.oom_kill_count, Some(4));
}

#[test]
fn v2_throttling_and_pids_figures_are_read() {
    let usage = CgroupFs::v2_at(&fixture("v2/limited"))
        .read_usage(&v2_path())
        .unwrap();
    assert_eq!(usage.cpu_usage_usec, Some(8_656_006));
    assert_eq!(usage.cpu_nr_periods, Some(176));
    assert_eq!(usage.cpu_nr_throttled, Some(171));
    assert_eq!(usage.cpu_throttled_usec, Some(8_407_424));
    assert_eq!(usage.pids_peak, Some(64));
    assert_eq!(usage.pids_max_events, Some(1));
    assert_eq!(usage.pids_current, Some(0));
}

#[test]
fn v2_unlimited_max_values_are_none_and_cpuset_is_inherited() {
    let fs = CgroupFs::v2_at(&fixture("v2/unlimited"));
    let limits = fs.read_limits_detailed(V2_UNLIMITED_SPEC_PATH).unwrap();
    assert!(limits.problems.is_empty(), "{:?}", limits.problems);
    assert_eq!(
        limits.value,
        CgroupLimits {
            memory_limit_bytes: None,
            memory_swap_limit_bytes: None,
            cpu_quota_us: None,
            cpu_period_us: Some(100_000),
            cpu_shares: None,
            cpu_weight: Some(100),
            // Empty in the kernel's file: inherited from the parent (effective was 0-1).
            cpuset_cpus: Some(String::new()),
            cpuset_mems: Some(String::new()),
            pids_max: None,
        }
    );
    let usage = fs.read_usage(V2_UNLIMITED_SPEC_PATH).unwrap();
    assert_eq!(usage.oom_kill_count, Some(0));
    assert_eq!(usage.memory_peak_bytes, Some(12_857_344));
}

#[test]
fn v2_missing_memory_peak_on_old_kernel_is_none_not_error() {
    // Kernels before 5.19 have no memory.peak; before 6.1 no pids.peak.
    let tmp = scratch_copy("v2/limited");
    let fs = CgroupFs::v2_at(tmp.path());
    let dir = tmp.path().join(v2_path().trim_start_matches('/'));
    std::fs::remove_file(dir.join("memory.peak")).unwrap();
    std::fs::remove_file(dir.join("pids.peak")).unwrap();
    let usage = fs.read_usage_detailed(&v2_path()).unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    assert_eq!(usage.value.memory_peak_bytes, None);
    assert_eq!(usage.value.pids_peak, None);
    assert_eq!(usage.value.oom_kill_count, Some(4));
}

#[test]
fn unparsable_file_is_a_problem_and_other_figures_survive() {
    let tmp = scratch_copy("v2/limited");
    let fs = CgroupFs::v2_at(tmp.path());
    let dir = tmp.path().join(v2_path().trim_start_matches('/'));
    std::fs::write(dir.join("memory.max"), "twenty megs\n").unwrap();
    std::fs::write(dir.join("cpu.max"), "\n").unwrap();
    let limits = fs.read_limits_detailed(&v2_path()).unwrap();
    assert_eq!(limits.value.memory_limit_bytes, None);
    assert_eq!(limits.value.cpu_quota_us, None);
    assert_eq!(limits.value.pids_max, Some(64));
    let labels: Vec<_> = limits.problems.iter().map(Error::label).collect();
    assert_eq!(labels, ["cgroup_parse", "cgroup_parse"]);
    let message = limits.problems[0].to_string();
    assert!(
        message.contains("memory.max"),
        "error names its file: {message}"
    );
    // The plain API still answers.
    assert_eq!(fs.read_limits(&v2_path()).unwrap().pids_max, Some(64));
}

#[test]
fn oversized_file_is_a_problem_not_a_truncated_figure() {
    let tmp = scratch_copy("v2/limited");
    let dir = tmp.path().join(v2_path().trim_start_matches('/'));
    std::fs::write(dir.join("pids.max"), "6".repeat(10_000)).unwrap();
    let limits = CgroupFs::v2_at(tmp.path())
        .read_limits_detailed(&v2_path())
        .unwrap();
    assert_eq!(limits.value.pids_max, None);
    assert!(matches!(
        limits.problems.as_slice(),
        [Error::Parse {
            source: ParseError::TooLarge { .. },
            ..
        }]
    ));
}

#[test]
fn missing_cgroup_is_gone_not_parse_error() {
    let v2 = CgroupFs::v2_at(&fixture("v2/limited"));
    let v1 = CgroupFs::v1_at(&fixture("v1/limited"));
    for err in [
        v2.read_usage("/k8s.io/deleted").unwrap_err(),
        v2.read_limits("/k8s.io/deleted").unwrap_err(),
        v1.read_usage("/k8s.io/deleted").unwrap_err(),
        v1.read_limits("/k8s.io/deleted").unwrap_err(),
    ] {
        assert!(matches!(err, Error::Gone { .. }), "{err}");
        assert!(err.to_string().contains("/k8s.io/deleted"), "{err}");
    }
}

#[test]
fn nothing_mounted_is_not_mounted_error() {
    let fs = CgroupFs::from_mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n");
    assert_eq!(fs.version(), None);
    assert_eq!(
        fs.read_usage("/x").unwrap_err().label(),
        "cgroup_not_mounted"
    );
    assert_eq!(fs.unified_cgroup_id("/x"), None);
}

#[test]
fn relative_or_dotdot_path_is_rejected_before_any_read() {
    let fs = CgroupFs::v2_at(&fixture("v2/limited"));
    for bad in ["k8s.io/abc", "/k8s.io/../../../../etc"] {
        let err = fs.read_usage(bad).unwrap_err();
        assert_eq!(err.label(), "cgroup_invalid_path", "{bad}: {err}");
    }
}

#[test]
fn unified_cgroup_id_is_the_directory_inode() {
    let fs = CgroupFs::v2_at(&fixture("v2/limited"));
    let dir = fixture("v2/limited").join(v2_path().trim_start_matches('/'));
    let inode = std::fs::metadata(dir).unwrap().ino();
    assert_eq!(fs.unified_cgroup_id(&v2_path()), Some(inode));
    assert_eq!(fs.unified_cgroup_id("/k8s.io/deleted"), None);
    // v1-only layout: no unified hierarchy, no id.
    assert_eq!(
        CgroupFs::v1_at(&fixture("v1/limited")).unified_cgroup_id(V1_PATH),
        None
    );
}

#[test]
fn hybrid_host_is_v1_but_keeps_its_unified_mount() {
    let text = std::fs::read_to_string(fixture("mountinfo-hybrid.txt")).unwrap();
    let fs = CgroupFs::from_mountinfo(&text);
    assert_eq!(fs.version(), Some(CgroupVersion::V1));
    assert_eq!(
        fs.unified_mount(),
        Some(Path::new("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        fs.v1_mount("cpuacct"),
        Some(Path::new("/sys/fs/cgroup/cpuacct"))
    );
}

#[test]
fn v2_only_host_is_v2() {
    let text = std::fs::read_to_string(fixture("mountinfo-v2.txt")).unwrap();
    let fs = CgroupFs::from_mountinfo(&text);
    assert_eq!(fs.version(), Some(CgroupVersion::V2));
    assert_eq!(fs.unified_mount(), Some(Path::new("/sys/fs/cgroup")));
}

#[test]
fn detect_at_missing_proc_names_the_file() {
    let err = CgroupFs::detect_at(Path::new("/nonexistent-proc")).unwrap_err();
    assert_eq!(err.label(), "cgroup_mountinfo");
    assert!(
        err.to_string().contains("/nonexistent-proc/self/mountinfo"),
        "{err}"
    );
}

#[test]
fn error_labels_are_stable() {
    let p = PathBuf::from("/x");
    let io = || io::Error::from(io::ErrorKind::PermissionDenied);
    let labels = [
        Error::Mountinfo {
            path: p.clone(),
            source: io(),
        }
        .label(),
        Error::NotMounted.label(),
        Error::InvalidPath {
            path: "x".into(),
            reason: "r",
        }
        .label(),
        Error::Gone { path: p.clone() }.label(),
        Error::Read {
            path: p.clone(),
            source: io(),
        }
        .label(),
        Error::Parse {
            path: p,
            source: ParseError::NotUtf8,
        }
        .label(),
    ];
    assert_eq!(
        labels,
        [
            "cgroup_mountinfo",
            "cgroup_not_mounted",
            "cgroup_invalid_path",
            "cgroup_gone",
            "cgroup_read",
            "cgroup_parse"
        ]
    );
}

#[test]
fn live_root_cgroup_reads_through_kernfs_without_problems() {
    // The fixtures are plain files; this reads the machine's real cgroup files (the root cgroup
    // always exists), so the openat/read path meets kernfs too.
    let fs = CgroupFs::detect().unwrap();
    assert!(
        fs.version().is_some(),
        "no cgroup hierarchy mounted on this machine"
    );
    let usage = fs.read_usage_detailed("/").unwrap();
    assert!(usage.problems.is_empty(), "{:?}", usage.problems);
    let limits = fs.read_limits_detailed("/").unwrap();
    assert!(limits.problems.is_empty(), "{:?}", limits.problems);
    assert_eq!(
        fs.read_usage("/coroner-no-such-cgroup")
            .unwrap_err()
            .label(),
        "cgroup_gone"
    );
}

// ---- history samples ----

#[test]
fn a_sample_has_the_figures_of_the_full_usage_read() {
    for (fs, path) in [
        (CgroupFs::v1_at(&fixture("v1/limited")), V1_PATH.to_string()),
        (CgroupFs::v2_at(&fixture("v2/limited")), v2_path()),
    ] {
        let usage = fs.read_usage(&path).unwrap();
        let sample = fs.sample(&path).unwrap();
        assert!(sample.memory_bytes.is_some(), "{sample:?}");
        assert_eq!(sample.memory_bytes, usage.memory_current_bytes);
        assert_eq!(sample.cpu_usec, usage.cpu_usage_usec);
        assert_eq!(sample.pids, usage.pids_current);
    }
}

#[test]
fn a_sample_of_a_deleted_cgroup_says_gone() {
    let fs = CgroupFs::v1_at(&fixture("v1/limited"));
    assert!(fs.sample("/coroner-no-such-cgroup").unwrap_err().is_gone());
}
