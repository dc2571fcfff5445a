//! Pure helpers over the OCI spec's `process`: the programs a command runs, the `PATH` it is
//! searched along, and container paths made absolute and clean.

use serde_json::Value;

/// `PATH` when the spec sets none (what containerd and runc default to).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `process` of an OCI spec (`config.json`), as far as the entrypoint needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute; `/` when the spec has none.
    pub cwd: String,
    /// A CRI sandbox (the pause container): not a workload.
    pub is_sandbox: bool,
}

impl Process {
    pub fn from_spec(spec: &Value) -> Process {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let process = &spec["process"];
        let env = strings(&process["env"])
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect();
        let cwd = process["cwd"].as_str().unwrap_or("/");
        Process {
            args: strings(&process["args"]),
            env,
            cwd: clean("/", cwd),
            is_sandbox: spec["annotations"]["io.kubernetes.cri.container-type"] == "sandbox",
        }
    }

    pub fn env(&self, name: &str) -> Option<&str> {
        // The last assignment wins, as in execve's environment.
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The directories a bare name is searched in, absolute (an empty entry is the cwd).
    pub fn path_dirs(&self) -> Vec<String> {
        self.env("PATH")
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .map(|d| clean(&self.cwd, if d.is_empty() { "." } else { d }))
            .collect()
    }

    /// The programs this process will try to run, in order: `argv[0]`, then the program a shell
    /// wrapper's `-c` script starts with (`sh -c "exec /app/start --port 80"` -> `/app/start`).
    /// The second is [`Wrapped`] with whether only a `PATH` hit makes it a program (a bare word
    /// may be a shell builtin).
    pub fn programs(&self) -> Vec<(String, Wrapped)> {
        let mut out = Vec::new();
        let Some(argv0) = self.args.first() else {
            return out;
        };
        out.push((argv0.clone(), Wrapped::No));
        let shell = matches!(
            argv0.rsplit('/').next(),
            Some("sh" | "bash" | "ash" | "dash" | "ksh" | "zsh")
        );
        if !shell {
            return out;
        }
        // `sh -c SCRIPT`, `sh -ec SCRIPT`, `bash -xc SCRIPT`.
        let mut rest = self.args[1..].iter();
        let script = loop {
            match rest.next() {
                Some(a) if a.starts_with('-') && a.contains('c') && !a.starts_with("--") => {
                    break rest.next()
                }
                Some(a) if a.starts_with('-') => continue,
                _ => break None,
            }
        };
        if let Some(word) = script.and_then(|s| first_command_word(s)) {
            let wrapped = if word.contains('/') {
                Wrapped::Named
            } else {
                Wrapped::IfOnPath
            };
            out.push((word, wrapped));
        }
        out
    }
}

/// How a program was found in the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapped {
    /// `argv[0]` itself.
    No,
    /// Named with a `/` in a shell script: a file, whether or not it exists.
    Named,
    /// A bare word in a shell script: a program only if `PATH` has it (else a builtin).
    IfOnPath,
}

/// The first command word of a simple shell script, past `exec` and variable assignments, when
/// it is a plain word (no expansion, quoting or operator that would need a shell to read).
fn first_command_word(script: &str) -> Option<String> {
    let mut words = script.split_whitespace();
    loop {
        let w = words.next()?;
        if w == "exec" {
            continue;
        }
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        });
        if assignment {
            continue;
        }
        let special = |c: char| "$`\"';|&<>(){}*?[]\\!#~=".contains(c);
        return (!w.contains(special)).then(|| w.to_string());
    }
}

/// `path` made absolute against `cwd` and cleaned lexically (`.` and `..` folded, never above
/// `/`), as the container would name it.
pub fn clean(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The directory part of a clean absolute path (`/app/bin/x` -> `/app/bin`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn process(args: &[&str]) -> Process {
        Process {
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn spec_process_gives_args_env_cwd_and_sandbox() {
        let p = Process::from_spec(&json!({
            "process": {"args": ["/app/gateway", "--port", "80"], "env": ["PATH=/app:/bin", "A=1=2"], "cwd": "/srv/./x/"},
            "annotations": {"io.kubernetes.cri.container-type": "container"},
        }));
        assert_eq!(p.args, ["/app/gateway", "--port", "80"]);
        assert_eq!(p.env("A"), Some("1=2"));
        assert_eq!(p.cwd, "/srv/x");
        assert!(!p.is_sandbox);
        assert_eq!(p.path_dirs(), ["/app", "/bin"]);
        let sandbox = Process::from_spec(
            &json!({"annotations": {"io.kubernetes.cri.container-type": "sandbox"}}),
        );
        assert!(sandbox.is_sandbox);
        assert_eq!(sandbox.cwd, "/");
        assert_eq!(sandbox.path_dirs()[0], "/usr/local/sbin");
    }

    #[test]
    fn shell_wrappers_name_the_program_they_start() {
        assert_eq!(
            process(&["/app/gateway"]).programs(),
            [("/app/gateway".to_string(), Wrapped::No)]
        );
        assert_eq!(
            process(&["sh", "-c", "exec /app/bin/start --port 80"]).programs()[1],
            ("/app/bin/start".to_string(), Wrapped::Named)
        );
        assert_eq!(
            process(&["/bin/bash", "-ec", "FOO=1 gateway"]).programs()[1],
            ("gateway".to_string(), Wrapped::IfOnPath)
        );
        // Expansions and redirections need a shell to read: not guessed.
        assert_eq!(process(&["sh", "-c", "$APP --x"]).programs().len(), 1);
        assert_eq!(process(&["sh", "-c", "a>b"]).programs().len(), 1);
        assert_eq!(process(&["sh", "script.sh"]).programs().len(), 1);
        assert_eq!(process(&["python3", "-c", "x"]).programs().len(), 1);
        assert!(process(&[]).programs().is_empty());
    }

    #[test]
    fn paths_are_cleaned_without_leaving_the_root() {
        assert_eq!(clean("/app", "./bin/../run"), "/app/run");
        assert_eq!(clean("/", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(clean("/x", "/"), "/");
        assert_eq!(parent("/app/bin/x"), "/app/bin");
        assert_eq!(parent("/x"), "/");
    }
}
