#!/usr/bin/env node
// masto_count.mjs - masto.js peer client for the mastostream streaming benchmark.
//
// The harness runs (after `npm ci` in this folder):
//   node masto_count.mjs --server URL --token TOKEN --stream public --count N [--timeout SECS] [--verbose]
// and times the whole process (wall, CPU, max RSS) against mastostream's own client.
// It discovers the streaming URL via GET /api/v2/instance (masto's REST client), subscribes
// with masto's streaming client, counts every event masto.js yields (any event type, payloads
// parsed and camelCased by masto as usual), stops after exactly N, unsubscribes and closes.
// stdout: exactly one line {"client":"masto <version>","events":N}; exit 0.
// On error, short count or timeout: message on stderr, exit 1. --verbose: per-type counts on stderr.
//
// Note: masto 8 sleeps 1 s (its reconnect backoff) before its first WebSocket connect, so every
// run carries ~1 s of fixed start-up time. retry:false makes an unreachable server fail fast
// (masto still reconnects once per drop, re-subscribing); --timeout bounds any hang.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { createRestAPIClient, createStreamingAPIClient } from "masto";

// Peak resident memory of this process (VmHWM), which the harness reports.
function peakRssKib() {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return line ? Number.parseInt(line.slice(6), 10) : 0;
}

// masto 8 targets Node >= 22. On Node 20 it needs two globals; both shims are no-ops on Node 22.
// - wait-for-events.js reads WebSocket.OPEN / WebSocket.CLOSED from the global even when
//   `implementation` is given; Node 20 has no global WebSocket without --experimental-websocket.
globalThis.WebSocket ??= WebSocket;
// - the connector uses Promise.withResolvers (Node 22+).
Promise.withResolvers ??= function () {
  let resolve, reject;
  const promise = new this((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};

const fail = (msg) => {
  process.stderr.write(`masto_count: ${msg}\n`);
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
if (!opts.server || !Number.isInteger(target) || target < 1) {
  fail("usage: --server URL --token TOKEN [--stream public] --count N [--timeout SECS] [--verbose]");
}
setTimeout(() => fail(`timed out after ${opts.timeout}s`), Number(opts.timeout) * 1000).unref();

const version = createRequire(import.meta.url)("masto/package.json").version;

async function main() {
  const rest = createRestAPIClient({ url: opts.server, accessToken: opts.token });
  const instance = await rest.v2.instance.fetch();
  const streaming = createStreamingAPIClient({
    streamingApiUrl: instance.configuration.urls.streaming,
    accessToken: opts.token,
    implementation: WebSocket,
    retry: false,
  });

  // "public:local" -> streaming.public.local.subscribe()
  const channel = opts.stream.split(":").reduce((node, key) => node[key], streaming);
  const byType = {};
  let events = 0;
  try {
    for await (const event of channel.subscribe()) {
      byType[event.event] = (byType[event.event] ?? 0) + 1;
      // Cheap check that masto really parsed the payload (delete payloads stay id strings).
      const ok = event.event === "delete" ? typeof event.payload === "string" : event.payload != null;
      if (!ok) throw new Error(`unparsed ${event.event} payload: ${JSON.stringify(event.payload)}`);
      if (++events === target) break; // break -> masto sends {"type":"unsubscribe"}
    }
  } finally {
    streaming.close();
  }
  if (opts.verbose) process.stderr.write(`masto_count: by type ${JSON.stringify(byType)}\n`);
  if (events !== target) fail(`stream ended after ${events} of ${target} events`);
  process.stdout.write(`${JSON.stringify({ client: `masto ${version}`, events, peak_rss_kib: peakRssKib() })}\n`);
}

main().then(
  () => {
    // Do not wait on a slow close handshake; the result is already written.
    setTimeout(() => process.exit(0), 2000).unref();
  },
  (error) => fail(error?.stack ?? String(error)),
);
