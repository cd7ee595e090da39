//! Server text made safe to print: log-service stores whatever its clients send, so a message, a
//! service name, a span name or an attribute can carry ESC, NUL or a bidi override that would
//! repaint, retitle or reorder the user's terminal if printed as it is. Every string from a server
//! passes through [`safe`] on its way to the human-readable output, and every `--json` document
//! through [`json`]; our own colour codes are added afterwards, so styling still works.

use std::borrow::Cow;

use serde::Serialize;

/// True for the characters a terminal acts on instead of showing: the C0 controls (TAB and newline
/// too, so that one log line stays one line), DEL, the C1 controls (U+009B is CSI on its own), and
/// the bidi embeddings, overrides and isolates, which reorder the rest of the line on screen.
fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Returns `text` with every character a terminal would act on written as a visible Rust-style
/// escape (`\u{1b}`), borrowing when there is none.
///
/// Backslashes are left alone: a literal `\u{1b}` in the data then reads like an escaped ESC, which
/// is harmless, whereas doubling every backslash would garble Windows paths and regexes in log
/// lines. The same choice makes the function idempotent, so text escaped twice is unchanged.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialises `value` as JSON (indented when `pretty`) that is safe on a terminal.
///
/// serde_json already writes the C0 controls as `\u0000`-style escapes, as JSON requires, but it
/// passes DEL, C1 controls and bidi overrides through raw; this writes those as `\uXXXX` escapes
/// too. Outside strings a JSON document is ASCII, so every such character found in the output is
/// inside a string, where the escape is valid: the document decodes to exactly the same value, and
/// scripts see no difference. (The C0 controls are left alone here: inside strings serde_json has
/// escaped them, and outside them they are the pretty layout's newlines.)
pub fn json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    let raw_in_json = |c: char| c >= '\u{7f}' && is_unsafe(c);
    if !text.contains(raw_in_json) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw_in_json(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one \uXXXX, no surrogates.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What a hostile client can store in log-service, one of each kind.
    const HOSTILE: &str =
        "a\u{0}b\u{1b}[31mred\u{7}\t\n\r\u{7f}\u{9b}2J\u{202e}evil\u{2066}x\u{2069}";

    #[test]
    fn control_and_bidi_characters_become_visible_escapes() {
        assert_eq!(safe("a\u{0}b\u{1b}[31mred"), "a\\u{0}b\\u{1b}[31mred");
        let out = safe(HOSTILE);
        assert_eq!(
            out,
            "a\\u{0}b\\u{1b}[31mred\\u{7}\\u{9}\\u{a}\\u{d}\\u{7f}\\u{9b}2J\\u{202e}evil\\u{2066}x\\u{2069}"
        );
        assert!(out.chars().all(|c| !is_unsafe(c)), "{out}");
        // One log line stays one line.
        assert_eq!(safe("first\nsecond").lines().count(), 1);
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "payment accepted",
            "naïve café 日本 🚀",
            r"C:\logs\a.txt",
            "",
        ] {
            assert!(matches!(safe(text), Cow::Borrowed(t) if t == text));
        }
        // Neighbours of the escaped ranges are printable and stay as they are.
        assert_eq!(safe(" ~\u{a0}\u{2029}\u{206a}"), " ~\u{a0}\u{2029}\u{206a}");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = safe(HOSTILE).into_owned();
        assert_eq!(safe(&once), once);
    }

    #[test]
    fn json_output_escapes_every_unsafe_character_and_decodes_to_the_same_value() {
        let value = json!({"message": HOSTILE, HOSTILE: [HOSTILE, 1, null]});
        for pretty in [true, false] {
            let text = json(&value, pretty).unwrap();
            assert!(text.chars().all(|c| !is_unsafe(c) || c == '\n'), "{text}");
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{0}'),
                "{text}"
            );
            assert!(
                text.contains("\\u001b[31mred") && text.contains("\\u202e"),
                "{text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
        // Layout is the wrapped formatter's: pretty is serde_json's own, compact has no spaces.
        let plain = json!({"a": [1, {"b": "c"}]});
        assert_eq!(
            json(&plain, true).unwrap(),
            serde_json::to_string_pretty(&plain).unwrap()
        );
        assert_eq!(json(&plain, false).unwrap(), plain.to_string());
    }

    #[test]
    fn serde_json_alone_escapes_c0_but_not_c1_or_bidi() {
        // Why `json` exists: the plain serializer leaves these for the terminal to act on.
        let plain = serde_json::to_string(&json!(HOSTILE)).unwrap();
        assert!(
            plain.contains("\\u0000") && plain.contains("\\u001b"),
            "{plain}"
        );
        assert!(
            plain.contains('\u{9b}') && plain.contains('\u{202e}'),
            "{plain}"
        );
    }
}
