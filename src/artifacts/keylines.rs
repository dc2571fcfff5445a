//! The lines of a post-mortem file that say what happened (pure): an `erl_crash.dump`'s slogan,
//! system version and memory figures; an `hs_err_pid` log's signal, problematic frame, JRE
//! version and heap. Read from the start of the file (the kept part), never more than a few
//! lines each, each cut to [`MAX_LINE`] characters.

use crate::model::{ArtifactKind, KeyLine};

/// Characters kept of one quoted line.
const MAX_LINE: usize = 300;
/// Lines of a file read for key lines (the figures are near the top, or in short sections).
const MAX_SCAN_LINES: usize = 200_000;

/// The key lines of a file of `kind` whose (kept) text is `text`.
pub fn key_lines(kind: ArtifactKind, text: &str) -> Vec<KeyLine> {
    match kind {
        ArtifactKind::ErlangCrashDump => erlang(text),
        ArtifactKind::JvmErrorLog => hs_err(text),
        _ => Vec::new(),
    }
}

fn line(label: &str, text: &str) -> KeyLine {
    let text = text.trim();
    let text = match text.char_indices().nth(MAX_LINE) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    };
    KeyLine {
        label: label.to_string(),
        text,
    }
}

/// `erl_crash.dump`: `Slogan:` and `System version:` near the top; the `=memory` section's
/// `total`, `processes`, `system`, `binary` and `ets` (bytes).
fn erlang(text: &str) -> Vec<KeyLine> {
    let mut out = Vec::new();
    let mut section = "";
    for l in text.lines().take(MAX_SCAN_LINES) {
        if let Some(s) = l.strip_prefix('=') {
            if section == "memory" {
                break; // everything wanted is read
            }
            section = s.split(':').next().unwrap_or(s);
            continue;
        }
        if let Some(v) = l.strip_prefix("Slogan: ") {
            if !out.iter().any(|k: &KeyLine| k.label == "slogan") {
                out.push(line("slogan", v));
            }
        } else if let Some(v) = l.strip_prefix("System version: ") {
            if !out.iter().any(|k: &KeyLine| k.label == "system_version") {
                out.push(line("system_version", v));
            }
        } else if section == "memory" {
            if let Some((k, v)) = l.split_once(": ") {
                if matches!(k, "total" | "processes" | "system" | "binary" | "ets") {
                    let figure = match v.trim().parse::<u64>() {
                        Ok(b) => format!("{k}: {} ({b} bytes)", crate::units::bytes(b)),
                        Err(_) => format!("{k}: {}", v.trim()),
                    };
                    out.push(line(&format!("memory_{k}"), &figure));
                }
            }
        }
    }
    out
}

/// `hs_err_pid<pid>.log`: the `#  SIGSEGV (0xb) at pc=...` line (or the out-of-memory line, and
/// the `fatal error:` line that says what `-XX:+CrashOnOutOfMemoryError` met), the line after `# Problematic frame:`, the JRE version, and the first line of `Heap:`.
fn hs_err(text: &str) -> Vec<KeyLine> {
    let mut out = Vec::new();
    let mut lines = text.lines().take(MAX_SCAN_LINES).peekable();
    let seen = |out: &Vec<KeyLine>, label: &str| out.iter().any(|k| k.label == label);
    while let Some(l) = lines.next() {
        let body = l.trim_start_matches('#').trim();
        if !seen(&out, "signal") && body.starts_with("SIG") && body.contains(" at pc=") {
            out.push(line("signal", body));
        } else if !seen(&out, "error")
            && (body.starts_with("There is insufficient memory")
                || body.starts_with("Out of Memory Error")
                || body.starts_with("Internal Error"))
        {
            out.push(line("error", body));
        } else if !seen(&out, "fatal_error") && body.starts_with("fatal error:") {
            out.push(line(
                "fatal_error",
                body.trim_start_matches("fatal error:").trim(),
            ));
        } else if !seen(&out, "jre_version") && body.starts_with("JRE version:") {
            out.push(line("jre_version", body.trim_start_matches("JRE version:")));
        } else if body == "Problematic frame:" && !seen(&out, "problematic_frame") {
            if let Some(next) = lines.next() {
                out.push(line("problematic_frame", next.trim_start_matches('#')));
            }
        } else if l == "Heap:" && !seen(&out, "heap") {
            if let Some(next) = lines.peek() {
                out.push(line("heap", next));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "=erl_crash_dump:0.5\nThu Dec  4 21:40:01 2026\nSlogan: my slogan\nSystem version: Erlang/OTP 25 [erts-13.1.5] [source] [64-bit]\nTaints: \nAtoms: 8000\n=scheduler:1\nScheduler Sleep Info Flags: \n=memory\ntotal: 20971520\nprocesses: 4194304\nprocesses_used: 4000000\nsystem: 16777216\natom: 300000\nbinary: 1024\nets: 2048\n=hash_table:atom_tab\nsize: 8192\n";

    #[test]
    fn a_crash_dump_gives_its_slogan_version_and_memory() {
        let k = key_lines(ArtifactKind::ErlangCrashDump, DUMP);
        let get = |l: &str| k.iter().find(|k| k.label == l).map(|k| k.text.as_str());
        assert_eq!(get("slogan"), Some("my slogan"));
        assert_eq!(
            get("system_version"),
            Some("Erlang/OTP 25 [erts-13.1.5] [source] [64-bit]")
        );
        assert_eq!(
            get("memory_total"),
            Some("total: 20.0 MiB (20971520 bytes)")
        );
        assert!(get("memory_binary").is_some() && get("memory_ets").is_some());
        assert_eq!(get("memory_processes_used"), None);
    }

    #[test]
    fn an_hs_err_log_gives_signal_frame_version_and_heap() {
        let log = "#\n# A fatal error has been detected by the Java Runtime Environment:\n#\n#  SIGSEGV (0xb) at pc=0x00007f3c8d2b1a2e, pid=1, tid=8\n#\n# JRE version: OpenJDK Runtime Environment (17.0.13+11) (build 17.0.13+11-Debian-2deb12u1)\n# Problematic frame:\n# V  [libjvm.so+0xe1ea2e]  Unsafe_PutInt+0x5e\n#\n---------------  T H R E A D  ---------------\nHeap:\n garbage-first heap   total 16384K, used 1053K [0x00000000ff000000, 0x0000000100000000)\n  region size 1024K\n";
        let k = key_lines(ArtifactKind::JvmErrorLog, log);
        let get = |l: &str| k.iter().find(|k| k.label == l).map(|k| k.text.as_str());
        assert_eq!(
            get("signal"),
            Some("SIGSEGV (0xb) at pc=0x00007f3c8d2b1a2e, pid=1, tid=8")
        );
        assert_eq!(
            get("problematic_frame"),
            Some("V  [libjvm.so+0xe1ea2e]  Unsafe_PutInt+0x5e")
        );
        assert!(get("jre_version").is_some_and(|v| v.starts_with("OpenJDK")));
        assert!(get("heap").is_some_and(|h| h.contains("total 16384K, used 1053K")));
    }

    #[test]
    fn a_jvm_crashed_on_its_heap_says_so() {
        // Written by Debian's openjdk-17 running `java -Xmx32m -XX:+CrashOnOutOfMemoryError Heap`
        // (tests/fixtures/statements/programs/Heap.java); its first 110 lines.
        let log = include_str!("../../tests/fixtures/artifacts/hs_err_oom_jdk17.log");
        let lines = key_lines(ArtifactKind::JvmErrorLog, log);
        let get = |l: &str| lines.iter().find(|k| k.label == l).map(|k| k.text.as_str());
        assert_eq!(get("signal"), None);
        assert!(get("error").is_some_and(|e| e.starts_with("Internal Error (debug.cpp:362)")));
        assert_eq!(
            get("fatal_error"),
            Some("OutOfMemory encountered: Java heap space")
        );
        assert!(get("jre_version").is_some_and(|v| v.contains("17.0.19+10")));
        assert!(get("heap").is_some_and(|h| h.contains("total 32768K, used 28684K")));
        assert_eq!(get("problematic_frame"), None);
    }

    #[test]
    fn long_lines_are_cut_and_other_kinds_have_none() {
        let long = format!("Slogan: {}\n", "x".repeat(1000));
        let k = key_lines(ArtifactKind::ErlangCrashDump, &long);
        assert_eq!(k[0].text.chars().count(), MAX_LINE + 1);
        assert!(key_lines(ArtifactKind::Core, DUMP).is_empty());
    }
}
