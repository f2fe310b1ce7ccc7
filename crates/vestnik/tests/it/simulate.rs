//! `vestnik simulate` as a user runs it: JSON and CSV reports for every strategy, and the chart.

use std::process::Command;

fn simulate(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_vestnik"))
        .arg("simulate")
        .args([
            "--days",
            "5",
            "--tail-days",
            "45",
            "--claims-per-hour",
            "10",
        ])
        .args(args)
        .output()
        .expect("the vestnik binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn reports_every_strategy_in_json_csv_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("strategies.svg");
    let json: serde_json::Value = serde_json::from_str(&simulate(&[
        "--format",
        "json",
        "--chart",
        chart.to_str().unwrap(),
    ]))
    .unwrap();
    let reports = json.as_array().unwrap();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "poll",
            "poll-once",
            "long-poll",
            "on-view",
            "webhook",
            "webhook+on-view"
        ]
    );
    let webhook = &reports[4];
    assert_eq!(webhook["requests"]["poll"], 0);
    assert_eq!(
        webhook["staleness"]["max_ms"], 50,
        "no outages: every decision arrives after the delivery latency"
    );
    assert!(
        reports[0]["total_requests"].as_u64() > webhook["total_requests"].as_u64(),
        "polling costs more"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 12);
    let csv = simulate(&["--format", "csv", "--strategies", "poll,webhook"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("poll,"));
    assert_eq!(
        json,
        serde_json::from_str::<serde_json::Value>(&simulate(&["--format", "json"])).unwrap(),
        "same seed, same report"
    );
}
