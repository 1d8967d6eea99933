//! What the CLI's integration tests share.

/// The status fixture with its id cleared, so that the test server gives
/// each published copy an id of its own (catch-up pages by id).
pub fn status_without_id() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/entities/status.json"
    );
    let mut status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    status["id"] = serde_json::Value::Null;
    status
}
