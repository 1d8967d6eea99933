use std::sync::{Arc, Mutex};

use super::*;

fn event(name: &str, data: &str) -> Event {
    Event::parse(name, Some(data)).unwrap()
}

fn status_json() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/entities/status.json"
    ))
    .unwrap()
}

#[derive(Default)]
struct Recorder(Vec<String>);

impl StreamListener for Recorder {
    fn on_update(&mut self, status: Status) {
        self.0.push(format!("update {}", status.id));
    }
    fn on_delete(&mut self, id: String) {
        self.0.push(format!("delete {id}"));
    }
    fn on_status_update(&mut self, status: Status) {
        self.0.push(format!("status.update {}", status.id));
    }
    fn on_announcement_delete(&mut self, id: String) {
        self.0.push(format!("announcement.delete {id}"));
    }
    fn on_filters_changed(&mut self) {
        self.0.push("filters_changed".into());
    }
    fn on_notifications_merged(&mut self) {
        self.0.push("notifications_merged".into());
    }
    fn on_unknown_event(&mut self, name: &str, payload: Payload) {
        self.0
            .push(format!("unknown {name} {:?}", payload.as_str()));
    }
    fn handle_heartbeat(&mut self) {
        self.0.push("heartbeat".into());
    }
}

#[test]
fn trait_dispatch_calls_the_typed_method() {
    let mut recorder = Recorder::default();
    dispatch(event("update", &status_json()), &mut recorder);
    dispatch(event("status.update", &status_json()), &mut recorder);
    dispatch(event("delete", "9"), &mut recorder);
    dispatch(event("announcement.delete", "8"), &mut recorder);
    dispatch(event("filters_changed", "undefined"), &mut recorder);
    dispatch(event("notifications_merged", "1"), &mut recorder);
    dispatch(event("brand.new", "{\"a\":1}"), &mut recorder);
    dispatch_item(Item::Heartbeat, &mut recorder);
    assert_eq!(
        recorder.0,
        [
            "update 103270115826048975",
            "status.update 103270115826048975",
            "delete 9",
            "announcement.delete 8",
            "filters_changed",
            "notifications_merged",
            "unknown brand.new Some(\"{\\\"a\\\":1}\")",
            "heartbeat",
        ]
    );
}

#[test]
fn unimplemented_methods_are_no_ops() {
    struct Nothing;
    impl StreamListener for Nothing {}
    let mut nothing = Nothing;
    dispatch(event("update", &status_json()), &mut nothing);
    dispatch(event("delete", "1"), &mut nothing);
}

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> (Log, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    (log.clone(), log)
}

#[test]
fn callback_named_handler_takes_precedence_over_typed() {
    let (seen, a) = log();
    let b = seen.clone();
    let mut listener = CallbackListener::new()
        .on("status.update", move |e| {
            a.lock().unwrap().push(format!("named {}", e.name()))
        })
        .on_status_update(move |s| b.lock().unwrap().push(format!("typed {}", s.id)));
    dispatch(event("status.update", &status_json()), &mut listener);
    assert_eq!(*seen.lock().unwrap(), ["named status.update"]);
}

#[test]
fn callback_typed_handlers_and_unknown() {
    let (seen, a) = log();
    let (b, c, d, e) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    let mut listener = CallbackListener::new()
        .on_update(move |s| a.lock().unwrap().push(format!("update {}", s.account.acct)))
        .on_delete(move |id| b.lock().unwrap().push(format!("delete {id}")))
        .on_filters_changed(move || c.lock().unwrap().push("filters".into()))
        .on_unknown_event(move |name, p| {
            d.lock()
                .unwrap()
                .push(format!("unknown {name} {}", p.to_json_value()))
        })
        .on_heartbeat(move || e.lock().unwrap().push("thump".into()));
    dispatch(event("update", &status_json()), &mut listener);
    dispatch(event("delete", "5"), &mut listener);
    dispatch(event("filters_changed", ""), &mut listener);
    // Known, but no handler: dropped, not sent to the unknown handler.
    dispatch(event("notifications_merged", "1"), &mut listener);
    dispatch(
        event("some.future_event", "{\"hello\":\"world\"}"),
        &mut listener,
    );
    dispatch_item(Item::Heartbeat, &mut listener);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "update Gargron",
            "delete 5",
            "filters",
            "unknown some.future_event {\"hello\":\"world\"}",
            "thump"
        ]
    );
}

#[test]
fn callback_named_handler_catches_unknown_names() {
    let (seen, a) = log();
    let b = seen.clone();
    let mut listener = CallbackListener::new()
        .on("some.future_event", move |e| {
            a.lock()
                .unwrap()
                .push(format!("named {:?}", e.payload().as_str()))
        })
        .on_unknown_event(move |name, _| b.lock().unwrap().push(format!("unknown {name}")));
    dispatch(event("some.future_event", "x"), &mut listener);
    dispatch(event("other.event", "y"), &mut listener);
    assert_eq!(
        *seen.lock().unwrap(),
        ["named Some(\"x\")", "unknown other.event"]
    );
}

#[test]
fn callback_abort_and_malformed() {
    let (seen, a) = log();
    let b = seen.clone();
    let mut listener = CallbackListener::new()
        .on_abort(move |e| a.lock().unwrap().push(format!("abort {e}")))
        .on_malformed_event(move |e| b.lock().unwrap().push(format!("bad {}", e.is_malformed())));
    StreamListener::on_abort(&mut listener, &Error::Closed);
    StreamListener::on_malformed_event(&mut listener, &Error::malformed("update", "x", "y"));
    assert_eq!(*seen.lock().unwrap(), ["abort stream closed", "bad true"]);
}
