//! Redaction of credentials from what a report holds: command lines (and the `sh -c` scripts in
//! them), container label values, and text a container printed.
//!
//! Pure string functions; `crate::report` decides which parts of a report go through which. Values
//! are replaced by [`REDACTED`]; names, flags, users and hosts are kept, so a reader still sees
//! that a password was passed and where. The heuristics are tuned to over-redact: a report that
//! hides a harmless value is a small loss, a report that leaks a database password is an incident.
//!
//! Judgement calls (also in `docs/secrets.md`):
//! - `-p VALUE` and `-pVALUE` are a password only for programs known to take one that way (the
//!   MySQL/MariaDB and MongoDB clients, `sshpass`, `7z`; `-a` for `redis-cli`, `-P` for
//!   `zip`/`unzip`). For every other program `-p` is kept: it is a port (`ssh -p 2222`,
//!   `nc -p 8080`) or a path far more often than a secret. For the MySQL clients `-p NAME` (with
//!   a space) really means "prompt, database NAME"; NAME is hidden anyway.
//! - Any argument whose flag name contains a credential word (`--password`, `--passphrase`,
//!   `--db-token`, `--api-key`, `--secret`, `--ssh-key`, `-passin`) hides its value, even when
//!   the value is a file name (`--token-file /run/token`).
//! - In free text, `name: value` / `name=value` pairs hide the value when the name contains a
//!   credential word, `Bearer X` hides X anywhere, and a `-----BEGIN ... PRIVATE KEY-----` block
//!   hides everything up to its END marker, or to the end of the text when the capture was cut
//!   inside the key (an END marker with no BEGIN before it hides the key lines above it).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};

pub const REDACTED: &str = "<redacted>";

const SECRET_WORDS: [&str; 11] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "credential",
    "authorization",
];

/// Whether a flag, variable or label key names a credential (`--db-password`, `API_TOKEN`,
/// `vault.example.com/secret`).
fn is_secret_name(name: &str) -> bool {
    let lower = name.trim().trim_start_matches('-').to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
        || lower.ends_with("key") && lower.len() > 3
        || lower == "auth"
        || lower == "pass"
        || lower == "passin"
        || lower == "passout"
        || [".auth", "-auth", "_auth", "-pass", "_pass"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// The short flag that takes a password for programs known to have one (`mysql -pSECRET`).
fn password_flag(program: &str) -> Option<char> {
    let base = program.rsplit('/').next().unwrap_or(program);
    if base.starts_with("mysql")
        || base.starts_with("mariadb")
        || base.starts_with("mongo")
        || matches!(base, "sshpass" | "7z" | "7za" | "7zr")
    {
        Some('p')
    } else if matches!(base, "redis-cli" | "keydb-cli" | "valkey-cli") {
        Some('a')
    } else if matches!(base, "zip" | "unzip") {
        Some('P')
    } else {
        None
    }
}

/// Words in front of the program that leave the command position open (`exec env sudo app`).
fn is_wrapper(word: &str) -> bool {
    matches!(
        word.rsplit('/').next().unwrap_or(word),
        "exec"
            | "env"
            | "sudo"
            | "nohup"
            | "time"
            | "command"
            | "nice"
            | "setsid"
            | "gosu"
            | "su-exec"
    )
}

fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What to hide of one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Keep,
    Whole,
    /// From this byte of the word's value on (`--password=` or `-p` stays).
    From(usize),
}

/// Walks the words of one command line (an argv, or one command of a script), remembering which
/// program runs and whether the previous word was a flag whose value comes next.
struct Scan {
    at_program: bool,
    flag: Option<char>,
    hide_next: bool,
}

impl Scan {
    fn new() -> Scan {
        Scan {
            at_program: true,
            flag: None,
            hide_next: false,
        }
    }

    /// A new command starts (`;`, `&&`, `|`, a newline in a script).
    fn separator(&mut self) {
        *self = Scan::new();
    }

    fn word(&mut self, value: &str) -> Cut {
        let looks_like_flag = value.len() > 1 && value.starts_with('-');
        if std::mem::take(&mut self.hide_next) && !looks_like_flag {
            return Cut::Whole;
        }
        if self.at_program {
            if let Some((name, _)) = value.split_once('=') {
                if is_variable_name(name) {
                    // `DB_PASSWORD=x app`: an assignment in front of the program.
                    return secret_assignment(name);
                }
            }
            if !is_wrapper(value) && !looks_like_flag {
                self.at_program = false;
                self.flag = password_flag(value);
            }
            return Cut::Keep;
        }
        if looks_like_flag {
            if let Some((name, _)) = value.split_once('=') {
                return secret_assignment(name);
            }
            let short = value.strip_prefix('-').filter(|r| !r.starts_with('-'));
            if let (Some(rest), Some(f)) = (short, self.flag) {
                if rest.starts_with(f) {
                    if rest.len() == f.len_utf8() {
                        self.hide_next = true;
                        return Cut::Keep;
                    }
                    return Cut::From(1 + f.len_utf8());
                }
            }
            if is_secret_name(value) {
                self.hide_next = true;
            }
            return Cut::Keep;
        }
        match value.split_once('=') {
            Some((name, _)) => secret_assignment(name),
            None => Cut::Keep,
        }
    }
}

fn secret_assignment(name: &str) -> Cut {
    if is_secret_name(name) {
        Cut::From(name.len() + 1)
    } else {
        Cut::Keep
    }
}

/// An argument holding more than one shell word: scanned as a script of its own.
fn is_script(arg: &str) -> bool {
    arg.contains(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&'))
}

/// Redacts a whole argv. `--token abc` (the value in the next argument), `--token=abc`,
/// `PASSWORD=abc`, `mysql -pabc`, `-H 'Authorization: Bearer abc'` and `https://user:pw@host/`
/// are all handled; an argument holding a script (`sh -c '...'`) is scanned as one, command by
/// command. Idempotent.
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut scan = Scan::new();
    args.iter()
        .map(|arg| {
            let word = if !scan.hide_next && is_script(arg) {
                scan.at_program = false;
                redact_script(arg)
            } else {
                match scan.word(arg) {
                    Cut::Keep => arg.clone(),
                    Cut::Whole => REDACTED.to_string(),
                    Cut::From(i) if i >= arg.len() => arg.clone(),
                    Cut::From(i) => format!("{}{REDACTED}", &arg[..i]),
                }
            };
            redact_text(&word).into_owned()
        })
        .collect()
}

/// One word of a shell script: where its text lies, and its value with quotes and escapes
/// removed (`offsets[i]` is where byte `i` of `value` sits in the script).
struct ShellWord {
    value: String,
    offsets: Vec<usize>,
    starts_command: bool,
}

/// Splits a script into words the way `sh` would for the purpose of finding flags and
/// assignments: quotes, backslashes, and the separators that start a new command.
fn shell_words(script: &str) -> Vec<ShellWord> {
    let mut words = Vec::new();
    let mut value = String::new();
    let mut offsets = Vec::new();
    let mut in_word = false;
    let mut starts_command = true;
    let mut quote: Option<char> = None;
    let mut chars = script.char_indices();
    let push = |value: &mut String, offsets: &mut Vec<usize>, at: usize, c: char| {
        value.push(c);
        offsets.extend((0..c.len_utf8()).map(|k| at + k));
    };
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => {
                if let Some((j, n)) = chars.next() {
                    push(&mut value, &mut offsets, j, n);
                }
            }
            Some(_) => push(&mut value, &mut offsets, i, c),
            None => match c {
                '\'' | '"' => {
                    in_word = true;
                    quote = Some(c);
                }
                '\\' => {
                    in_word = true;
                    if let Some((j, n)) = chars.next() {
                        push(&mut value, &mut offsets, j, n);
                    }
                }
                c if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`') => {
                    if std::mem::take(&mut in_word) {
                        words.push(ShellWord {
                            value: std::mem::take(&mut value),
                            offsets: std::mem::take(&mut offsets),
                            starts_command,
                        });
                        starts_command = false;
                    }
                    if c == '\n' || !c.is_whitespace() {
                        starts_command = true;
                    }
                }
                _ => {
                    in_word = true;
                    push(&mut value, &mut offsets, i, c);
                }
            },
        }
    }
    if in_word {
        words.push(ShellWord {
            value,
            offsets,
            starts_command,
        });
    }
    words
}

/// Redacts flags and assignments in a shell script, leaving its quoting as it was
/// (`PASSWORD="a b"` becomes `PASSWORD="<redacted>"`).
fn redact_script(script: &str) -> String {
    let mut scan = Scan::new();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for w in shell_words(script) {
        if w.starts_command {
            scan.separator();
        }
        let from = match scan.word(&w.value) {
            Cut::Keep => continue,
            Cut::Whole => 0,
            Cut::From(i) => i,
        };
        // Every byte of the value has its offset, so the cut ends right after the last one.
        if let (Some(&start), Some(&last)) = (w.offsets.get(from), w.offsets.last()) {
            cuts.push((start, last + 1));
        }
    }
    let mut out = String::with_capacity(script.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        out.push_str(&script[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&script[at..]);
    out
}

/// Redacts container labels: the value of a label whose key names a credential, and
/// credential-shaped text in every other value (see [`redact_text`]).
pub fn redact_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| {
            let v = if !v.is_empty() && is_secret_name(k) {
                REDACTED.to_string()
            } else {
                redact_text(v).into_owned()
            };
            (k.clone(), v)
        })
        .collect()
}

fn regex(pattern: &str) -> Regex {
    // The patterns are constants, tested below: a bad one fails every test at once.
    Regex::new(pattern).unwrap_or_else(|e| panic!("redaction pattern {pattern:?}: {e}"))
}

const PEM_BEGIN_PATTERN: &str = r"-----BEGIN[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----";
static PEM_BEGIN: LazyLock<Regex> = LazyLock::new(|| regex(PEM_BEGIN_PATTERN));
const PEM_END_PATTERN: &str = r"-----END[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----";
static PEM_END: LazyLock<Regex> = LazyLock::new(|| regex(PEM_END_PATTERN));
/// `Authorization: Bearer X`, `authorization=Basic X`, `"Authorization": "token X"`.
const AUTHORIZATION_PATTERN: &str = r#"(?i)(authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|basic|digest|token|negotiate|apikey)[ \t]+)?)[^\s"',;]+"#;
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| regex(AUTHORIZATION_PATTERN));
const BEARER_PATTERN: &str = r"(?i)\b(bearer[ \t]+)[A-Za-z0-9\-._~+/]+=*";
static BEARER: LazyLock<Regex> = LazyLock::new(|| regex(BEARER_PATTERN));
/// `scheme://user:password@host`.
const URL_PASSWORD_PATTERN: &str = r#"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@"'<>]*:)[^\s@/"'<>]+@"#;
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| regex(URL_PASSWORD_PATTERN));
/// `password=X`, `passwd: X`, `aws_secret_access_key = X`, `"api_key": "X"`; not a path
/// (`open /etc/passwd: permission denied`).
const NAMED_VALUE_PATTERN: &str = r#"(?i)(^|[^\w.\-/])([\w.\-]*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?)[\w.\-]*)(["']?[ \t]*[:=][ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s"',;&]+)"#;
static NAMED_VALUE: LazyLock<Regex> = LazyLock::new(|| regex(NAMED_VALUE_PATTERN));
/// `--password X` as a shell trace or an error message prints a command line.
const FLAG_VALUE_PATTERN: &str = r#"(?i)(^|[\s"'])(--?[\w\-]*(?:password|passwd|passphrase|secret|token|api-?key)[\w\-]*[ \t]+)("[^"\n]*"|'[^'\n]*'|[^\s\-"'][^\s"']*)"#;
static FLAG_VALUE: LazyLock<Regex> = LazyLock::new(|| regex(FLAG_VALUE_PATTERN));
/// Tokens recognisable by their shape alone: AWS access key ids, GitHub and Slack tokens, JWTs.
const SHAPED_TOKEN_PATTERN: &str = concat!(
    r"\b(?:(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",
    r"|gh[pousr]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{22,}",
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
    r"|eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*)\b"
);
static SHAPED_TOKEN: LazyLock<Regex> = LazyLock::new(|| regex(SHAPED_TOKEN_PATTERN));

/// Every pattern at once: most text (syscall arguments, ordinary output) matches none, and one
/// pass over it says so.
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    let patterns = [
        PEM_BEGIN_PATTERN,
        PEM_END_PATTERN,
        AUTHORIZATION_PATTERN,
        BEARER_PATTERN,
        URL_PASSWORD_PATTERN,
        NAMED_VALUE_PATTERN,
        FLAG_VALUE_PATTERN,
        SHAPED_TOKEN_PATTERN,
    ];
    RegexSet::new(patterns).unwrap_or_else(|e| panic!("redaction patterns: {e}"))
});

/// Compiles every pattern now. Compiling is the slow part (tens of milliseconds in a debug
/// build); done lazily it would stall the first container's handling, at the worst moment.
pub fn warm_up() {
    let all: [&LazyLock<Regex>; 8] = [
        &PEM_BEGIN,
        &PEM_END,
        &AUTHORIZATION,
        &BEARER,
        &URL_PASSWORD,
        &NAMED_VALUE,
        &FLAG_VALUE,
        &SHAPED_TOKEN,
    ];
    for re in all {
        LazyLock::force(re);
    }
    LazyLock::force(&ANY);
}

/// Redacts credential-shaped text: private key blocks, `Authorization:` and `Bearer` values,
/// passwords in URLs, `name=value` and `name: value` pairs whose name holds a credential word,
/// `--password value`, AWS access key ids, GitHub and Slack tokens and JWTs. Idempotent; text
/// without any of them comes back borrowed.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let steps: [for<'a> fn(&'a str) -> Cow<'a, str>; 6] = [
        redact_authorization,
        redact_bearer,
        redact_url_password,
        redact_named_values,
        redact_flag_values,
        redact_shaped_tokens,
    ];
    if !ANY.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut out = redact_pem(text);
    for step in steps {
        let changed = match step(&out) {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        };
        if let Some(s) = changed {
            out = Cow::Owned(s);
        }
    }
    out
}

fn redact_authorization(s: &str) -> Cow<'_, str> {
    AUTHORIZATION.replace_all(s, |c: &Captures| format!("{}{REDACTED}", &c[1]))
}

fn redact_bearer(s: &str) -> Cow<'_, str> {
    BEARER.replace_all(s, |c: &Captures| format!("{}{REDACTED}", &c[1]))
}

fn redact_url_password(s: &str) -> Cow<'_, str> {
    URL_PASSWORD.replace_all(s, |c: &Captures| format!("{}{REDACTED}@", &c[1]))
}

fn redact_named_values(s: &str) -> Cow<'_, str> {
    NAMED_VALUE.replace_all(s, |c: &Captures| {
        let (before, name, sep, value) = (&c[1], &c[2], &c[3], &c[4]);
        // The shell's working directory is not a password.
        if name.eq_ignore_ascii_case("pwd") || name.eq_ignore_ascii_case("oldpwd") {
            return c[0].to_string();
        }
        format!("{before}{name}{sep}{}", quoted_like(value))
    })
}

/// [`REDACTED`], in the quotes `value` had.
fn quoted_like(value: &str) -> String {
    match value.chars().next() {
        Some(q @ ('"' | '\'')) => format!("{q}{REDACTED}{q}"),
        _ => REDACTED.to_string(),
    }
}

fn redact_flag_values(s: &str) -> Cow<'_, str> {
    FLAG_VALUE.replace_all(s, |c: &Captures| {
        format!("{}{}{}", &c[1], &c[2], quoted_like(&c[3]))
    })
}

fn redact_shaped_tokens(s: &str) -> Cow<'_, str> {
    SHAPED_TOKEN.replace_all(s, REDACTED)
}

fn is_key_line(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty()
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// Hides the body of every private key block. A block cut by the capture's window is hidden to
/// the end of the text (BEGIN without END), or from the key lines above its END marker.
fn redact_pem(text: &str) -> Cow<'_, str> {
    let first_begin = PEM_BEGIN.find(text).map_or(text.len(), |m| m.start());
    let orphan_end = PEM_END.find(&text[..first_begin]);
    if first_begin == text.len() && orphan_end.is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    if let Some(end) = orphan_end {
        // Walk back over the key's lines (the first one may be cut short by the window).
        let mut body_start = end.start();
        for line in text[..end.start()].split_inclusive('\n').rev() {
            if !is_key_line(line) {
                break;
            }
            body_start -= line.len();
        }
        out.push_str(&text[..body_start]);
        out.push_str(REDACTED);
        at = end.start();
    }
    while let Some(begin) = PEM_BEGIN.find_at(text, at) {
        out.push_str(&text[at..begin.end()]);
        out.push_str(REDACTED);
        match PEM_END.find_at(text, begin.end()) {
            Some(end) => at = end.start(),
            None => return Cow::Owned(out),
        }
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn args(a: &[&str]) -> Vec<String> {
        redact_args(&v(a))
    }

    #[test]
    fn password_flag_value_in_next_argument_is_hidden() {
        let got = args(&["mysqld", "--password", "hunter2", "--port", "3306"]);
        assert_eq!(
            got,
            v(&["mysqld", "--password", REDACTED, "--port", "3306"])
        );
    }

    #[test]
    fn every_credential_flag_hides_its_value_in_either_form() {
        for flag in [
            "--password",
            "--passphrase",
            "--token",
            "--api-key",
            "--secret",
            "--client-secret",
            "--db-token",
            "-passin",
        ] {
            assert_eq!(
                args(&["app", flag, "s3cr3t", "-v"]),
                v(&["app", flag, REDACTED, "-v"]),
                "{flag} VALUE"
            );
            let inline = format!("{flag}=s3cr3t");
            assert_eq!(
                args(&["app", &inline])[1],
                format!("{flag}={REDACTED}"),
                "{flag}=VALUE"
            );
        }
    }

    #[test]
    fn inline_secret_assignments_are_hidden() {
        let got = args(&["app", "--api-key=abc", "--db-token=x", "--name=web"]);
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
    fn mysql_attached_and_separate_password_is_hidden() {
        assert_eq!(
            args(&["mysql", "-uroot", "-phunter2", "-P3306", "shop"]),
            v(&["mysql", "-uroot", "-p<redacted>", "-P3306", "shop"])
        );
        assert_eq!(
            args(&["/usr/bin/mysqldump", "-p", "hunter2", "shop"]),
            v(&["/usr/bin/mysqldump", "-p", REDACTED, "shop"])
        );
        // `-p` followed by a flag is MySQL's "prompt me": nothing to hide.
        assert_eq!(
            args(&["mariadb", "-p", "-e", "select 1"]),
            v(&["mariadb", "-p", "-e", "select 1"])
        );
        assert_eq!(
            args(&["sshpass", "-p", "hunter2", "ssh", "host"]),
            v(&["sshpass", "-p", REDACTED, "ssh", "host"])
        );
        assert_eq!(
            args(&["redis-cli", "-a", "hunter2", "ping"]),
            v(&["redis-cli", "-a", REDACTED, "ping"])
        );
        assert_eq!(args(&["mongosh", "-pabc"])[1], "-p<redacted>");
    }

    #[test]
    fn port_flag_of_other_programs_is_kept() {
        for a in [
            v(&["ssh", "-p", "2222", "host"]),
            v(&["nc", "-l", "-p", "8080"]),
            v(&["python3", "-m", "http.server", "-p8000"]),
            v(&["redis-server", "-a", "x"]),
        ] {
            assert_eq!(redact_args(&a), a);
        }
    }

    #[test]
    fn shell_scripts_are_scanned_word_by_word() {
        let got = args(&[
            "sh",
            "-c",
            "AWS_SECRET_ACCESS_KEY=abc exec app --token xyz -v",
        ]);
        assert_eq!(
            got[2],
            "AWS_SECRET_ACCESS_KEY=<redacted> exec app --token <redacted> -v"
        );
    }

    #[test]
    fn mysql_inside_sh_c_is_recognised_per_command() {
        let got = args(&[
            "sh",
            "-c",
            "ssh -p 2222 h; mysql -uroot -px shop && mysql -p'two words' && nc -p 80 h",
        ]);
        assert_eq!(
            got[2],
            "ssh -p 2222 h; mysql -uroot -p<redacted> shop && mysql -p'<redacted>' && nc -p 80 h"
        );
    }

    #[test]
    fn quoted_assignments_keep_their_quotes() {
        let got = args(&[
            "bash",
            "-c",
            r#"DB_PASSWORD="a b" MODE=prod ./run "--secret=x y" --passphrase "c d""#,
        ]);
        assert_eq!(
            got[2],
            r#"DB_PASSWORD="<redacted>" MODE=prod ./run "--secret=<redacted>" --passphrase "<redacted>""#
        );
    }

    #[test]
    fn authorization_headers_are_hidden_as_argument_and_in_scripts() {
        assert_eq!(
            args(&["curl", "-H", "Authorization: Bearer abc.def", "https://api"])[2],
            "Authorization: Bearer <redacted>"
        );
        assert_eq!(
            args(&["curl", "--header", "authorization: Basic dXNlcjpwdw=="])[2],
            "authorization: Basic <redacted>"
        );
        assert_eq!(
            args(&[
                "sh",
                "-c",
                r#"curl -H "Authorization: Bearer abc" https://api"#
            ])[2],
            r#"curl -H "Authorization: Bearer <redacted>" https://api"#
        );
        assert_eq!(
            args(&["curl", "-H", "X-Auth-Token: abc"])[2],
            "X-Auth-Token: <redacted>"
        );
    }

    #[test]
    fn url_passwords_are_hidden_but_user_and_host_kept() {
        let got = args(&["psql", "postgres://app:s3cr3t@db:5432/prod"]);
        assert_eq!(got[1], "postgres://app:<redacted>@db:5432/prod");
        assert_eq!(
            args(&["curl", "https://example.com/a@b"])[1],
            "https://example.com/a@b"
        );
        assert_eq!(
            args(&["sh", "-c", "curl https://u:pw@h/x?token=t&a=1"])[2],
            "curl https://u:<redacted>@h/x?token=<redacted>&a=1"
        );
    }

    #[test]
    fn ordinary_arguments_are_untouched() {
        let a = v(&[
            "beam.smp",
            "-K",
            "true",
            "--",
            "-root",
            "/usr/lib/erlang",
            "-keyboard",
            "-p",
            "8080",
        ]);
        // "-keyboard" ends in neither a secret word nor "key": kept.
        assert_eq!(redact_args(&a), a);
        let script = v(&[
            "sh",
            "-c",
            "cat /etc/gateway/config.yaml; echo 'done: 3 of 4' >&2",
        ]);
        assert_eq!(redact_args(&script), script);
    }

    #[test]
    fn redaction_is_idempotent() {
        let a = v(&[
            "sh",
            "-c",
            r#"mysql -px; curl -H "Authorization: Bearer y" https://u:p@h; T=1 PASSWORD=z app"#,
        ]);
        let once = redact_args(&a);
        assert_eq!(redact_args(&once), once);
        let text = "password=x\n-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
        let once = redact_text(text).into_owned();
        assert_eq!(redact_text(&once), once);
    }

    #[test]
    fn labels_with_credential_keys_or_values_are_hidden() {
        let labels: BTreeMap<String, String> = [
            ("io.kubernetes.pod.name", "web-0"),
            ("db-password", "hunter2"),
            ("vault.example.com/api-token", "abc"),
            ("backup-target", "s3://AKIAABCDEFGHIJKLMNOP:x@bucket"),
            ("note", "Bearer abc"),
            ("empty-secret", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let got = redact_labels(&labels);
        assert_eq!(got["io.kubernetes.pod.name"], "web-0");
        assert_eq!(got["db-password"], REDACTED);
        assert_eq!(got["vault.example.com/api-token"], REDACTED);
        assert_eq!(got["backup-target"], "s3://<redacted>:<redacted>@bucket");
        assert_eq!(got["note"], "Bearer <redacted>");
        assert_eq!(got["empty-secret"], "");
    }

    #[test]
    fn password_forms_in_output_are_hidden() {
        let text = "connecting with password=hunter2 user=app\n\
                    passwd: hunter3\n\
                    {\"api_key\": \"k-123\", \"secret\":'s 1'}\n\
                    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n\
                    export DB_PASSWORD=hunter4; PWD=/srv\n\
                    + app --token tok-5 --verbose\n";
        let got = redact_text(text);
        for secret in [
            "hunter2", "hunter3", "k-123", "s 1", "wJalr", "hunter4", "tok-5",
        ] {
            assert!(!got.contains(secret), "{secret} in:\n{got}");
        }
        assert!(got.contains("password=<redacted> user=app"), "{got}");
        assert!(got.contains("passwd: <redacted>"), "{got}");
        assert!(got.contains(r#""api_key": "<redacted>""#), "{got}");
        assert!(
            got.contains("PWD=/srv"),
            "the working directory is kept: {got}"
        );
        assert!(got.contains("--token <redacted> --verbose"), "{got}");
    }

    #[test]
    fn bearer_tokens_in_output_are_hidden() {
        let got = redact_text("GET /x 401: sent Bearer eyJhbGciOi.payload.sig, retrying");
        assert_eq!(got, "GET /x 401: sent Bearer <redacted>, retrying");
        let got = redact_text(r#"{"Authorization":"Bearer abc"}"#);
        assert_eq!(got, r#"{"Authorization":"Bearer <redacted>"}"#);
    }

    #[test]
    fn private_key_blocks_are_hidden_whole_or_cut() {
        let key = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK=\n-----END RSA PRIVATE KEY-----\nafter\n";
        assert_eq!(
            redact_text(key),
            "before\n-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----\nafter\n"
        );
        // The head of the capture ends inside the key.
        assert_eq!(
            redact_text("x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz"),
            "x\n-----BEGIN OPENSSH PRIVATE KEY-----<redacted>"
        );
        // The tail of the capture starts inside the key.
        assert_eq!(
            redact_text("ssz\nAAAA+/==\n-----END PRIVATE KEY-----\nfatal: bad key\n"),
            "<redacted>-----END PRIVATE KEY-----\nfatal: bad key\n"
        );
        assert_eq!(
            redact_text("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"),
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            "public keys are not secrets"
        );
    }

    #[test]
    fn cloud_and_service_tokens_are_hidden_by_shape() {
        let ghp = format!("ghp_{}", "a1B2".repeat(9));
        let text = format!(
            "key AKIAIOSFODNN7EXAMPLE, gh {ghp}, slack xoxb-1234567890-abcdef, jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"
        );
        assert_eq!(
            redact_text(&text),
            "key <redacted>, gh <redacted>, slack <redacted>, jwt <redacted>"
        );
    }

    #[test]
    fn ordinary_output_is_untouched_and_borrowed() {
        for text in [
            "listening on 0.0.0.0:8080",
            "open /etc/passwd: permission denied",
            "Error: unexpected token } at line 3",
            "2024-01-01T00:00:00Z level=info msg=\"started\" pid=1",
            "AKIA is not a key; neither is ghp_short",
        ] {
            assert!(
                matches!(redact_text(text), Cow::Borrowed(_)),
                "changed: {text:?} -> {:?}",
                redact_text(text)
            );
        }
    }
}
