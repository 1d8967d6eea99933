//! Property tests standing in for fuzzing in CI: arbitrary input to the
//! WebSocket frame decoder and the event/entity decoder never panics, and
//! mutations of real payloads are either parsed or reported as malformed.

use mastostream_proto::{Event, KNOWN_EVENTS, decode_ws_frame};
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

fn ws_frames() -> Vec<String> {
    std::fs::read_to_string(format!(
        "{FIXTURES}/mastodon-4.6.5/ws-multiplexed-frames.jsonl"
    ))
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

fn status() -> String {
    std::fs::read_to_string(format!("{FIXTURES}/entities/status.json")).unwrap()
}

/// Every known event name, plus an unknown one and an empty one.
fn names() -> Vec<&'static str> {
    let mut names = KNOWN_EVENTS.to_vec();
    names.extend(["some.future_event", ""]);
    names
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ws_decoder_takes_any_text(text in ".{0,300}") {
        let _ = decode_ws_frame(&text);
    }

    #[test]
    fn ws_decoder_takes_mutated_real_frames(which in 0usize..16, cut in 0usize..4000, insert in "[\\[\\]{}\":,\\\\a-z0-9 ]{0,8}") {
        let frames = ws_frames();
        let frame = &frames[which % frames.len()];
        let mut cut = cut.min(frame.len());
        while !frame.is_char_boundary(cut) {
            cut -= 1;
        }
        let mutated = format!("{}{insert}{}", &frame[..cut], &frame[cut..]);
        if let Err(error) = decode_ws_frame(&mutated) {
            prop_assert!(error.is_malformed(), "{error:?}");
        }
    }

    #[test]
    fn event_decoder_takes_any_data(which in 0usize..13, data in proptest::option::of(".{0,200}")) {
        if let Err(error) = Event::parse(names()[which], data.as_deref()) {
            prop_assert!(error.is_malformed());
        }
    }

    #[test]
    fn entity_decoder_takes_truncated_and_spliced_statuses(which in 0usize..13, cut in 0usize..6000, insert in "[\\[\\]{}\":,0-9a-z]{0,6}") {
        let status = status();
        let mut cut = cut.min(status.len());
        while !status.is_char_boundary(cut) {
            cut -= 1;
        }
        let mutated = format!("{}{insert}{}", &status[..cut], &status[cut..]);
        match Event::parse(names()[which], Some(&mutated)) {
            Ok(event) => prop_assert_eq!(event.payload().as_str(), Some(mutated.as_str())),
            Err(error) => prop_assert!(error.is_malformed(), "{error:?}"),
        }
    }
}
