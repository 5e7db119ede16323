//! The vendored API contract: still byte-identical to the project's reference copy when that is
//! at hand, and loadable as JSON Schema (every operation the API serves is in it).

mod harness;

use std::path::{Path, PathBuf};

use harness::PROJECT;
use harness::api::Contract;
use serde_json::json;

const FILES: &[&str] = &[
    "confluent-connect-v1-openapi.yaml",
    "confluent-connect-v1-restart.excerpt.yaml",
];

/// `../shared/reference` from the repository, or `../../shared/reference` from a worktree.
fn reference_dir() -> Option<PathBuf> {
    ["../shared/reference", "../../shared/reference"]
        .iter()
        .map(|r| Path::new(PROJECT).join(r))
        .find(|p| p.is_dir())
}

/// The digests of the vendored files, committed beside them (`sha256sum *.yaml > SHA256SUMS`).
const DIGESTS: &str = "SHA256SUMS";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every vendored file matches its committed digest, so the files are compared with something
/// even where no reference folder is beside the repository (a clean clone in CI).
#[test]
fn vendored_contract_matches_its_committed_digests() {
    let dir = Path::new(PROJECT).join("tests/contract");
    let sums = std::fs::read_to_string(dir.join(DIGESTS))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(DIGESTS).display()));
    let listed: Vec<(&str, &str)> = sums
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (digest, file) = l.split_once("  ").unwrap_or_else(|| {
                panic!("{DIGESTS}: {l:?} is not `<sha256>  <file>` (sha256sum's format)")
            });
            (digest, file)
        })
        .collect();
    let mut names: Vec<&str> = listed.iter().map(|(_, f)| *f).collect();
    names.sort_unstable();
    let mut expected = FILES.to_vec();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "{DIGESTS} must list exactly the vendored files"
    );
    for (digest, file) in listed {
        let bytes = std::fs::read(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()));
        assert_eq!(
            sha256_hex(&bytes),
            digest,
            "tests/contract/{file} was changed; copy it again from the reference, never edit it"
        );
    }
}

/// When the project's reference folder is at hand, the vendored copies equal it byte for byte
/// (and the committed digests are the reference's).
#[test]
fn vendored_contract_equals_the_reference_copy() {
    for file in FILES {
        let vendored = Path::new(PROJECT).join("tests/contract").join(file);
        assert!(vendored.is_file(), "{} is missing", vendored.display());
    }
    let Some(reference) = reference_dir() else {
        // Not a skip of the comparison: `vendored_contract_matches_its_committed_digests`
        // compares the files with their committed digests in every checkout.
        eprintln!(
            "no shared/reference folder beside the repository: the vendored contract is checked \
             against tests/contract/{DIGESTS} only"
        );
        return;
    };
    for file in FILES {
        let a = std::fs::read(Path::new(PROJECT).join("tests/contract").join(file)).unwrap();
        let b = std::fs::read(reference.join(file)).unwrap();
        assert!(
            a == b,
            "tests/contract/{file} differs from {}; copy it again",
            reference.join(file).display()
        );
    }
}

#[test]
fn the_contract_checker_accepts_recorded_bodies_and_rejects_broken_ones() {
    let c = Contract::get();
    // Terraform's recorded answers (notes 7.3).
    c.check(
        "readConnectv1ConnectorStatus",
        200,
        &json!({"name":"test_connector",
        "connector":{"state":"PROVISIONING","worker_id":"test-connector","trace":""},
        "tasks":[{"id":0,"state":"STOPPED","worker_id":"test-connector","msg":""}],"type":"sink"}),
    );
    c.check("deleteConnectv1Connector", 200, &json!({"error": null}));
    c.check(
        "readConnectv1Connector",
        404,
        &json!({"error_code":404,"message":"resource not found"}),
    );
    c.check("pauseConnectv1Connector", 202, &serde_json::Value::Null);
    c.check("restartConnectv1Connector", 202, &serde_json::Value::Null);
    c.check("getConnectv1ConnectorOffsetsRequestStatus", 200, &json!({
        "request":{"id":"lcc-0m3z15","name":"test_connector","offsets":[],"requested_at":"2025-02-08T20:06:20.468546777Z","type":"PATCH"},
        "status":{"phase":"APPLIED","message":"ok"},"previous_offsets":[],"applied_at":null}));
    for (op, status, body) in [
        (
            "readConnectv1ConnectorStatus",
            200,
            json!({"name":"x","connector":{"state":"STOPPED","worker_id":"w"},"type":"sink"}),
        ),
        (
            "readConnectv1ConnectorStatus",
            200,
            json!({"name":"x","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":"0","state":"RUNNING","worker_id":"w"}],"type":"sink"}),
        ),
        (
            "getConnectv1ConnectorOffsetsRequestStatus",
            200,
            json!({"request":{"id":"a","name":"b","requested_at":"yesterday","type":"PATCH"},"status":{"phase":"APPLIED"}}),
        ),
        ("listConnectv1Connectors", 200, json!({"a": 1})),
        (
            "listConnectv1Connectors",
            401,
            json!({"error":{"code":400,"message":"x"}}),
        ),
        ("pauseConnectv1Connector", 202, json!({"unexpected": true})),
    ] {
        let broken = std::panic::catch_unwind(|| c.check(op, status, &body));
        assert!(broken.is_err(), "{op} {status} accepted {body}");
    }
}
