//! The captured streams decode to the expected events, in any chunking.

use mastostream_proto::{EventDecoder, StreamItem};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

fn fixture_pairs() -> Vec<(String, Vec<u8>, Vec<serde_json::Value>)> {
    let mut pairs = Vec::new();
    for folder in ["mastodon-4.6.5", "mastodon-recorded"] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{DIR}/{folder}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("sse-") && n.ends_with(".txt"))
            .collect();
        names.sort();
        for name in names {
            let body = std::fs::read(format!("{DIR}/{folder}/{name}")).unwrap();
            let expected = std::fs::read_to_string(format!(
                "{DIR}/{folder}/{}",
                name.replace(".txt", ".expected.jsonl")
            ))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
            pairs.push((format!("{folder}/{name}"), body, expected));
        }
    }
    assert!(pairs.len() >= 10, "fixtures missing: {}", pairs.len());
    pairs
}

/// Decodes `body` fed in the given chunk sizes; returns events as JSON and the heartbeat count.
fn decode(body: &[u8], sizes: &[usize]) -> (Vec<serde_json::Value>, usize) {
    let mut decoder = EventDecoder::new();
    let (mut events, mut heartbeats) = (Vec::new(), 0);
    let mut rest = body;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        decoder.feed(&rest[..n]);
        rest = &rest[n..];
        while let Some(item) = decoder.poll() {
            match item.expect("fixtures are well-formed") {
                StreamItem::Event(event) => {
                    let mut line = Vec::new();
                    event.write_json(&mut line).unwrap();
                    events.push(serde_json::from_slice(&line).unwrap());
                }
                StreamItem::Heartbeat => heartbeats += 1,
                other => panic!("unexpected item {other:?}"),
            }
        }
    }
    (events, heartbeats)
}

#[test]
fn fixtures_decode_to_expected_events() {
    for (name, body, expected) in fixture_pairs() {
        let (events, heartbeats) = decode(&body, &[usize::MAX]);
        assert_eq!(events, expected, "{name}");
        assert!(heartbeats >= 1, "{name}: the `:)` greeting is a heartbeat");
    }
}

#[test]
fn fixtures_decode_byte_by_byte() {
    for (name, body, expected) in fixture_pairs() {
        assert_eq!(decode(&body, &[1]).0, expected, "{name}");
    }
}

#[test]
fn crlf_version_decodes_the_same() {
    for (name, body, expected) in fixture_pairs() {
        let text = String::from_utf8(body).unwrap().replace('\n', "\r\n");
        assert_eq!(decode(text.as_bytes(), &[7, 3]).0, expected, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every way of cutting the stream into feeds yields the same events.
    #[test]
    fn any_chunking_same_events(sizes in prop::collection::vec(1usize..400, 1..40), which in 0usize..10) {
        let pairs = fixture_pairs();
        let (name, body, expected) = &pairs[which % pairs.len()];
        let (events, _) = decode(body, &sizes);
        prop_assert_eq!(&events, expected, "{}", name);
    }

    /// Arbitrary bytes never panic and never grow the buffer past the limit.
    #[test]
    fn arbitrary_bytes_are_bounded(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..30)) {
        let mut decoder = EventDecoder::with_max_event_size(512);
        for chunk in &chunks {
            decoder.feed(chunk);
            prop_assert!(decoder.buffered_len() <= 512);
            while decoder.poll().is_some() {}
        }
    }

    /// Line-ending style and chunking do not change the decoded events of a synthetic stream.
    #[test]
    fn synthetic_streams_any_line_endings(
        events in prop::collection::vec(("[a-z.]{1,12}", "[ -~é🦀]{0,40}"), 1..10),
        ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        sizes in prop::collection::vec(1usize..20, 1..10),
    ) {
        let mut body = format!(":){ending}");
        for (name, data) in &events {
            body.push_str(&format!("event: {name}{ending}data: {data}{ending}{ending}:thump{ending}{ending}"));
        }
        let reference = decode(body.replace(ending, "\n").as_bytes(), &[usize::MAX]);
        let chunked = decode(body.as_bytes(), &sizes);
        prop_assert_eq!(chunked.1, events.len() + 1);
        prop_assert_eq!(reference, chunked);
    }
}
