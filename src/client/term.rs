//! The width tables are fitted to: `COLUMNS`, else the terminal on stdout, else 100.

use std::io::IsTerminal;

/// Used when stdout is no terminal (a pipe, a file) and `COLUMNS` is unset.
pub const FALLBACK_WIDTH: usize = 100;

/// The width to fit output to.
pub fn width() -> usize {
    choose(std::env::var("COLUMNS").ok().as_deref(), stdout_columns())
}

/// `COLUMNS` when it is a positive number (the user's override), else the terminal's width.
fn choose(columns_env: Option<&str>, tty: Option<u16>) -> usize {
    columns_env
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or(tty.filter(|&c| c > 0).map(usize::from))
        .unwrap_or(FALLBACK_WIDTH)
}

/// The column count of the terminal on stdout, if stdout is one.
fn stdout_columns() -> Option<u16> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // properly aligned local; fd 1 stays open for the whole call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(ws.ws_col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_overrides_the_terminal_and_bad_values_fall_through() {
        assert_eq!(choose(Some("132"), Some(80)), 132);
        assert_eq!(choose(None, Some(80)), 80);
        assert_eq!(choose(Some("wide"), Some(80)), 80);
        assert_eq!(choose(Some("0"), None), FALLBACK_WIDTH);
        assert_eq!(
            choose(None, Some(0)),
            FALLBACK_WIDTH,
            "a pty that reports no size"
        );
        assert_eq!(choose(None, None), FALLBACK_WIDTH);
    }
}
