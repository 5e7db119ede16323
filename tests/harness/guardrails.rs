//! Helpers of the guardrails tests: the secret behind an externalized reference, a department
//! file written to disk (for the `validate` binary), and the department's recent events.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use connect_supervisor::observe::EventRecord;
use connect_supervisor::secret_store;

use super::api::{TestApi, auth_toml};
use super::{PROJECT, PoolSpec, TestDepartment, department_toml, scratch, unique};

/// The secret a stored `${file:<path>:<key>}` reference stands for, read from the supervisor's
/// secret file. Fails the test when the value is not such a reference or the file lacks it.
pub fn secret_behind(reference: &str) -> String {
    let inner = reference
        .strip_prefix("${file:")
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or_else(|| panic!("{reference:?} is not an externalized secret reference"));
    let (path, key) = inner
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{reference:?} has no key"));
    let secrets = secret_store::read_file(Path::new(path))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the secret file {path} does not exist"));
    secrets
        .get(key)
        .unwrap_or_else(|| panic!("the secret file {path} has no {key}"))
        .clone()
}

/// A department served by the API whose department file is also on disk (for
/// `connect-supervisor validate --department`): returns the API and the file.
pub async fn api_with_file(pools: &[PoolSpec], extra: &str) -> (TestApi, PathBuf) {
    super::api::capture_logs();
    let id = unique("g");
    let dir = scratch(&format!("{id}-files"));
    let state = scratch(&format!("{id}-state"));
    let text = department_toml(&id, pools, &state, &format!("{}{extra}", auth_toml("")));
    let file = dir.join("department.toml");
    std::fs::write(&file, &text).expect("write the department file");
    let department = connect_supervisor::config::load(&file)
        .unwrap_or_else(|e| panic!("test department is invalid: {e}\n{text}"));
    let dept = TestDepartment::start(department).await;
    (TestApi::serve(dept).await, file)
}

/// The example Rego policies' folder (absolute, for department files outside the project).
pub fn example_policies() -> PathBuf {
    Path::new(PROJECT).join("examples/policies")
}

/// The department's recent events.
pub fn events(api: &TestApi) -> Vec<EventRecord> {
    api.dept.supervisor.observer().events().recent(10_000)
}
