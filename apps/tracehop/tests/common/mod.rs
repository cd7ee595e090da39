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
