//! `plan` and `apply` for a folder of 50 connectors, against the individual managed-API calls a
//! deploy script would make for the same result, in the same run and department:
//!
//! | phase | script (baseline) | gitops |
//! |---|---|---|
//! | create 50 | 50 x `POST .../connectors` | `apply` (1 list + 50 creates) |
//! | check, nothing changed | 50 x `GET .../connectors/{name}/config` | `plan` (1 list) |
//! | update 50 (one key each) | 50 x `PUT .../config` | `apply` (1 list + 50 puts) |
//! | delete 50 | 50 x `DELETE .../connectors/{name}` | `apply --prune` (1 list + 50 deletes) |
//!
//! The script's connectors and the folder's have different names; the script's four phases run
//! first, then the same phases through the library calls the `plan`/`apply` commands make
//! (`gitops::command`), so at most 50 connectors exist at a time (the department's quota). Real parts: a KRaft broker, one Connect worker, FileStreamSource
//! connectors. One run (`cargo bench --bench gitops`); prints each phase and the ratio.

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connect_supervisor::gitops::against::{Against, Credentials};
use connect_supervisor::gitops::command::{self, PlanFormat, PlanRequest};
use connect_supervisor::gitops::plan::{Action, PlanOptions};
use harness::api::{OPERATOR_SECRET, TestApi};
use harness::guardrails::api_with_file;
use harness::{PoolSpec, file_source, scratch};
use serde_json::json;

const CONNECTORS: usize = 50;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

struct Script<'a> {
    api: &'a TestApi,
    http: reqwest::Client,
}

impl Script<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
        let mut request = self
            .http
            .request(method.clone(), self.api.managed(path))
            .basic_auth("OPERATOR", Some(OPERATOR_SECRET));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!(status < 300, "{method} {path}: {status} {text}");
    }
}

fn write_folder(dir: &Path, names: &[String], input: &Path, extra: Option<(&str, &str)>) {
    for name in names {
        let mut config: BTreeMap<String, String> = file_source(input, &format!("{name}-t"));
        if let Some((k, v)) = extra {
            config.insert(k.into(), v.into());
        }
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&json!({"name": name, "config": config})).unwrap(),
        )
        .unwrap();
    }
}

fn line(phase: &str, script: Duration, gitops: Duration) {
    println!(
        "{phase:<34} script {:>8.0} ms   gitops {:>8.0} ms   gitops/script {:.2}",
        script.as_secs_f64() * 1000.0,
        gitops.as_secs_f64() * 1000.0,
        gitops.as_secs_f64() / script.as_secs_f64()
    );
}

async fn timed_apply(request: &PlanRequest, apply: bool, expect: Action, n: usize) -> Duration {
    let started = Instant::now();
    let outcome = if apply {
        command::apply(request).await
    } else {
        command::plan(request).await
    }
    .expect("plan/apply runs");
    let elapsed = started.elapsed();
    assert_eq!(outcome.prepared.plan.count(expect), n, "{}", outcome.output);
    if apply {
        assert_eq!(outcome.report.done(), n, "{}", outcome.output);
    }
    elapsed
}

async fn run() {
    let (api, department_file) = api_with_file(&[PoolSpec::new("shared", 1)], "").await;
    let id = api.dept.id();
    let root = scratch("bench-gitops");
    let input = root.join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let dir: PathBuf = root.join("connectors");
    std::fs::create_dir_all(&dir).unwrap();
    let script = Script {
        api: &api,
        http: reqwest::Client::new(),
    };
    let script_names: Vec<String> = (0..CONNECTORS)
        .map(|i| format!("{id}-script-file-source-dev-{i:03}"))
        .collect();
    let folder_names: Vec<String> = (0..CONNECTORS)
        .map(|i| format!("{id}-gitops-file-source-dev-{i:03}"))
        .collect();
    let mut request = PlanRequest {
        paths: vec![dir.clone()],
        department: department_file,
        environment: None,
        plugins: None,
        against: Against {
            url: api.base.clone(),
            credentials: Credentials::ApiKey {
                id: "OPERATOR".into(),
                secret: OPERATOR_SECRET.into(),
            },
        },
        options: PlanOptions {
            owner: "bench".into(),
            ..PlanOptions::default()
        },
        commit: Some("bench".into()),
        format: PlanFormat::Text,
        state_dir: dir.join(".connect-supervisor"),
    };
    println!("gitops: {CONNECTORS} connectors, one run per phase, one Connect worker");

    // The script's whole lifecycle first, then the folder's: the department's quota (50
    // connectors) holds one set at a time.
    let started = Instant::now();
    for name in &script_names {
        let config = file_source(&input, &format!("{name}-t"));
        script
            .call(
                reqwest::Method::POST,
                "/connectors",
                Some(json!({"name": name, "config": config})),
            )
            .await;
    }
    let script_create = started.elapsed();
    // Nothing changed: the script reads every config to compare.
    let started = Instant::now();
    for name in &script_names {
        script
            .call(
                reqwest::Method::GET,
                &format!("/connectors/{name}/config"),
                None,
            )
            .await;
    }
    let script_check = started.elapsed();
    let started = Instant::now();
    for name in &script_names {
        let mut config = file_source(&input, &format!("{name}-t"));
        config.insert("batch.size".into(), "500".into());
        config.insert("name".into(), name.clone());
        script
            .call(
                reqwest::Method::PUT,
                &format!("/connectors/{name}/config"),
                Some(json!(config)),
            )
            .await;
    }
    let script_update = started.elapsed();
    let started = Instant::now();
    for name in &script_names {
        script
            .call(
                reqwest::Method::DELETE,
                &format!("/connectors/{name}"),
                None,
            )
            .await;
    }
    let script_delete = started.elapsed();

    write_folder(&dir, &folder_names, &input, None);
    let gitops_create = timed_apply(&request, true, Action::Create, CONNECTORS).await;
    let started = Instant::now();
    let outcome = command::plan(&request).await.expect("plan");
    let gitops_check = started.elapsed();
    assert_eq!(
        outcome.exit_code, 0,
        "a second plan has changes: {}",
        outcome.output
    );
    write_folder(&dir, &folder_names, &input, Some(("batch.size", "500")));
    let gitops_update = timed_apply(&request, true, Action::Update, CONNECTORS).await;
    for name in &folder_names {
        std::fs::remove_file(dir.join(format!("{name}.json"))).unwrap();
    }
    request.options.prune = true;
    let gitops_delete = timed_apply(&request, true, Action::Delete, CONNECTORS).await;

    line("create 50", script_create, gitops_create);
    line("check, nothing changed", script_check, gitops_check);
    line("update 50 (one key each)", script_update, gitops_update);
    line("delete 50 (--prune)", script_delete, gitops_delete);
    api.stop().await;
}
