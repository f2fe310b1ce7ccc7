//! The strategy simulator: the same claims workload played under polling, long polling,
//! on-view and webhooks, in virtual time with a seeded random stream, reporting what each costs
//! the insurer and how late the clinic learns. Pure: no clock, no I/O.

pub mod chart;
pub mod report;
pub mod rng;
pub mod sim;
pub mod workload;

use report::Report;
use sim::Strategy;
use workload::Params;

/// A whole run: one report per strategy, with the series the chart draws.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub claims: usize,
    pub reports: Vec<Report>,
    pub per_hour: Vec<(Strategy, Vec<u32>)>,
    /// Sorted staleness (ms) per strategy.
    pub staleness: Vec<(Strategy, Vec<i64>)>,
}

/// Generates the workload once and plays every strategy on it, in parallel; `progress` hears
/// how many claims each strategy has played, as they go.
pub fn simulate(
    params: &Params,
    strategies: &[Strategy],
    progress: &(dyn Fn(u64) + Sync),
) -> Outcome {
    let (claims, days) = workload::generate(params);
    let mut tallies: Vec<sim::Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = strategies
            .iter()
            .map(|strategy| {
                let (claims, days) = (&claims, &days);
                scope.spawn(move || {
                    sim::run_with_progress(*strategy, params, claims, days, progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a strategy's run does not panic"))
            .collect()
    });
    let reports = tallies.iter_mut().map(|t| Report::new(t, params)).collect();
    Outcome {
        claims: claims.len(),
        reports,
        per_hour: tallies
            .iter_mut()
            .map(|t| (t.strategy, std::mem::take(&mut t.per_hour)))
            .collect(),
        staleness: tallies
            .into_iter()
            .map(|t| (t.strategy, t.staleness))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::Kind;

    #[test]
    fn properties_hold_across_seeds() {
        for seed in 1..=3 {
            let params = Params {
                seed,
                claims_per_hour: 15.0,
                outage_probability: 0.1 * seed as f64,
                ..Params::default()
            };
            let outcome = simulate(&params, &Strategy::ALL, &|_| {});
            for report in &outcome.reports {
                let by_kind: u64 = report.requests.values().sum();
                assert_eq!(by_kind, report.total_requests, "totals add up");
                assert_eq!(report.claims as usize, outcome.claims);
                if matches!(
                    report.strategy,
                    Strategy::Poll | Strategy::OnView | Strategy::Webhook | Strategy::WebhookOnView
                ) {
                    assert_eq!(
                        report.never_learned, 0,
                        "{:?} learns every decision by the horizon (seed {seed})",
                        report.strategy
                    );
                }
            }
            let webhook = outcome
                .reports
                .iter()
                .find(|r| r.strategy == Strategy::Webhook)
                .unwrap();
            assert!(webhook.requests[Kind::Poll.as_str()] == 0);
            assert_eq!(
                simulate(&params, &Strategy::ALL, &|_| {}).reports,
                outcome.reports,
                "same seed, same report"
            );
        }
    }
}
