#!/usr/bin/env python3
"""Writes replay.jsonl.gz: a few thousand varied publish bodies for the test server.

Built from the example entities in fixtures/entities at the repository root (Mastodon's
documented examples): statuses in several shapes (unicode, media, poll, card,
boost, quote, edit, content warning, local and remote authors, tags), deletes of
earlier statuses, notifications of several types and conversations. Ids rise
like Mastodon's snowflakes. Deterministic: run it again, get the same events.

The JSON lines are gzipped (level 9, no name, no time stamp, so the bytes
change only when the events do): the crate embeds the file in the
`mastostream` binary, and 7 MB of plain JSON was half of its size.
`zcat replay.jsonl.gz` shows the lines.

Usage: python3 make_replay.py ../../../fixtures/entities > replay.jsonl.gz
"""
import copy
import gzip
import json
import random
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "../../../fixtures/entities"


def load(name):
    with open(f"{src}/{name}") as f:
        return json.load(f)


status = load("status.json")
unicode_status = load("status_unicode.json")
edited = load("status_edited.json")
account = load("account.json")
media = load("media_attachment.json")
poll = load("poll.json")
card = load("preview_card.json")
tag = load("tag.json")
notification = load("notification.json")
conversation = load("conversation.json")
quote = load("quote.json")

def slim(acc):
    """Keeps an account's shape but not its long biography, like most accounts."""
    acc = copy.deepcopy(acc)
    acc["note"] = "<p>Posting about Rust, photos and the fediverse.</p>"
    acc["emojis"] = acc.get("emojis", [])[:1]
    acc["fields"] = acc.get("fields", [])[:1]
    return acc


account = slim(account)
status["account"] = slim(status["account"])
unicode_status["account"] = slim(unicode_status["account"])
notification["account"] = slim(notification["account"])
conversation["accounts"] = [slim(a) for a in conversation["accounts"]]

rng = random.Random(4242)
base_ms = 1_764_000_000_000
next_seq = 0


def snowflake():
    global next_seq
    next_seq += 1
    return str(((base_ms + next_seq * 37) << 16) + rng.randrange(1 << 16))


TAGS = ["rust", "mastodon", "fediverse", "café", "日本語", "photography", "Rust"]
TEXTS = [
    "Streaming from Rust ✨ café 漢字 🦀",
    "Ein schöner Tag am See 🌅",
    "Привет, федиверс!",
    "مرحبا بالعالم",
    "<script>alert(1)</script> is escaped &amp; safe",
    "Line one<br />line two<br />line three",
    "Just a plain ascii post about streaming APIs",
    "Emoji only: 🐘🐘🐘 👍🏽 👨‍👩‍👧",
]
AUTHORS = [
    ("1", "Gargron", "Gargron"),
    ("2", "alice", "alice"),
    ("3", "bob", "bob@remote.example"),
    ("23634", "noiob", "noiob@awoo.space"),
    ("5", "ユーザー", "ユーザー@jp.example"),
]


def make_status(kind):
    s = copy.deepcopy(unicode_status if kind == "unicode" else status)
    sid = snowflake()
    s["id"] = sid
    s["uri"] = f"https://example.com/statuses/{sid}"
    s["url"] = f"https://example.com/@x/{sid}"
    aid, username, acct = rng.choice(AUTHORS)
    s["account"] = copy.deepcopy(account if "@" in acct else status["account"])
    s["account"].update({"id": aid, "username": username, "acct": acct, "display_name": username})
    tags = rng.sample(TAGS, rng.randrange(0, 3))
    s["tags"] = [{"name": t, "url": f"https://example.com/tags/{t}"} for t in tags]
    text = rng.choice(TEXTS)
    s["content"] = "<p>" + text + "".join(f' <a href="https://example.com/tags/{t}">#{t}</a>' for t in tags) + "</p>"
    s["media_attachments"] = []
    s["poll"] = None
    s["card"] = None
    s["spoiler_text"] = ""
    s["visibility"] = "public"
    if kind == "media":
        s["media_attachments"] = [dict(copy.deepcopy(media), id=snowflake()) for _ in range(rng.randrange(1, 4))]
        s["sensitive"] = rng.random() < 0.3
    elif kind == "poll":
        s["poll"] = dict(copy.deepcopy(poll), id=snowflake())
    elif kind == "card":
        s["card"] = copy.deepcopy(card)
    elif kind == "cw":
        s["spoiler_text"] = "spoilers ⚠️"
    elif kind == "quote":
        s["quote"] = copy.deepcopy(quote)
    return s


events = []
recent = []
for i in range(2500):
    roll = rng.random()
    if roll < 0.55:
        kind = rng.choice(["plain", "unicode", "media", "poll", "card", "cw", "quote"])
        s = make_status(kind)
        recent.append(s)
        events.append({"event": "update", "payload": s})
    elif roll < 0.65:
        inner = make_status("plain")
        boost = make_status("plain")
        boost["content"] = ""
        boost["tags"] = []
        boost["reblog"] = inner
        events.append({"event": "update", "payload": boost})
    elif roll < 0.72 and recent:
        victim = recent.pop(rng.randrange(len(recent)))
        events.append({"event": "delete", "payload": victim["id"]})
    elif roll < 0.77 and recent:
        s = copy.deepcopy(rng.choice(recent))
        s["edited_at"] = edited.get("edited_at") or "2026-11-28T00:00:00.000Z"
        s["content"] = s["content"].replace("</p>", " (edited)</p>")
        events.append({"event": "status.update", "payload": s})
    elif roll < 0.93:
        n = copy.deepcopy(notification)
        n["id"] = str(40_000_000 + i)
        n["type"] = rng.choice(["mention", "favourite", "reblog", "follow", "poll", "update", "quote"])
        n["group_key"] = f"ungrouped-{n['id']}"
        if n["type"] == "follow":
            n["status"] = None
        else:
            n["status"] = make_status("plain")
        events.append({"stream": "user", "event": "notification", "payload": n})
    else:
        c = copy.deepcopy(conversation)
        c["id"] = str(500_000 + rng.randrange(50))
        c["last_status"] = make_status("plain")
        c["last_status"]["visibility"] = "direct"
        c["unread"] = rng.random() < 0.5
        events.append({"stream": "direct", "event": "conversation", "payload": c})

text = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events)
with gzip.GzipFile(filename="", mode="wb", compresslevel=9, mtime=0, fileobj=sys.stdout.buffer) as out:
    out.write(text.encode("utf-8"))
