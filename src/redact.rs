//! Redaction of credentials from command lines and environment before anything is stored.
//!
//! Values of arguments whose name suggests a secret, and passwords inside URLs, are replaced by
//! [`REDACTED`]. This is a heuristic on purpose tuned to over-redact: a report that hides a
//! harmless value is a small loss, a report that leaks a database password is an incident.

pub const REDACTED: &str = "<redacted>";

const SECRET_WORDS: [&str; 9] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "credential",
];

fn is_secret_name(name: &str) -> bool {
    let lower = name.trim_start_matches('-').to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
        || lower.ends_with("key") && lower.len() > 3
        || lower == "auth"
        || lower.ends_with("-auth")
        || lower.ends_with("_auth")
}

/// Redacts a whole argv. `--token abc` (the value in the next argument), `--token=abc`,
/// `PASSWORD=abc` and `https://user:pw@host/` are all handled; a shell script passed to `sh -c`
/// is scanned word by word.
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        if arg.starts_with('-') && !arg.contains('=') && is_secret_name(arg) {
            out.push(arg.clone());
            hide_next = true;
            continue;
        }
        out.push(redact_words(arg));
    }
    out
}

/// Redacts inside one string that may hold several words (e.g. a `sh -c` script).
fn redact_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hide_next = false;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if hide_next && !word.is_empty() {
            out.push_str(REDACTED);
            hide_next = false;
            continue;
        }
        if let Some((name, _)) = word.split_once('=') {
            if is_secret_name(name) {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
                continue;
            }
        } else if word.starts_with('-') && is_secret_name(word) {
            hide_next = true;
        }
        out.push_str(&redact_url_password(word));
    }
    out
}

/// `scheme://user:password@host` -> `scheme://user:<redacted>@host`.
fn redact_url_password(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_string();
    };
    let rest = &word[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return word.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return word.to_string();
    };
    format!(
        "{}{}:{}{}",
        &word[..scheme_end + 3],
        &userinfo[..colon],
        REDACTED,
        &word[scheme_end + 3 + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn password_flag_value_in_next_argument_is_hidden() {
        let got = redact_args(&v(&["mysqld", "--password", "hunter2", "--port", "3306"]));
        assert_eq!(
            got,
            v(&["mysqld", "--password", REDACTED, "--port", "3306"])
        );
    }

    #[test]
    fn inline_secret_assignments_are_hidden() {
        let got = redact_args(&v(&["app", "--api-key=abc", "--db-token=x", "--name=web"]));
        assert_eq!(
            got,
            v(&[
                "app",
                "--api-key=<redacted>",
                "--db-token=<redacted>",
                "--name=web"
            ])
        );
    }

    #[test]
    fn shell_scripts_are_scanned_word_by_word() {
        let got = redact_args(&v(&[
            "sh",
            "-c",
            "AWS_SECRET_ACCESS_KEY=abc exec app --token xyz -v",
        ]));
        assert_eq!(
            got[2],
            "AWS_SECRET_ACCESS_KEY=<redacted> exec app --token <redacted> -v"
        );
    }

    #[test]
    fn url_passwords_are_hidden_but_user_and_host_kept() {
        let got = redact_args(&v(&["psql", "postgres://app:s3cr3t@db:5432/prod"]));
        assert_eq!(got[1], "postgres://app:<redacted>@db:5432/prod");
        assert_eq!(
            redact_args(&v(&["curl", "https://example.com/a@b"]))[1],
            "https://example.com/a@b"
        );
    }

    #[test]
    fn ordinary_arguments_are_untouched() {
        let args = v(&[
            "beam.smp",
            "-K",
            "true",
            "--",
            "-root",
            "/usr/lib/erlang",
            "-keyboard",
        ]);
        // "-keyboard" ends in neither a secret word nor "key": kept.
        assert_eq!(redact_args(&args), args);
    }
}
