//! The instances to follow: hosts given as arguments, or a file of one
//! instance a line, each optionally with where its token is.

/// One instance to follow.
#[derive(Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its base URL (`https://host`, or as given).
    pub url: String,
    /// Its host (and port), as output lines name it.
    pub host: String,
    /// Its access token, if one was given.
    pub token: Option<String>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Instance {
    /// An instance from a host (`mastodon.social`) or a URL
    /// (`http://127.0.0.1:8080`), without a token.
    pub fn parse(text: &str) -> Result<Instance, String> {
        let text = text.trim().trim_end_matches('/');
        if text.is_empty() {
            return Err("an empty instance".into());
        }
        let url = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&url)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("not a host or URL: {text:?}"));
        }
        Ok(Instance {
            url,
            host,
            token: None,
        })
    }
}

/// The instances of a list: one a line, `#` starting a comment; after the
/// host, optionally where its token is: `$NAME` (an environment variable)
/// or a file's path. `env` reads a variable, `read` a file.
pub fn parse_list(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<Instance>, String> {
    let mut instances = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = |message: String| format!("line {}: {message}", number + 1);
        let mut words = line.split_whitespace();
        let mut instance = Instance::parse(words.next().unwrap_or_default()).map_err(at)?;
        if let Some(source) = words.next() {
            let token = match source.strip_prefix('$') {
                Some(name) => {
                    env(name).ok_or_else(|| at(format!("the variable {name} is not set")))?
                }
                None => read(source).map_err(|e| at(format!("the token file {source}: {e}")))?,
            };
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(at(format!("the token in {source} is empty")));
            }
            instance.token = Some(token);
        }
        if let Some(extra) = words.next() {
            return Err(at(format!("unexpected {extra:?} after the token source")));
        }
        instances.push(instance);
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_with_tokens_from_the_environment_and_files() {
        let text = "# followed\nmastodon.social\n\nhttp://127.0.0.1:8080/ $TOKEN_A\nfosstodon.org /run/t  # a file\n";
        let env = |name: &str| (name == "TOKEN_A").then(|| "secret-a".to_owned());
        let read = |path: &str| {
            if path == "/run/t" {
                Ok("secret-b\n".to_owned())
            } else {
                Err("missing".to_owned())
            }
        };
        let list = parse_list(text, env, read).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].url, "https://mastodon.social");
        assert_eq!(list[0].token, None);
        assert_eq!(list[1].host, "127.0.0.1:8080");
        assert_eq!(list[1].token.as_deref(), Some("secret-a"));
        assert_eq!(list[2].token.as_deref(), Some("secret-b"));
        assert!(!format!("{:?}", list[1]).contains("secret"));
        let unset = parse_list("a.example $NOPE", env, read).unwrap_err();
        assert!(
            unset.contains("line 1") && unset.contains("NOPE"),
            "{unset}"
        );
        assert!(parse_list("a.example x y", env, read).is_err());
    }
}
