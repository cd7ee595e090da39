//! SQL text both backends build the same way, apart from how their dialect numbers parameters.

/// How a dialect writes the n-th query parameter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Placeholders {
    /// PostgreSQL's `$1`.
    Dollar,
    /// SQLite's `?1`.
    Question,
}

impl Placeholders {
    /// The placeholder of parameter `n` (from 1).
    pub(super) fn nth(self, n: usize) -> String {
        match self {
            Placeholders::Dollar => format!("${n}"),
            Placeholders::Question => format!("?{n}"),
        }
    }

    /// The placeholders of parameters `first..=last`, comma separated.
    pub(super) fn list(self, first: usize, last: usize) -> String {
        (first..=last)
            .map(|n| self.nth(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A WHERE clause built up condition by condition, with its parameters in order; `V` is the
/// backend's parameter type.
pub(super) struct Conditions<V> {
    sql: String,
    params: Vec<V>,
    placeholders: Placeholders,
}

impl<V> Conditions<V> {
    /// The clause `sql`, whose parameters so far are `params`.
    pub(super) fn new(placeholders: Placeholders, sql: &str, params: Vec<V>) -> Self {
        Conditions {
            sql: sql.to_owned(),
            params,
            placeholders,
        }
    }

    /// Appends `clause`, each `?` of which takes the next of `values`, numbered after the
    /// parameters before it.
    pub(super) fn push(&mut self, clause: &str, values: impl IntoIterator<Item = V>) {
        let mut pieces = clause.split('?');
        self.sql.push_str(pieces.next().unwrap_or_default());
        for (piece, value) in pieces.zip(values) {
            self.params.push(value);
            self.sql.push_str(&self.placeholders.nth(self.params.len()));
            self.sql.push_str(piece);
        }
    }

    /// Appends a condition that takes no parameter.
    pub(super) fn push_sql(&mut self, clause: &str) {
        self.sql.push_str(clause);
    }

    /// The clause and its parameters.
    pub(super) fn finish(self) -> (String, Vec<V>) {
        (self.sql, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_question_mark_takes_the_next_number_in_the_dialect() {
        for (placeholders, expected) in [
            (
                Placeholders::Dollar,
                "tenant = $1 AND a = $2 AND b BETWEEN $3 AND $4 AND c",
            ),
            (
                Placeholders::Question,
                "tenant = ?1 AND a = ?2 AND b BETWEEN ?3 AND ?4 AND c",
            ),
        ] {
            let first = placeholders.nth(1);
            let mut conditions =
                Conditions::new(placeholders, &format!("tenant = {first}"), vec![0]);
            conditions.push(" AND a = ?", [1]);
            conditions.push(" AND b BETWEEN ? AND ?", [2, 3]);
            conditions.push_sql(" AND c");
            assert_eq!(conditions.finish(), (expected.to_owned(), vec![0, 1, 2, 3]));
        }
        assert_eq!(Placeholders::Dollar.list(3, 5), "$3, $4, $5");
    }
}
