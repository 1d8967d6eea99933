//! Any event name and payload through the typed event and entity decoders:
//! an event (whose payload is kept as sent) or a malformed-event error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mastostream::proto::{Event, KNOWN_EVENTS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first character picks a known event name (or an unknown one).
    let mut chars = text.chars();
    let pick = chars.next().map_or(0, |c| c as usize);
    let payload = chars.as_str();
    let name = KNOWN_EVENTS
        .get(pick % (KNOWN_EVENTS.len() + 1))
        .copied()
        .unwrap_or("x.new");
    match Event::parse(name, Some(payload)) {
        Ok(event) => {
            if let Some(kept) = event.payload().as_str() {
                assert_eq!(kept, payload);
            }
        }
        Err(error) => assert!(error.is_malformed(), "{error:?}"),
    }
});
