//! `robots.txt`, as far as a firehose needs it: whether the group that
//! applies to `mastostream` (or, without one, to `*`) disallows a path.

/// Whether `robots` lets the agent named `agent` fetch `path`: the longest
/// matching `Allow` / `Disallow` rule of the group for the agent (or `*`)
/// wins, as RFC 9309 has it; an empty `Disallow` allows everything.
pub fn allows(robots: &str, agent: &str, path: &str) -> bool {
    let agent = agent.to_ascii_lowercase();
    // The rules of the groups that name the agent, else of the `*` groups.
    let mut named: Vec<(bool, String)> = Vec::new();
    let mut star: Vec<(bool, String)> = Vec::new();
    let mut group_agents: Vec<String> = Vec::new();
    let mut in_rules = false;
    for line in robots.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        match key.as_str() {
            "user-agent" => {
                if in_rules {
                    group_agents.clear();
                    in_rules = false;
                }
                group_agents.push(value.to_ascii_lowercase());
            }
            "allow" | "disallow" => {
                in_rules = true;
                let rule = (key == "allow", value.to_owned());
                if group_agents.iter().any(|a| a == &agent) {
                    named.push(rule.clone());
                }
                if group_agents.iter().any(|a| a == "*") {
                    star.push(rule);
                }
            }
            _ => {}
        }
    }
    let rules = if named.is_empty() { &star } else { &named };
    let mut best: Option<(usize, bool)> = None;
    for (allow, prefix) in rules {
        if prefix.is_empty() {
            // `Disallow:` with nothing: everything allowed.
            continue;
        }
        if path.starts_with(prefix.trim_end_matches('*'))
            && best.is_none_or(|(length, _)| prefix.len() > length)
        {
            best = Some((prefix.len(), *allow));
        }
    }
    best.is_none_or(|(_, allow)| allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_for_the_agent_decides_else_the_star_group() {
        let robots = "User-agent: *\nDisallow: /api/\n\nUser-agent: mastostream\nAllow: /api/v1/streaming\nDisallow: /api/v1/timelines\n";
        assert!(allows(
            robots,
            "mastostream",
            "/api/v1/streaming/public/local"
        ));
        assert!(!allows(robots, "mastostream", "/api/v1/timelines/public"));
        assert!(allows(robots, "mastostream", "/api/v2/instance"));
        assert!(!allows(robots, "otherbot", "/api/v2/instance"));
        assert!(allows("", "mastostream", "/api/v1/timelines/public"));
        assert!(allows("User-agent: *\nDisallow:\n", "mastostream", "/x"));
        let everything = "User-Agent: MastoStream\nDisallow: /\n";
        assert!(!allows(everything, "mastostream", "/api/v1/streaming"));
        assert!(allows(everything, "other", "/api/v1/streaming"));
    }
}
