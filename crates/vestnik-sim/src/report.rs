//! What a run says about each strategy: requests by kind, per claim and at the peak second;
//! long-poll connection time; staleness percentiles; how often a person saw an out-of-date
//! status; decisions never learned. Also the series the chart draws.

use crate::sim::{Kind, Strategy, Tally};
use crate::workload::{DAY, HOUR, MINUTE, Params, SECOND};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Staleness {
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub strategy: Strategy,
    pub claims: u64,
    pub requests: BTreeMap<&'static str, u64>,
    /// Everything the insurer handles for this strategy: status requests and webhook POSTs.
    pub total_requests: u64,
    pub requests_per_claim: f64,
    pub long_poll_connection_seconds: f64,
    pub peak_per_second: u32,
    /// When the peak second starts (local time on the simulated calendar).
    pub peak_at: String,
    pub staleness: Option<Staleness>,
    pub views: u64,
    pub stale_view_share: f64,
    pub decided: u64,
    pub never_learned: u64,
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `2026-03-03 03:00:12` for a time on the simulated calendar.
pub fn clock(params: &Params, t: i64) -> String {
    let day = params
        .start
        .checked_add(jiff::Span::new().days(t.div_euclid(DAY)))
        .unwrap_or(params.start);
    let within = t.rem_euclid(DAY);
    format!(
        "{day} {:02}:{:02}:{:02}",
        within / HOUR,
        within % HOUR / MINUTE,
        within % MINUTE / SECOND
    )
}

impl Report {
    pub fn new(tally: &mut Tally, params: &Params) -> Self {
        tally.staleness.sort_unstable();
        let staleness = (!tally.staleness.is_empty()).then(|| Staleness {
            p50_ms: percentile(&tally.staleness, 0.50),
            p95_ms: percentile(&tally.staleness, 0.95),
            p99_ms: percentile(&tally.staleness, 0.99),
            max_ms: *tally.staleness.last().expect("not empty"),
        });
        let (peak_second, peak) = tally
            .per_second
            .iter()
            .enumerate()
            .max_by_key(|(second, count)| (**count, std::cmp::Reverse(*second)))
            .map_or((0, 0), |(s, c)| (s, *c));
        let total = tally.total();
        Self {
            strategy: tally.strategy,
            claims: tally.claims,
            requests: Kind::ALL
                .iter()
                .map(|k| (k.as_str(), tally.count(*k)))
                .collect(),
            total_requests: total,
            requests_per_claim: total as f64 / tally.claims.max(1) as f64,
            long_poll_connection_seconds: tally.long_poll_held_ms as f64 / 1_000.0,
            peak_per_second: peak,
            peak_at: clock(params, peak_second as i64 * SECOND),
            staleness,
            views: tally.views,
            stale_view_share: tally.stale_views as f64 / tally.views.max(1) as f64,
            decided: tally.decided,
            never_learned: tally.never_learned,
        }
    }
}

/// A duration as people read it.
pub fn human(ms: i64) -> String {
    match ms {
        ms if ms < SECOND => format!("{ms} ms"),
        ms if ms < MINUTE => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < HOUR => format!("{:.0} min", ms as f64 / MINUTE as f64),
        ms if ms < DAY => format!("{:.1} h", ms as f64 / HOUR as f64),
        ms => format!("{:.1} d", ms as f64 / DAY as f64),
    }
}

/// The aligned terminal table.
pub fn table(reports: &[Report]) -> String {
    let header = [
        "strategy",
        "requests",
        "per claim",
        "peak/s",
        "peak at",
        "stale p50",
        "p95",
        "p99",
        "max",
        "stale views",
        "never learned",
        "long-poll conn·s",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let s = |f: fn(&Staleness) -> i64| {
                r.staleness
                    .as_ref()
                    .map_or("—".to_owned(), |st| human(f(st)))
            };
            vec![
                r.strategy.as_str().to_owned(),
                r.total_requests.to_string(),
                format!("{:.2}", r.requests_per_claim),
                r.peak_per_second.to_string(),
                r.peak_at.clone(),
                s(|st| st.p50_ms),
                s(|st| st.p95_ms),
                s(|st| st.p99_ms),
                s(|st| st.max_ms),
                format!("{:.1} %", r.stale_view_share * 100.0),
                r.never_learned.to_string(),
                format!("{:.0}", r.long_poll_connection_seconds),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || i == 4 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// One CSV line per strategy.
pub fn csv(reports: &[Report]) -> String {
    let mut out = String::from(
        "strategy,claims,total_requests,requests_per_claim,poll,long_poll,sweep,view,timer,webhook_post,\
         long_poll_connection_seconds,peak_per_second,peak_at,staleness_p50_ms,staleness_p95_ms,staleness_p99_ms,\
         staleness_max_ms,views,stale_view_share,decided,never_learned\n",
    );
    for r in reports {
        let st = |f: fn(&Staleness) -> i64| {
            r.staleness
                .as_ref()
                .map(|s| f(s).to_string())
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "{},{},{},{:.4},{},{},{},{},{},{},{:.1},{},{},{},{},{},{},{},{:.6},{},{}\n",
            r.strategy.as_str(),
            r.claims,
            r.total_requests,
            r.requests_per_claim,
            r.requests["poll"],
            r.requests["long_poll"],
            r.requests["sweep"],
            r.requests["view"],
            r.requests["timer"],
            r.requests["webhook_post"],
            r.long_poll_connection_seconds,
            r.peak_per_second,
            r.peak_at,
            st(|s| s.p50_ms),
            st(|s| s.p95_ms),
            st(|s| s.p99_ms),
            st(|s| s.max_ms),
            r.views,
            r.stale_view_share,
            r.decided,
            r.never_learned,
        ));
    }
    out
}
