//! JSON strings read by hand, for the WebSocket frame's `payload`: a whole
//! entity encoded a second time, where every quote of the entity is an
//! escape. serde_json reads such a string one escape at a time (a search
//! call per escape); this reader looks at eight bytes per step and copies
//! the stretches between escapes whole, which is what makes a frame cheap.

use std::borrow::Cow;

/// Why a string could not be read. The texts read as serde_json's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringError {
    /// No closing quote.
    Unterminated,
    /// A raw control character (below U+0020) inside the string.
    ControlCharacter,
    /// A backslash followed by something JSON does not allow.
    InvalidEscape,
    /// A `\u` escape that is not four hex digits or leaves a surrogate unpaired.
    InvalidUnicode,
}

impl std::fmt::Display for StringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StringError::Unterminated => "EOF while parsing a string",
            StringError::ControlCharacter => "control character found while parsing a string",
            StringError::InvalidEscape => "invalid escape",
            StringError::InvalidUnicode => "invalid unicode code point",
        })
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit marks the first byte of `word` (little
/// endian) that ends a plain stretch: `"`, `\` or a control character.
/// Bits above the lowest may be false alarms (borrows); only the lowest is used.
fn special_bytes(word: u64) -> u64 {
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

/// The index of the first `"`, `\` or control character at or after `from`.
pub(crate) fn next_special(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mask = special_bytes(word);
        if mask != 0 {
            return Some(from + mask.trailing_zeros() as usize / 8);
        }
        from += 8;
    }
    bytes[from..]
        .iter()
        .position(|&b| is_special(b))
        .map(|i| from + i)
}

fn is_special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Reads the JSON string whose opening quote is at `open` in `text`;
/// returns its value (borrowed when it has no escapes) and the index just
/// past its closing quote.
pub(crate) fn read_string(text: &str, open: usize) -> Result<(Cow<'_, str>, usize), StringError> {
    let bytes = text.as_bytes();
    debug_assert_eq!(bytes.get(open), Some(&b'"'));
    let first = next_special(bytes, open + 1).ok_or(StringError::Unterminated)?;
    match bytes[first] {
        // Every special byte is ASCII, so `first` is a char boundary.
        b'"' => return Ok((Cow::Borrowed(&text[open + 1..first]), first + 1)),
        b'\\' => {}
        _ => return Err(StringError::ControlCharacter),
    }
    let mut out = Vec::with_capacity(bytes.len() - open);
    out.extend_from_slice(&bytes[open + 1..first]);
    let mut at = unescape(bytes, first + 1, &mut out)?;
    loop {
        // Eight bytes a step, copied whole (a fixed-size copy is a single
        // store) and cut back to the plain bytes before a special one.
        while let Some(chunk) = bytes.get(at..at + 8) {
            let chunk: [u8; 8] = chunk.try_into().unwrap_or([b'"'; 8]);
            let mask = special_bytes(u64::from_le_bytes(chunk));
            out.extend_from_slice(&chunk);
            if mask != 0 {
                let plain = mask.trailing_zeros() as usize / 8;
                out.truncate(out.len() - 8 + plain);
                at += plain;
                break;
            }
            at += 8;
        }
        if bytes.len() - at < 8 {
            while let Some(&byte) = bytes.get(at).filter(|&&b| !is_special(b)) {
                out.push(byte);
                at += 1;
            }
        }
        match bytes.get(at) {
            Some(b'"') => {
                // The bytes are the text's own, in order, with only ASCII
                // escapes replaced by whole characters: valid UTF-8.
                let value = String::from_utf8(out).map_err(|_| StringError::InvalidUnicode)?;
                return Ok((Cow::Owned(value), at + 1));
            }
            // An entity encoded twice escapes mostly quotes and backslashes.
            Some(b'\\') => match bytes.get(at + 1) {
                Some(&letter @ (b'"' | b'\\')) => {
                    out.push(letter);
                    at += 2;
                }
                _ => at = unescape(bytes, at + 1, &mut out)?,
            },
            Some(_) => return Err(StringError::ControlCharacter),
            None => return Err(StringError::Unterminated),
        }
    }
}

/// Appends the escape whose letter is at `at` to `out`; returns the index after it.
fn unescape(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, StringError> {
    let letter = *bytes.get(at).ok_or(StringError::Unterminated)?;
    let plain = match letter {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unescape_unicode(bytes, at + 1, out),
        _ => return Err(StringError::InvalidEscape),
    };
    out.push(plain);
    Ok(at + 1)
}

/// The four hex digits at `at`, as a number.
fn hex4(bytes: &[u8], at: usize) -> Result<u32, StringError> {
    let digits = bytes.get(at..at + 4).ok_or(StringError::Unterminated)?;
    digits.iter().try_fold(0u32, |n, &d| {
        let digit = (d as char).to_digit(16).ok_or(StringError::InvalidEscape)?;
        Ok(n * 16 + digit)
    })
}

/// A `\u` escape (the digits at `at`), with the second half of a surrogate pair.
fn unescape_unicode(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, StringError> {
    let first = hex4(bytes, at)?;
    let (code, next) = match first {
        0xD800..=0xDBFF => {
            if bytes.get(at + 4..at + 6) != Some(b"\\u") {
                return Err(StringError::InvalidUnicode);
            }
            let second = hex4(bytes, at + 6)?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return Err(StringError::InvalidUnicode);
            }
            (
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00),
                at + 10,
            )
        }
        0xDC00..=0xDFFF => return Err(StringError::InvalidUnicode),
        _ => (first, at + 4),
    };
    let code = char::from_u32(code).ok_or(StringError::InvalidUnicode)?;
    out.extend_from_slice(code.encode_utf8(&mut [0; 4]).as_bytes());
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(json: &str) -> Result<(Cow<'_, str>, usize), StringError> {
        read_string(json, 0)
    }

    #[test]
    fn plain_strings_are_borrowed_and_escapes_decoded() {
        let (value, end) = read(r#""abc" tail"#).unwrap();
        assert!(matches!(value, Cow::Borrowed("abc")));
        assert_eq!(end, 5);
        let (value, _) = read(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00é""#).unwrap();
        assert_eq!(value, "a\"b\\c/d\u{8}\u{c}\n\r\té😀é");
    }

    #[test]
    fn bad_strings_are_refused() {
        for (json, error) in [
            (r#""abc"#, StringError::Unterminated),
            ("\"a\\", StringError::Unterminated),
            ("\"a\nb\"", StringError::ControlCharacter),
            (r#""\x""#, StringError::InvalidEscape),
            (r#""\u12g4""#, StringError::InvalidEscape),
            (r#""\ud83d""#, StringError::InvalidUnicode),
            (r#""\ud83d\u0041""#, StringError::InvalidUnicode),
            (r#""\ude00""#, StringError::InvalidUnicode),
            (r#""\u12"#, StringError::Unterminated),
        ] {
            assert_eq!(read(json).unwrap_err(), error, "{json}");
        }
    }

    proptest! {
        /// Whatever serde_json makes of a string, this reader makes the same:
        /// the value, the end, and whether it is refused.
        #[test]
        fn agrees_with_serde_json(body in r#"[a-z"\\/\x00-\x1f\u{e9}\u{1F600} ]{0,40}|(\\u[0-9a-fA-F]{4}|\\[nrtbf"/\\]|[a-z\u{e9} ]){0,20}"#, tail in "[,}]?") {
            let json = format!("\"{body}\"");
            let ours = read_string(&format!("{json}{tail}"), 0).map(|(v, end)| (v.into_owned(), end));
            match serde_json::from_str::<String>(&json) {
                Ok(theirs) => prop_assert_eq!(ours, Ok((theirs, json.len()))),
                // An unescaped quote inside ends our string early: where
                // it ended, serde_json must agree on the string read.
                Err(_) => {
                    if let Ok((value, end)) = ours {
                        prop_assert!(end < json.len());
                        prop_assert_eq!(serde_json::from_str::<String>(&json[..end]).ok(), Some(value));
                    }
                }
            }
        }

        /// Any text that serde_json can write as a string reads back unchanged.
        #[test]
        fn reads_back_what_serde_json_writes(value in "\\PC{0,60}|[\\x00-\\x7f]{0,60}") {
            let json = serde_json::to_string(&value).unwrap();
            let (read_back, end) = read(&json).unwrap();
            prop_assert_eq!(read_back.as_ref(), value.as_str());
            prop_assert_eq!(end, json.len());
        }
    }
}
