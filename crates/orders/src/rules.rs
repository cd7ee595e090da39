//! The one set of field rules of the order path.
//!
//! Each rule answers with the [`Problem`] it found; [`Problem::at`] names the field, so the
//! caller decides how a field is called (`customer_email`, `items[2].unit_price_cents`).

use std::borrow::Cow;

/// Longest id accepted (order, payment and event ids). Ids travel in AMQP properties
/// (`message_id`, `correlation_id`: at most 255 bytes) and in log lines.
pub const MAX_ID_LEN: usize = 128;

/// Longest e-mail address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// What is wrong with a value, whatever field holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// An id longer than [`MAX_ID_LEN`] bytes.
    #[error("must be at most 128 characters")]
    TooLong,
    /// A control character (NUL, newline, escape, ...) where text is expected.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Not an e-mail address.
    #[error("not a valid e-mail address")]
    Email,
    /// Not a 3-letter ISO 4217 code.
    #[error("must be a 3-letter ISO 4217 code such as USD")]
    Currency,
    /// A negative amount.
    #[error("must not be negative")]
    Negative,
}

impl Problem {
    /// Names the field that has this problem.
    pub fn at(self, field: impl Into<Cow<'static, str>>) -> Invalid {
        Invalid {
            field: field.into(),
            problem: self,
        }
    }
}

/// A field that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// The field, as the caller names it (`customer_email`, `items[0].unit_price_cents`).
    pub field: Cow<'static, str>,
    /// What is wrong with it.
    pub problem: Problem,
}

/// Checks an id (order, payment, event): not blank, at most [`MAX_ID_LEN`] bytes, no control
/// characters (ids end up in message properties and log lines).
pub fn id(value: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        Err(Problem::Empty)
    } else if value.len() > MAX_ID_LEN {
        Err(Problem::TooLong)
    } else if value.chars().any(char::is_control) {
        Err(Problem::ControlCharacter)
    } else {
        Ok(())
    }
}

/// Checks an e-mail address pragmatically: one `@`, a non-empty local part, a dotted domain
/// that neither starts nor ends with a dot, no whitespace and no control characters (a NUL or a
/// line break in an address is a header injection waiting for a mail server), at most
/// [`MAX_EMAIL_LEN`] bytes.
pub fn email(value: &str) -> Result<(), Problem> {
    let Some((local, domain)) = value.split_once('@') else {
        return Err(Problem::Email);
    };
    let valid = !local.is_empty()
        && value.len() <= MAX_EMAIL_LEN
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(()) } else { Err(Problem::Email) }
}

/// Checks a currency: three upper-case ASCII letters (ISO 4217 form; the code list itself is
/// the bank's business).
pub fn currency(value: &str) -> Result<(), Problem> {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Problem::Currency)
    }
}

/// Checks an amount in minor units: not negative (zero is a free order).
pub fn amount_cents(value: i64) -> Result<(), Problem> {
    if value < 0 {
        Err(Problem::Negative)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn email_rule() {
        for good in ["a@example.com", "first.last+tag@mail.example.org"] {
            assert_eq!(email(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a",
            "@x.com",
            "a@b",
            "a@.com",
            "a@x.com.",
            "a b@x.com",
            "a@b@c.com",
            "a\u{0}@b.co",
            "a@b.co\r\nBcc: x@y.z",
            "a\u{7f}@b.co",
            "a\u{85}@b.co",
        ] {
            assert_eq!(email(bad), Err(Problem::Email), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN));
        assert_eq!(email(&long), Err(Problem::Email));
    }

    #[test]
    fn currency_rule() {
        assert_eq!(currency("USD"), Ok(()));
        for bad in ["", "usd", "US", "USDT", "U$D", "ÜSD"] {
            assert_eq!(currency(bad), Err(Problem::Currency), "{bad}");
        }
    }

    #[test]
    fn amount_rule() {
        assert_eq!(amount_cents(0), Ok(()));
        assert_eq!(amount_cents(i64::MAX), Ok(()));
        assert_eq!(amount_cents(-1), Err(Problem::Negative));
    }

    #[test]
    fn id_rule() {
        assert_eq!(id("0b4c5a52-8c5e-4c1d-9b0e-1f2a3b4c5d6e"), Ok(()));
        assert_eq!(id(""), Err(Problem::Empty));
        assert_eq!(id(" \t"), Err(Problem::Empty));
        assert_eq!(id(&"x".repeat(MAX_ID_LEN)), Ok(()));
        assert_eq!(id(&"x".repeat(MAX_ID_LEN + 1)), Err(Problem::TooLong));
        assert_eq!(id("o-1\n"), Err(Problem::ControlCharacter));
    }

    #[test]
    fn invalid_names_the_field() {
        let e = Problem::Negative.at(format!("items[{}].unit_price_cents", 3));
        assert_eq!(
            e.to_string(),
            "items[3].unit_price_cents: must not be negative"
        );
        assert_eq!(Problem::Email.at("customer_email").field, "customer_email");
    }

    proptest! {
        #[test]
        fn no_accepted_email_holds_a_control_character(local in ".{0,10}", domain in ".{0,10}") {
            let address = format!("{local}@{domain}");
            if email(&address).is_ok() {
                prop_assert!(!address.chars().any(char::is_control));
                prop_assert!(!address.chars().any(char::is_whitespace));
            }
        }
    }
}
