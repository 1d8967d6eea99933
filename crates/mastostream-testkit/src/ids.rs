//! Snowflake-style ids, as Mastodon makes them: milliseconds since the epoch
//! shifted left 16 bits, plus a sequence. They are strings on the wire and
//! sort numerically, newest highest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How ids are written on the wire. Inside, every id is the snowflake
/// number; the format is how a server spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdFormat {
    /// Mastodon's: the number in decimal.
    #[default]
    Snowflake,
    /// GoToSocial's ULIDs (superseriousbusiness/gotosocial, internal/id/ulid.go):
    /// 26 Crockford base-32 characters, the first ten the milliseconds of
    /// the record's time; here the other sixteen carry the sequence. They
    /// sort as strings, and decode back.
    Ulid,
    /// Pleroma's and Akkoma's flake ids (the flake_id library they use,
    /// lib/flake_id.ex): the 128-bit `<<time::64, node::48, seq::16>>`
    /// (milliseconds, a node id, a sequence) in base 62 (`0-9A-Za-z`), with
    /// no padding: 18 characters for any time since 1973, sorting as strings.
    Flake,
    /// Iceshrimp.NET's (kaido2ki/Iceshrimp.NET,
    /// Iceshrimp.Backend/Core/Helpers/IdHelpers.cs): 16 lowercase
    /// characters, the first eight the milliseconds since 2000-01-01 in base
    /// 36 (padded with `0`), the last eight random Crockford base-32 in
    /// lowercase; here those carry the sequence. They sort as strings.
    Iceshrimp,
}

/// Iceshrimp.NET's epoch, 2000-01-01, in milliseconds since 1970.
const ICESHRIMP_EPOCH: u64 = 946_684_800_000;

/// Base 36 in lowercase.
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The node part of a flake id this server writes.
const FLAKE_NODE: u128 = 0x5e_7a_c0_ff_ee_01;

/// Base 62 as flake_id writes it.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Crockford's base-32 alphabet, as ULIDs use it.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl IdFormat {
    /// The wire form of `id`.
    pub fn write(self, id: u64) -> String {
        match self {
            IdFormat::Snowflake => id.to_string(),
            IdFormat::Ulid => {
                let value = (u128::from(id >> 16) << 80) | u128::from(id & 0xffff);
                (0..26)
                    .map(|i| CROCKFORD[((value >> (5 * (25 - i))) & 31) as usize] as char)
                    .collect()
            }
            IdFormat::Flake => {
                let mut value =
                    (u128::from(id >> 16) << 64) | (FLAKE_NODE << 16) | u128::from(id & 0xffff);
                let mut digits = Vec::new();
                while value > 0 {
                    digits.push(BASE62[(value % 62) as usize]);
                    value /= 62;
                }
                digits.iter().rev().map(|&d| d as char).collect()
            }
            IdFormat::Iceshrimp => {
                let mut time = (id >> 16).saturating_sub(ICESHRIMP_EPOCH);
                let mut text = [b'0'; 16];
                for slot in text[..8].iter_mut().rev() {
                    *slot = BASE36[(time % 36) as usize];
                    time /= 36;
                }
                let sequence = id & 0xffff;
                for (i, slot) in text[8..].iter_mut().enumerate() {
                    let digit = (sequence >> (5 * (7 - i))) & 31;
                    *slot = CROCKFORD[digit as usize].to_ascii_lowercase();
                }
                text.iter().map(|&b| b as char).collect()
            }
        }
    }

    /// The id a wire form stands for, if it is one of this format's.
    pub fn read(self, text: &str) -> Option<u64> {
        match self {
            IdFormat::Snowflake => text.trim().parse().ok(),
            IdFormat::Ulid => {
                let text = text.trim();
                if text.len() != 26 {
                    return None;
                }
                let mut value: u128 = 0;
                for c in text.bytes() {
                    let digit = CROCKFORD
                        .iter()
                        .position(|&d| d == c.to_ascii_uppercase())?;
                    value = (value << 5) | digit as u128;
                }
                let millis = u64::try_from(value >> 80).ok()?;
                let sequence = u64::try_from(value & ((1 << 80) - 1)).ok()?;
                (sequence <= 0xffff && millis < (1 << 48)).then_some((millis << 16) | sequence)
            }
            IdFormat::Flake => {
                let mut value: u128 = 0;
                for c in text.trim().bytes() {
                    let digit = BASE62.iter().position(|&d| d == c)?;
                    value = value.checked_mul(62)?.checked_add(digit as u128)?;
                }
                let millis = u64::try_from(value >> 64).ok()?;
                (millis < (1 << 48)).then_some((millis << 16) | (value & 0xffff) as u64)
            }
            IdFormat::Iceshrimp => {
                let text = text.trim().as_bytes();
                if text.len() != 16 {
                    return None;
                }
                let mut time: u64 = 0;
                for &c in &text[..8] {
                    let digit = BASE36.iter().position(|&d| d == c)?;
                    time = time * 36 + digit as u64;
                }
                let mut sequence: u64 = 0;
                for &c in &text[8..] {
                    let digit = CROCKFORD
                        .iter()
                        .position(|&d| d == c.to_ascii_uppercase())?;
                    sequence = (sequence << 5) | digit as u64;
                }
                let millis = time + ICESHRIMP_EPOCH;
                (sequence <= 0xffff && millis < (1 << 48)).then_some((millis << 16) | sequence)
            }
        }
    }
}

/// Hands out strictly increasing snowflake ids.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: AtomicU64,
    /// How they are spelled on the wire.
    pub format: IdFormat,
    /// Sequence numbers for ids dated in the past.
    dated: AtomicU64,
}

impl IdGenerator {
    /// A generator whose ids are written in `format`.
    pub fn with_format(format: IdFormat) -> IdGenerator {
        IdGenerator {
            format,
            ..IdGenerator::default()
        }
    }

    /// The wire form of `id`.
    pub fn write(&self, id: u64) -> String {
        self.format.write(id)
    }

    /// The id of a JSON id (a string in this server's format, or a number).
    pub fn read(&self, id: &serde_json::Value) -> Option<u64> {
        match id {
            serde_json::Value::String(text) => self.format.read(text),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// An id dated at `millis`, however far back: what GoToSocial gives a
    /// remote status from its `created_at` (internal/id, `NewULIDFromTime`).
    /// It may sort behind ids already handed out; its sequence keeps it
    /// apart from them.
    pub fn dated(&self, millis: u64) -> u64 {
        let sequence = self.dated.fetch_add(1, Ordering::Relaxed) & 0x7fff | 0x8000;
        (millis << 16) | sequence
    }

    /// The next id for a record made now.
    pub fn next(&self) -> u64 {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.next_at(millis)
    }

    /// The next id for a record made at `millis` since the epoch; never below
    /// an id already handed out.
    pub fn next_at(&self, millis: u64) -> u64 {
        let candidate = millis << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = candidate.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(seen) => last = seen,
            }
        }
    }

    /// Makes sure later ids sort after `id` (one given by a test).
    pub fn observe(&self, id: u64) {
        self.last.fetch_max(id, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_sort_like_their_ids_and_read_back() {
        let ids = [
            1u64 << 16,
            (1_764_000_000_000 << 16) | 7,
            (1_764_000_000_001 << 16),
        ];
        let written: Vec<String> = ids.iter().map(|&id| IdFormat::Ulid.write(id)).collect();
        for (text, &id) in written.iter().zip(&ids) {
            assert_eq!(text.len(), 26);
            assert_eq!(IdFormat::Ulid.read(text), Some(id));
        }
        assert!(written.windows(2).all(|w| w[0] < w[1]), "{written:?}");
        assert_eq!(IdFormat::Ulid.read("123"), None);
        let flakes: Vec<String> = ids
            .iter()
            .skip(1)
            .map(|&id| IdFormat::Flake.write(id))
            .collect();
        for (text, &id) in flakes.iter().zip(ids.iter().skip(1)) {
            assert_eq!(text.len(), 18, "{text}");
            assert_eq!(IdFormat::Flake.read(text), Some(id));
        }
        assert!(flakes[0] < flakes[1], "{flakes:?}");
        let iceshrimp: Vec<String> = ids
            .iter()
            .skip(1)
            .map(|&id| IdFormat::Iceshrimp.write(id))
            .collect();
        for (text, &id) in iceshrimp.iter().zip(ids.iter().skip(1)) {
            assert_eq!(text.len(), 16, "{text}");
            assert!(text.bytes().all(|b| !b.is_ascii_uppercase()), "{text}");
            assert_eq!(IdFormat::Iceshrimp.read(text), Some(id));
        }
        assert!(iceshrimp[0] < iceshrimp[1], "{iceshrimp:?}");
        // 2025-11-24T16:00:00Z is 817,228,800,000 ms after 2000-01-01:
        // "afgwd8g0" in base 36 (worked out apart, in Python).
        assert_eq!(
            IdFormat::Iceshrimp.write(1_764_000_000_000 << 16),
            "afgwd8g000000000"
        );
    }

    #[test]
    fn ids_increase_and_look_like_mastodons() {
        let ids = IdGenerator::default();
        let a = ids.next_at(1_700_000_000_000);
        let b = ids.next_at(1_700_000_000_000);
        let c = ids.next_at(1_600_000_000_000);
        assert!(a < b && b < c);
        assert_eq!(a.to_string().len(), 18);
        ids.observe(u64::MAX / 2);
        assert!(ids.next() > u64::MAX / 2);
    }
}
