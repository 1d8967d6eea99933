#!/bin/sh
# Seeds the fuzz corpora from the repository's fixtures (real Mastodon payloads).
# Run from the repository root: sh fuzz/seed.sh
set -eu
fixtures=${FIXTURES:-fixtures}
mkdir -p fuzz/corpus/sse_decoder fuzz/corpus/ws_frame fuzz/corpus/event
for f in "$fixtures"/mastodon-4.6.5/sse-*.txt "$fixtures"/mastodon-recorded/sse-*.txt; do
    # A leading byte for the chunk size, then the captured body.
    { printf '\100'; cat "$f"; } > "fuzz/corpus/sse_decoder/$(basename "$f")"
done
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '%s' "$line" > "fuzz/corpus/ws_frame/frame-$n"
done < "$fixtures/mastodon-4.6.5/ws-multiplexed-frames.jsonl"
i=0
for f in "$fixtures"/entities/*.json; do
    # The first character picks the event name (see fuzz_targets/event.rs).
    for pick in 0 1 2 3 4 5 6 7 8 9; do
        i=$((i + 1))
        { printf '%s' "$pick"; cat "$f"; } > "fuzz/corpus/event/entity-$i"
    done
done
echo "seeded: $(ls fuzz/corpus/sse_decoder | wc -l) SSE bodies, $n frames, $i entities"
