//! Any bytes, in any chunking, through the SSE and event decoders: no panic,
//! and the bytes held never pass the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mastostream::proto::EventDecoder;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so splits land everywhere.
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let mut decoder = EventDecoder::with_max_event_size(LIMIT);
    for chunk in body.chunks(usize::from(split).max(1)) {
        decoder.feed(chunk);
        while let Some(item) = decoder.poll() {
            if let Err(error) = item {
                // Every error is about one event; the decoder goes on.
                assert!(error.is_malformed(), "{error:?}");
            }
        }
        assert!(
            decoder.buffered_len() <= LIMIT,
            "{}",
            decoder.buffered_len()
        );
    }
});
