//! Any text as a WebSocket frame: decoded or a malformed-event error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mastostream::proto::{decode_ws_envelope, decode_ws_frame};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = decode_ws_frame(text) {
        assert!(error.is_malformed(), "{error:?}");
    }
    if let Err(error) = decode_ws_envelope(text) {
        assert!(error.is_malformed(), "{error:?}");
    }
});
