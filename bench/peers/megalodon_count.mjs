#!/usr/bin/env node
// megalodon_count.mjs - megalodon peer client for the mastostream streaming benchmark.
//
// The harness runs (after `npm ci` in this folder):
//   node megalodon_count.mjs --server URL --token TOKEN --stream public --count N [--timeout SECS] [--verbose]
// and times the whole process (wall, CPU, max RSS) against mastostream's own client.
// megalodon's Mastodon client discovers the streaming URL via GET /api/v1/instance
// (urls.streaming_api) and connects to /api/v1/streaming?stream=...&access_token=... (it sends
// no subscribe message). Every event it emits (update, status_update, delete, notification,
// conversation; payloads parsed and converted by megalodon) is counted; after exactly N it stops.
// stdout: exactly one line {"client":"megalodon <version>","events":N}; exit 0.
// On error, parser error or timeout: message on stderr, exit 1. --verbose: per-type counts on stderr.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import generator from "megalodon";

// Peak resident memory of this process (VmHWM), which the harness reports.
function peakRssKib() {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return line ? Number.parseInt(line.slice(6), 10) : 0;
}

// megalodon logs reconnects with console.log; keep stdout for the result line only.
console.log = console.error;

const fail = (msg) => {
  process.stderr.write(`megalodon_count: ${msg}\n`);
  process.exit(1);
};

const { values: opts } = parseArgs({
  options: {
    server: { type: "string" },
    token: { type: "string" },
    stream: { type: "string", default: "public" },
    count: { type: "string" },
    timeout: { type: "string", default: "600" },
    verbose: { type: "boolean", default: false },
  },
});
const target = Number(opts.count);
if (!opts.server || !opts.token || !Number.isInteger(target) || target < 1) {
  fail("usage: --server URL --token TOKEN [--stream public] --count N [--timeout SECS] [--verbose]");
}
setTimeout(() => fail(`timed out after ${opts.timeout}s`), Number(opts.timeout) * 1000).unref();

const pkg = new URL("node_modules/megalodon/package.json", import.meta.url);
const version = JSON.parse(readFileSync(pkg, "utf8")).version;

const openers = {
  public: (c) => c.publicStreaming(),
  "public:local": (c) => c.localStreaming(),
  user: (c) => c.userStreaming(),
  direct: (c) => c.directStreaming(),
};
const open = openers[opts.stream] ?? fail(`unsupported --stream ${opts.stream}`);

const client = generator("mastodon", opts.server, opts.token);
const stream = await open(client).catch((e) => fail(e?.stack ?? String(e)));

const byType = {};
let events = 0;
const count = (type) => () => {
  if (events === target) return;
  byType[type] = (byType[type] ?? 0) + 1;
  if (++events < target) return;
  stream.stop(); // close(1000) and drop listeners
  if (opts.verbose) process.stderr.write(`megalodon_count: by type ${JSON.stringify(byType)}\n`);
  process.stdout.write(`${JSON.stringify({ client: `megalodon ${version}`, events, peak_rss_kib: peakRssKib() })}\n`);
  // megalodon keeps a 10 s ping timer alive; give the close frame a moment to go out, then exit.
  setTimeout(() => process.exit(0), 50);
};
for (const type of ["update", "status_update", "delete", "notification", "conversation"]) {
  stream.on(type, count(type));
}
stream.on("error", (e) => fail(`socket error: ${e?.message ?? e}`));
stream.on("parser-error", (e) => fail(`parser error: ${e?.message ?? e}`));
