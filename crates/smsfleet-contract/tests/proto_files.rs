#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `proto/` is the contract for non-Rust consumers; this test fails when the
//! Rust types drift from it. Run with `SMSFLEET_UPDATE_PROTO=1` to rewrite
//! the files after a deliberate change (and bump the version if the change
//! is not backward compatible).

use std::path::PathBuf;

fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto")
}

fn check(path: PathBuf, expected: String) {
    if std::env::var_os("SMSFLEET_UPDATE_PROTO").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} unreadable ({e}); run with SMSFLEET_UPDATE_PROTO=1", path.display()));
    assert_eq!(actual, expected, "{} is out of date; run with SMSFLEET_UPDATE_PROTO=1", path.display());
}

#[test]
fn schemas_match_the_rust_types() {
    for (name, schema) in smsfleet_contract::all_schemas() {
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        check(proto_dir().join(format!("schemas/v{}/{name}.json", smsfleet_contract::SCHEMA_VERSION)), text);
    }
}

#[test]
fn topology_matches_the_rust_definition() {
    let text = serde_json::to_string_pretty(&smsfleet_contract::Topology::current()).unwrap() + "\n";
    check(proto_dir().join("topology.json"), text);
}
