//! Checks shared by the tracehop integration tests.

/// Asserts that `stderr` is an error the way users should see it: one line starting with
/// `tracehop: `, no panic, no backtrace. Returns the line.
pub fn assert_one_line_error(stderr: &str) -> String {
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "not one line: {line:?}");
    assert!(line.starts_with("tracehop: "), "{line:?}");
    assert!(
        !line.contains("panicked") && !line.contains("backtrace"),
        "{line:?}"
    );
    line.to_owned()
}

/// Asserts that a `tracehop load --json` report adds up: answered = the sum of the status
/// counts, sent = answered + transport errors, at least `min_created` 201s and no errors.
pub fn assert_load_report_adds_up(report: &serde_json::Value, min_created: u64) {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    let by_status: u64 = report["status"]
        .as_object()
        .expect("status")
        .values()
        .map(n)
        .sum();
    assert_eq!(n(&report["answered"]), by_status, "{report:#}");
    assert_eq!(
        n(&report["sent"]),
        by_status + n(&report["transport_errors"]),
        "{report:#}"
    );
    assert!(n(&report["status"]["201"]) >= min_created, "{report:#}");
    assert_eq!(n(&report["errors"]), 0, "{report:#}");
}
