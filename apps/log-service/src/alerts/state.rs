//! The alert state machine of Prometheus' `rules/alerting.go`, for one count per rule: a rule
//! whose count reaches its threshold becomes pending, fires once it has stayed active for
//! `for_seconds` (at once when that is 0), and resolves when the count falls below; a pending
//! rule that falls below goes back to inactive without ever being sent.

/// Where a rule stands after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Below the threshold (or disabled, or never evaluated).
    #[default]
    Inactive,
    /// At or above the threshold for less than `for_seconds`.
    Pending,
    /// At or above the threshold for at least `for_seconds`: the alert is sent.
    Firing,
}

impl State {
    /// Every state, for the rules-by-state gauge.
    pub const ALL: [State; 3] = [State::Inactive, State::Pending, State::Firing];

    /// The name the API and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
        }
    }

    /// Reads a stored name; anything unknown reads as inactive, so the next evaluation decides.
    pub fn parse(text: &str) -> State {
        match text {
            "pending" => State::Pending,
            "firing" => State::Firing,
            _ => State::Inactive,
        }
    }
}

/// A rule's evaluation state, stored with the rule so that a restart resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// The state itself.
    pub state: State,
    /// When the count first reached the threshold in the current run (Prometheus' `ActiveAt`).
    pub active_since_ns: Option<i64>,
    /// When the rule fired (Prometheus' `FiredAt`): the alert's `startsAt`.
    pub fired_at_ns: Option<i64>,
    /// The count of the last evaluation.
    pub last_value: Option<i64>,
    /// When the rule was last evaluated.
    pub last_evaluated_ns: Option<i64>,
    /// The trace of the newest matching log of the last evaluation that had one.
    pub trace_id: Option<String>,
}

/// What an evaluation changed, which decides what is sent to Alertmanager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed; a firing rule is sent again.
    Unchanged,
    /// Inactive to pending.
    Pending,
    /// To firing (from pending, or from inactive when `for_seconds` is 0).
    Fired,
    /// Pending back to inactive: it was never sent, so nothing is.
    Cleared,
    /// Firing to inactive: sent once more with `endsAt`.
    Resolved,
}

/// Advances `status` by one evaluation at `now_ns`: `active` is "the count reached the
/// threshold", `hold_ns` is `for_seconds`. The count and time of the evaluation are the
/// caller's to record.
pub fn step(status: &mut Status, active: bool, now_ns: i64, hold_ns: i64) -> Transition {
    if !active {
        let transition = match status.state {
            State::Inactive => Transition::Unchanged,
            State::Pending => Transition::Cleared,
            State::Firing => Transition::Resolved,
        };
        status.state = State::Inactive;
        status.active_since_ns = None;
        status.fired_at_ns = None;
        return transition;
    }
    let mut transition = Transition::Unchanged;
    if status.state == State::Inactive {
        status.state = State::Pending;
        status.active_since_ns = Some(now_ns);
        transition = Transition::Pending;
    }
    // As in Prometheus, the same evaluation that makes a rule pending fires it when `for` is 0.
    let active_since = status.active_since_ns.unwrap_or(now_ns);
    if status.state == State::Pending && now_ns.saturating_sub(active_since) >= hold_ns {
        status.state = State::Firing;
        status.fired_at_ns = Some(now_ns);
        transition = Transition::Fired;
    }
    transition
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn without_for_an_active_rule_fires_at_once_and_resolves_when_quiet() {
        let mut status = Status::default();
        assert_eq!(step(&mut status, true, 10 * S, 0), Transition::Fired);
        assert_eq!(status.state, State::Firing);
        assert_eq!(status.fired_at_ns, Some(10 * S));
        assert_eq!(step(&mut status, true, 25 * S, 0), Transition::Unchanged);
        assert_eq!(status.fired_at_ns, Some(10 * S), "startsAt stays put");
        assert_eq!(step(&mut status, false, 40 * S, 0), Transition::Resolved);
        assert_eq!(status, Status::default());
        assert_eq!(step(&mut status, false, 55 * S, 0), Transition::Unchanged);
    }

    #[test]
    fn with_for_a_rule_is_pending_until_held_long_enough() {
        let mut status = Status::default();
        assert_eq!(step(&mut status, true, 0, 30 * S), Transition::Pending);
        assert_eq!(
            step(&mut status, true, 15 * S, 30 * S),
            Transition::Unchanged
        );
        assert_eq!(status.state, State::Pending);
        assert_eq!(step(&mut status, true, 30 * S, 30 * S), Transition::Fired);
        assert_eq!(status.active_since_ns, Some(0));
        assert_eq!(status.fired_at_ns, Some(30 * S));
    }

    #[test]
    fn a_pending_rule_that_falls_below_is_cleared_not_resolved() {
        let mut status = Status::default();
        step(&mut status, true, 0, 60 * S);
        assert_eq!(
            step(&mut status, false, 15 * S, 60 * S),
            Transition::Cleared
        );
        assert_eq!(status.state, State::Inactive);
        assert_eq!(step(&mut status, true, 30 * S, 60 * S), Transition::Pending);
        assert_eq!(status.active_since_ns, Some(30 * S), "the hold restarts");
    }
}
