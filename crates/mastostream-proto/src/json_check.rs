//! Checking that text is JSON without building anything: what an event
//! taken on demand pays on arrival. serde_json's `IgnoredAny` does the same
//! job token by token; this reader skips strings eight bytes a step (most
//! of an entity's bytes are strings) and keeps the nesting in a byte stack.
//! It accepts exactly what `serde_json::from_str::<IgnoredAny>` accepts
//! (tested against it), so a `\u` escape is checked for its four hex digits
//! and not for being half of a surrogate pair, and nesting has no limit.

use crate::json_string::next_special;

/// Whether `text` is one JSON value, with only JSON whitespace around it.
pub(crate) fn is_json(text: &str) -> bool {
    check(text.as_bytes()).is_some()
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
pub(crate) fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// `None` at the first byte that cannot be JSON.
fn check(bytes: &[u8]) -> Option<()> {
    // The open objects (`{`) and arrays (`[`), innermost last.
    let mut open = Vec::new();
    let mut at = skip_space(bytes, 0);
    'value: loop {
        at = match *bytes.get(at)? {
            b'{' => {
                at = skip_space(bytes, at + 1);
                if bytes.get(at) == Some(&b'}') {
                    at + 1
                } else {
                    open.push(b'{');
                    at = member_name(bytes, at)?;
                    continue 'value;
                }
            }
            b'[' => {
                at = skip_space(bytes, at + 1);
                if bytes.get(at) == Some(&b']') {
                    at + 1
                } else {
                    open.push(b'[');
                    continue 'value;
                }
            }
            b'"' => skip_string(bytes, at)?,
            b't' => literal(bytes, at, b"true")?,
            b'f' => literal(bytes, at, b"false")?,
            b'n' => literal(bytes, at, b"null")?,
            _ => skip_number(bytes, at)?,
        };
        // After a value: the next member or element, or closings.
        loop {
            at = skip_space(bytes, at);
            let Some(&container) = open.last() else {
                return (at == bytes.len()).then_some(());
            };
            match (container, *bytes.get(at)?) {
                (_, b',') => {
                    at = skip_space(bytes, at + 1);
                    if container == b'{' {
                        at = member_name(bytes, at)?;
                    }
                    continue 'value;
                }
                (b'{', b'}') | (b'[', b']') => {
                    open.pop();
                    at += 1;
                }
                _ => return None,
            }
        }
    }
}

/// A member's name and its colon; returns where its value starts.
fn member_name(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let at = skip_space(bytes, skip_string(bytes, at)?);
    (bytes.get(at) == Some(&b':')).then(|| skip_space(bytes, at + 1))
}

/// The string whose quote is at `at`; returns the index after its closing quote.
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        at = next_special(bytes, at)?;
        match bytes[at] {
            b'"' => return Some(at + 1),
            b'\\' => match *bytes.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                b'u' => {
                    let digits = bytes.get(at + 2..at + 6)?;
                    if !digits.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    at += 6;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    (bytes.get(at..at + word.len()) == Some(word)).then_some(at + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; returns the index after it.
fn skip_number(bytes: &[u8], mut at: usize) -> Option<usize> {
    let digits = |from: usize| {
        let count = bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (count > 0).then_some(from + count)
    };
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match bytes.get(at)? {
        b'0' => at + 1,
        b'1'..=b'9' => digits(at)?,
        _ => return None,
    };
    if bytes.get(at) == Some(&b'.') {
        at = digits(at + 1)?;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        at = digits(at)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;

    fn serde_says(text: &str) -> bool {
        serde_json::from_str::<IgnoredAny>(text).is_ok()
    }

    #[test]
    fn examples_agree_with_serde_json() {
        for text in [
            "{}",
            "[]",
            " {\"a\" : [1, -2.5e+3, true, false, null, \"x\\u00e9\\ud800\"]}\n",
            "0",
            "-0.0E-0",
            "\"\"",
            "[[[[]]],{}]",
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nulll",
            "[1 2]",
            "{}{}",
            "\"a\nb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "[\"a\\\"]",
            "{\"a\":1]",
            "[1}",
        ] {
            assert_eq!(is_json(text), serde_says(text), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(is_json(&deep), serde_says(&deep));
    }

    /// JSON text (not only valid): values built from pieces, then cut,
    /// spliced or with a byte changed.
    fn json_like() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "\"([a-z é\\n]|\\\\[\"\\\\/bfnrtx]|\\\\u[0-9a-fA-F]{4}){0,12}\"",
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z\"]{0,4}", inner), 0..5).prop_map(|v| {
                    let members: Vec<String> = v
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{ {} }}", members.join(" ,"))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Valid JSON, or JSON cut short, with a byte inserted, or with a
        /// character replaced.
        #[test]
        fn agrees_with_serde_json(
            text in json_like(),
            edit in prop::option::of((
                any::<prop::sample::Index>(),
                prop::sample::select(vec!["", ",", "]", "}", "\"", "\\", "0", " ", ":", "{", "[", "x"]),
                any::<bool>(),
            )),
        ) {
            let mut text = text;
            if let Some((index, put, replace)) = edit {
                let mut at = index.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let resume = match (put, text[at..].chars().next()) {
                    ("", _) => text.len(),
                    (_, Some(c)) if replace => at + c.len_utf8(),
                    _ => at,
                };
                text = format!("{}{put}{}", &text[..at], &text[resume..]);
            }
            prop_assert_eq!(is_json(&text), serde_says(&text), "{:?}", text);
        }

        #[test]
        fn agrees_on_any_short_text(text in "[\\[\\]{}\":,0-9.eE+\\- \\\\ntrufalsu]{0,16}") {
            prop_assert_eq!(is_json(&text), serde_says(&text), "{:?}", text);
        }
    }
}
