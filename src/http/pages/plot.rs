//! The memory history of a report drawn as an inline SVG plot against the container's limit:
//! no script, no external reference, every number written by this file and every word through
//! the escaping writer. Pure.

use super::html::Html;
use crate::model::{CrashReport, UsageHistory};
use crate::units::{bytes, duration_ms};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
/// Room for the axis labels.
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 10.0;

/// The plot and its caption, or nothing without memory samples.
pub fn memory_history(h: &mut Html, r: &CrashReport) {
    let Some(hist) = &r.usage_history else {
        return;
    };
    let points: Vec<(u64, u64)> = hist
        .samples
        .iter()
        .filter_map(|s| Some((s.t_ms, s.memory_bytes?)))
        .collect();
    if points.is_empty() {
        return;
    }
    let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
    let peak = r.cgroup.usage.as_ref().and_then(|u| u.memory_peak_bytes);
    let end_ms = points.last().map_or(0, |p| p.0).max(1);
    let top = points
        .iter()
        .map(|p| p.1)
        .chain(limit)
        .chain(peak)
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;
    let x = |t: u64| LEFT + (t as f64 / end_ms as f64) * (WIDTH - LEFT - RIGHT);
    let y = |m: u64| TOP + (1.0 - m as f64 / top) * (HEIGHT - TOP - BOTTOM);

    let label = plot_label(hist, &points, limit);
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    h.open(
        "svg",
        &[
            ("id", "memory-history"),
            ("class", "plot"),
            ("viewBox", &view_box),
            ("width", "100%"),
            ("style", "max-width: 640px"),
            ("role", "img"),
            ("aria-label", &label),
        ],
    );
    h.el("title", &[], &label);
    // Axes.
    let (x0, y0, x1, y1) = (LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, TOP);
    axis(h, x0, y0, x1, y0);
    axis(h, x0, y0, x0, y1);
    text(h, x0 - 4.0, y1 + 10.0, "end", &bytes(top as u64));
    text(h, x0 - 4.0, y0, "end", "0");
    text(h, x0, HEIGHT - 4.0, "start", "0");
    text(h, x1, HEIGHT - 4.0, "end", &duration_ms(end_ms));
    if let Some(l) = limit {
        let ly = format!("{:.1}", y(l));
        h.open(
            "line",
            &[
                ("class", "limit"),
                ("x1", &format!("{x0:.1}")),
                ("x2", &format!("{x1:.1}")),
                ("y1", &ly),
                ("y2", &ly),
                ("stroke", "#c0392b"),
                ("stroke-dasharray", "6 4"),
            ],
        )
        .close("line");
        text(h, x1, y(l) - 3.0, "end", &format!("limit {}", bytes(l)));
    }
    let coords: Vec<String> = points
        .iter()
        .map(|&(t, m)| format!("{:.1},{:.1}", x(t), y(m)))
        .collect();
    h.open(
        "polyline",
        &[
            ("class", "memory"),
            ("points", &coords.join(" ")),
            ("fill", "none"),
            ("stroke", "#2c6fbb"),
            ("stroke-width", "2"),
        ],
    )
    .close("polyline");
    h.close("svg");
    h.el("p", &[("class", "small muted")], caption(hist, &points));
}

fn axis(h: &mut Html, x1: f64, y1: f64, x2: f64, y2: f64) {
    h.open(
        "line",
        &[
            ("x1", &format!("{x1:.1}")),
            ("y1", &format!("{y1:.1}")),
            ("x2", &format!("{x2:.1}")),
            ("y2", &format!("{y2:.1}")),
            ("stroke", "#888"),
        ],
    )
    .close("line");
}

fn text(h: &mut Html, x: f64, y: f64, anchor: &str, words: &str) {
    h.el(
        "text",
        &[
            ("x", &format!("{x:.1}")),
            ("y", &format!("{y:.1}")),
            ("text-anchor", anchor),
            ("font-size", "11"),
            ("fill", "#555"),
        ],
        words,
    );
}

/// What the plot shows, for screen readers and the tooltip.
fn plot_label(hist: &UsageHistory, points: &[(u64, u64)], limit: Option<u64>) -> String {
    let first = points.first().map_or(0, |p| p.1);
    let last = points.last().map_or(0, |p| p.1);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let against = limit.map_or_else(
        || ", no limit".to_string(),
        |l| format!(" against a {} limit", bytes(l)),
    );
    format!(
        "memory over {}: from {} to {} (highest sample {}){against}",
        duration_ms(points.last().map_or(0, |p| p.0)),
        bytes(first),
        bytes(last),
        bytes(max),
    ) + if hist.dropped > 0 {
        ", middle samples dropped"
    } else {
        ""
    }
}

/// `41 samples over 4.0 s (every 100 ms for the first 5 s, then every 1 s); CPU 1.2 s; up to 3
/// tasks`.
fn caption(hist: &UsageHistory, points: &[(u64, u64)]) -> String {
    let mut out = format!(
        "{} samples over {} (every {} for the first {}, then every {})",
        hist.samples.len(),
        duration_ms(points.last().map_or(0, |p| p.0)),
        duration_ms(hist.fine_interval_ms.into()),
        duration_ms(hist.fine_for_ms.into()),
        duration_ms(hist.coarse_interval_ms.into()),
    );
    if hist.dropped > 0 {
        out.push_str(&format!(
            "; {} samples after the first {} not kept",
            hist.dropped,
            duration_ms(hist.fine_for_ms.into())
        ));
    }
    if let Some(cpu) = hist.samples.iter().rev().find_map(|s| s.cpu_usec) {
        out.push_str(&format!("; CPU time {}", duration_ms(cpu / 1000)));
    }
    if let Some(pids) = hist.samples.iter().filter_map(|s| s.pids).max() {
        out.push_str(&format!("; up to {pids} tasks"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CgroupLimits, UsageSample};

    fn report() -> CrashReport {
        let mib = 1u64 << 20;
        let mut r: CrashReport = serde_json::from_str(include_str!(
            "../../../tests/fixtures/reports/oom_killed.json"
        ))
        .unwrap();
        r.usage_history = Some(UsageHistory {
            fine_interval_ms: 100,
            fine_for_ms: 5000,
            coarse_interval_ms: 1000,
            samples: (0..5)
                .map(|i| UsageSample {
                    t_ms: i * 100,
                    memory_bytes: Some((1 + 4 * i) * mib),
                    cpu_usec: Some(i * 20_000),
                    pids: Some(2),
                })
                .collect(),
            ..Default::default()
        });
        r.cgroup.limits = Some(CgroupLimits {
            memory_limit_bytes: Some(20 * mib),
            ..Default::default()
        });
        r
    }

    #[test]
    fn the_history_is_an_svg_line_under_the_limit_line() {
        let mut h = Html::new();
        memory_history(&mut h, &report());
        let out = h.into_string();
        assert!(out.starts_with("<svg id=\"memory-history\""), "{out}");
        assert!(out.contains("<line class=\"limit\""), "{out}");
        assert!(out.contains("limit 20.0 MiB"), "{out}");
        // Five points, rising left to right (y falls).
        let points = out
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let ys: Vec<f64> = points
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(ys.len(), 5);
        assert!(ys.windows(2).all(|w| w[1] < w[0]), "{ys:?}");
        assert!(out.contains("5 samples over 400 ms"), "{out}");
        assert!(!out.contains("<script"));
    }

    #[test]
    fn no_history_draws_nothing() {
        let mut h = Html::new();
        let mut r = report();
        r.usage_history = None;
        memory_history(&mut h, &r);
        assert!(h.into_string().is_empty());
    }
}
