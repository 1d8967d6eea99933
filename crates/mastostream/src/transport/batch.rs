//! Events as read off the wire, handed to the consumer unparsed.
//!
//! A connection task reads a chunk, splits it into events and sends them in
//! one [`Batch`]; the consumer parses each event into its type when it takes
//! it. The typed parse thus runs on the consumer's thread, where the entity
//! is also dropped (no allocator traffic between threads), and one channel
//! message, one wake-up, serves every event of a read.

use std::collections::VecDeque;

use crate::Error;
use mastostream_proto::{Event, StreamItem};

/// One item of a batch, before parsing.
#[derive(Debug)]
pub(crate) enum RawItem {
    /// An event: its name and data, as sent.
    Event { name: String, data: Option<String> },
    /// A heartbeat.
    Heartbeat,
}

/// The events of one read, in order, with the bytes they hold.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    items: VecDeque<RawItem>,
    bytes: usize,
    events: u64,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch of one event.
    #[cfg(feature = "websocket")]
    pub fn one(name: String, data: Option<String>) -> Batch {
        let mut batch = Batch::new();
        batch.push(RawItem::Event { name, data });
        batch
    }

    /// Adds an item at the end.
    pub fn push(&mut self, item: RawItem) {
        match &item {
            RawItem::Event { name, data } => {
                self.bytes += name.len() + data.as_ref().map_or(0, String::len);
                self.events += 1;
            }
            // Heartbeats count no bytes: of a run, one is kept (a body of
            // nothing but `:\n` held thousands per read, unbounded).
            RawItem::Heartbeat if matches!(self.items.back(), Some(RawItem::Heartbeat)) => {
                return;
            }
            RawItem::Heartbeat => {}
        }
        self.items.push_back(item);
    }

    /// Whether it holds nothing (more).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bytes of the events' names and data, as queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many events it was made with (heartbeats not counted).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Takes the next item and parses it: the whole entity, or with
    /// `on_demand` only a check of its JSON (the entity is built when the
    /// consumer asks for it).
    pub fn next_item(&mut self, on_demand: bool) -> Option<Result<StreamItem, Error>> {
        Some(match self.items.pop_front()? {
            RawItem::Event { name, data } if on_demand => {
                Event::on_demand(&name, data).map(StreamItem::Event)
            }
            RawItem::Event { name, data } => Event::parse_owned(&name, data).map(StreamItem::Event),
            RawItem::Heartbeat => Ok(StreamItem::Heartbeat),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mastostream_proto::EventKind;

    #[test]
    fn items_are_parsed_in_order_when_taken() {
        let mut batch = Batch::new();
        batch.push(RawItem::Heartbeat);
        batch.push(RawItem::Event {
            name: "delete".into(),
            data: Some("7".into()),
        });
        batch.push(RawItem::Event {
            name: "update".into(),
            data: Some("{not json".into()),
        });
        assert_eq!(
            batch.next_item(false).unwrap().unwrap(),
            StreamItem::Heartbeat
        );
        let Some(Ok(StreamItem::Event(event))) = batch.next_item(false) else {
            panic!("no event");
        };
        assert_eq!(event.kind().unwrap(), &EventKind::Delete("7".into()));
        assert!(batch.next_item(false).unwrap().unwrap_err().is_malformed());
        assert!(batch.is_empty());
        assert!(batch.next_item(false).is_none());
    }

    #[test]
    fn a_run_of_heartbeats_is_one() {
        let mut batch = Batch::new();
        for _ in 0..8192 {
            batch.push(RawItem::Heartbeat);
        }
        batch.push(RawItem::Event {
            name: "delete".into(),
            data: Some("7".into()),
        });
        batch.push(RawItem::Heartbeat);
        let items: Vec<_> = std::iter::from_fn(|| batch.next_item(false)).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap(), &StreamItem::Heartbeat);
        assert_eq!(items[2].as_ref().unwrap(), &StreamItem::Heartbeat);
    }

    #[test]
    fn on_demand_checks_json_now_and_builds_the_entity_later() {
        let mut batch = Batch::new();
        for data in ["{\"id\":\"1\"}", "{not json"] {
            batch.push(RawItem::Event {
                name: "update".into(),
                data: Some(data.into()),
            });
        }
        let Some(Ok(StreamItem::Event(event))) = batch.next_item(true) else {
            panic!("no event");
        };
        assert!(!event.is_typed());
        assert!(event.kind().unwrap_err().is_malformed());
        assert!(batch.next_item(true).unwrap().unwrap_err().is_malformed());
        assert!(batch.next_item(true).is_none());
    }
}
