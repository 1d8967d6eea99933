//! Decode + typed parse of a realistic Mastodon SSE stream, against a bare
//! `serde_json::from_slice` of the same payloads (the limit for any client
//! that parses every event).
//!
//! Run: `cargo bench -p mastostream --bench decode`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mastostream_proto::entities::{Announcement, Conversation, Notification, Status};
use mastostream_proto::{EventDecoder, SseDecoder, SseItem};

/// The captured fixture streams, concatenated and repeated to ~4 MB, in 1400-byte chunks.
fn stream() -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
    let mut one = Vec::new();
    for name in [
        "mastodon-4.6.5/sse-user.txt",
        "mastodon-4.6.5/sse-public.txt",
        "mastodon-4.6.5/sse-direct.txt",
        "mastodon-recorded/sse-user_direct__user.txt",
        "mastodon-recorded/sse-public_only_media__public_local.txt",
    ] {
        let bytes = std::fs::read(format!("{dir}/{name}")).expect("fixture");
        // Each body opens with `:)`; keep the events.
        one.extend_from_slice(bytes.strip_prefix(b":)\n").unwrap_or(&bytes));
    }
    let mut all = Vec::new();
    while all.len() < 4_000_000 {
        all.extend_from_slice(&one);
    }
    all
}

/// The (name, data) pairs of the stream, framed once, outside the timed loop.
fn payloads(stream: &[u8]) -> Vec<(String, String)> {
    let mut decoder = SseDecoder::new();
    decoder.feed(stream);
    std::iter::from_fn(|| decoder.poll_item())
        .filter_map(|item| match item {
            SseItem::Message(m) => Some((m.name, m.data)),
            _ => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let stream = stream();
    let payloads = payloads(&stream);
    eprintln!(
        "stream: {} bytes, {} events ({} bytes/event)",
        stream.len(),
        payloads.len(),
        stream.len() / payloads.len()
    );
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(20);

    group.bench_function("decode+typed", |b| {
        b.iter(|| {
            let mut decoder = EventDecoder::new();
            let mut events = 0usize;
            for chunk in stream.chunks(1400) {
                decoder.feed(chunk);
                while let Some(item) = decoder.poll() {
                    events += black_box(item).is_ok() as usize;
                }
            }
            events
        })
    });

    group.bench_function("sse-framing-only", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut events = 0usize;
            for chunk in stream.chunks(1400) {
                decoder.feed(chunk);
                while let Some(item) = decoder.poll_item() {
                    events += matches!(black_box(item), SseItem::Message(_)) as usize;
                }
            }
            events
        })
    });

    // The limit, twice: from bytes (serde_json checks UTF-8 as it goes) and from
    // an already-checked &str (what the decoder hands serde after its own check).
    group.bench_function("bare-serde-typed-slice", |b| {
        b.iter(|| {
            let mut events = 0usize;
            for (name, data) in &payloads {
                let data = data.as_bytes();
                let ok = match name.as_str() {
                    "update" | "status.update" => serde_json::from_slice::<Status>(data).is_ok(),
                    "notification" => serde_json::from_slice::<Notification>(data).is_ok(),
                    "conversation" => serde_json::from_slice::<Conversation>(data).is_ok(),
                    "announcement" => serde_json::from_slice::<Announcement>(data).is_ok(),
                    _ => serde_json::from_slice::<serde_json::Value>(data).is_ok(),
                };
                events += black_box(ok) as usize;
            }
            events
        })
    });

    group.bench_function("bare-serde-typed-str", |b| {
        b.iter(|| {
            let mut events = 0usize;
            for (name, data) in &payloads {
                let ok = match name.as_str() {
                    "update" | "status.update" => serde_json::from_str::<Status>(data).is_ok(),
                    "notification" => serde_json::from_str::<Notification>(data).is_ok(),
                    "conversation" => serde_json::from_str::<Conversation>(data).is_ok(),
                    "announcement" => serde_json::from_str::<Announcement>(data).is_ok(),
                    _ => serde_json::from_str::<serde_json::Value>(data).is_ok(),
                };
                events += black_box(ok) as usize;
            }
            events
        })
    });

    group.bench_function("bare-serde-value", |b| {
        b.iter(|| {
            let mut events = 0usize;
            for (_, data) in &payloads {
                events +=
                    black_box(serde_json::from_str::<serde_json::Value>(data).is_ok()) as usize;
            }
            events
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
