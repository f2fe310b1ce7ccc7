//! The run as an SVG picture: (a) requests the insurer handles per hour, per strategy, over the
//! whole run (log scale, so the 03:00 sweeps and a webhook's trickle both show); (b) the
//! staleness distribution per strategy as a CDF over a log time axis.

use crate::report::human;
use crate::sim::Strategy;
use crate::workload::{DAY, SECOND};
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const COLORS: [&str; 6] = [
    "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#1f77b4", "#2ca02c",
];

fn color(strategy: Strategy) -> &'static str {
    COLORS[Strategy::ALL
        .iter()
        .position(|s| *s == strategy)
        .unwrap_or(0)]
}

fn polyline(out: &mut String, points: &[(f64, f64)], stroke: &str) {
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{stroke}" stroke-width="1.4" points="{}"/>"#,
        path.join(" ")
    );
}

/// `per_hour` and `staleness` (sorted, ms) per strategy.
pub fn svg(
    per_hour: &[(Strategy, &[u32])],
    staleness: &[(Strategy, &[i64])],
    title: &str,
) -> String {
    let height = 2.0 * PANEL + 150.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="15" font-weight="bold">{title}</text>"#
    );
    // (a) requests per hour, log10(1 + n).
    let top = 50.0;
    let hours = per_hour
        .iter()
        .map(|(_, h)| h.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let max = per_hour
        .iter()
        .flat_map(|(_, h)| h.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let decades = (f64::from(max) + 1.0).log10().ceil().max(1.0);
    let y_a = |n: u32| top + PANEL - (f64::from(n) + 1.0).log10() / decades * PANEL;
    let x_a = |h: usize| LEFT + h as f64 / (hours - 1) as f64 * plot_w;
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">(a) requests the insurer handles per hour</text>"#,
        top - 8.0
    );
    for decade in 0..=decades as i32 {
        let n = 10f64.powi(decade) - 1.0;
        let y = y_a(n as u32);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            10u64.pow(decade as u32)
        );
    }
    for day in (0..hours / 24 + 1).step_by(7) {
        let x = x_a(day * 24);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#e5e5e5"/><text x="{x:.1}" y="{}" text-anchor="middle">day {day}</text>"##,
            top + PANEL,
            top + PANEL + 15.0
        );
    }
    for (strategy, series) in per_hour {
        let points: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .map(|(h, n)| (x_a(h), y_a(*n)))
            .collect();
        polyline(&mut out, &points, color(*strategy));
    }
    // (b) staleness CDF on a log axis from 1 ms to the largest staleness.
    let top_b = top + PANEL + 70.0;
    let longest = staleness
        .iter()
        .filter_map(|(_, s)| s.last())
        .copied()
        .max()
        .unwrap_or(DAY)
        .max(SECOND);
    let span = (longest as f64).log10().ceil();
    let x_b = |ms: i64| LEFT + (ms.max(1) as f64).log10() / span * plot_w;
    let y_b = |share: f64| top_b + PANEL - share * PANEL;
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">(b) staleness: share of decisions the clinic knew within a time (log axis)</text>"#,
        top_b - 8.0
    );
    for tick in 0..=span as i32 {
        let ms = 10i64.pow(tick as u32);
        let x = x_b(ms);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top_b}" y2="{}" stroke="#e5e5e5"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top_b + PANEL,
            top_b + PANEL + 15.0,
            human(ms)
        );
    }
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = y_b(share);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{:.0} %</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            share * 100.0
        );
    }
    for (strategy, sorted) in staleness {
        if sorted.is_empty() {
            continue;
        }
        // At most ~400 points: every step of the empirical CDF would be millions.
        let step = (sorted.len() / 400).max(1);
        let mut points: Vec<(f64, f64)> = (0..sorted.len())
            .step_by(step)
            .map(|i| (x_b(sorted[i]), y_b((i + 1) as f64 / sorted.len() as f64)))
            .collect();
        points.push((x_b(*sorted.last().expect("not empty")), y_b(1.0)));
        polyline(&mut out, &points, color(*strategy));
    }
    // Legend.
    for (i, strategy) in Strategy::ALL.iter().enumerate() {
        let y = top + 20.0 + i as f64 * 20.0;
        let x = LEFT + plot_w + 20.0;
        let _ = write!(
            out,
            r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            x + 24.0,
            color(*strategy),
            x + 30.0,
            y + 4.0,
            strategy.as_str()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_one_svg_with_a_line_per_strategy_and_panel() {
        let hours = vec![0u32, 5, 1000, 3];
        let stale = vec![50i64, 2_000, 40_000_000];
        let svg = svg(
            &[(Strategy::Poll, &hours), (Strategy::Webhook, &hours)],
            &[(Strategy::Poll, &stale), (Strategy::Webhook, &stale)],
            "test",
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(
            svg.contains("webhook+on-view"),
            "the legend names every strategy"
        );
    }
}
