//! The access token, kept out of every `Debug`, log line and error.

use std::fmt;

/// An OAuth access token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    /// The secret itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_printed() {
        let token = super::Token::new("s3cret-token");
        assert!(!format!("{token:?} {token} {:?}", Some(&token)).contains("s3cret"));
        assert_eq!(token.expose(), "s3cret-token");
    }
}
