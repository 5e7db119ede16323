//! GitOps end to end against real Connect workers (real KRaft broker, worker JVMs started by
//! the supervisor), through the `connect-supervisor plan`/`apply` binary and the managed API:
//! a folder applied to an empty department, re-planned, changed, pruned, renamed (delete and
//! create losing the offsets, or `--allow-renames` carrying them, secrets included); a connector
//! created by hand never touched; a `${env:...}` secret resolved at apply time and absent from
//! every output; drift made through the API reported (plan, metric, events) and healed by the
//! continuous mode within one interval.

mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use connect_supervisor::gitops::against::{Against, Credentials};
use connect_supervisor::gitops::drift::DriftWatch;
use connect_supervisor::gitops::secrets::OWNER_KEY;
use connect_supervisor::model::{DriftMode, GitopsSettings};
use harness::api::{As, OPERATOR_SECRET, TestApi};
use harness::guardrails::{api_with_file, events, secret_behind};
use harness::{PoolSpec, consume, eventually, file_source, scratch};
use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");
const WAIT: Duration = Duration::from_secs(120);
/// The secret the CI job holds; only `${env:GITOPS_TEST_DB_PASSWORD}` is in the files.
const DB_PASSWORD: &str = "s3cret-from-the-ci-environment-7f3a9";
const PASSWORD_ENV: &str = "GITOPS_TEST_DB_PASSWORD";
const OWNER: &str = "connectors/dev";

/// Runs `connect-supervisor <command> ...` with the operator key and the CI secret.
fn run(command: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg(command)
        .args(args)
        .env("CS_KEY", "OPERATOR")
        .env("CS_SECRET", OPERATOR_SECRET)
        .env_remove("CS_TOKEN")
        .env(PASSWORD_ENV, DB_PASSWORD)
        .env_remove("GITHUB_SHA")
        .output()
        .expect("run connect-supervisor");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(action, connector)` of a JSON plan's steps.
fn steps(stdout: &str) -> Vec<(String, String)> {
    let doc: Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {stdout}"))
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_string(),
                s["connector"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn write(dir: &Path, file: &str, doc: &Value) {
    std::fs::write(dir.join(file), serde_json::to_string_pretty(doc).unwrap()).unwrap();
}

/// A connector file in the Apache format.
fn apache(name: &str, config: &BTreeMap<String, String>) -> Value {
    json!({"name": name, "config": config})
}

async fn names(api: &TestApi) -> Vec<String> {
    let answer = api
        .call(As::Operator, Method::GET, &api.managed("/connectors"), None)
        .await;
    let mut names: Vec<String> = serde_json::from_value(answer.body).unwrap();
    names.sort();
    names
}

async fn config_of(api: &TestApi, name: &str) -> BTreeMap<String, String> {
    let answer = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!("/connectors/{name}/config")),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    serde_json::from_value(answer.body).unwrap()
}

/// `offsets` of `GET .../connectors/<name>/offsets` through the managed API.
async fn offsets_of(api: &TestApi, name: &str) -> Value {
    let answer = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!("/connectors/{name}/offsets")),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body["offsets"].clone()
}

struct Folder {
    api: TestApi,
    department: String,
    dir: PathBuf,
    id: String,
    input: PathBuf,
}

impl Folder {
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--department",
            self.department.as_str(),
            "--against",
            self.api.base.as_str(),
            "--owner",
            OWNER,
        ];
        args.extend_from_slice(extra);
        args.push(self.dir.to_str().unwrap());
        args
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}-lines-file-source-dev-{suffix}", self.id)
    }

    fn source(&self, suffix: &str) -> BTreeMap<String, String> {
        file_source(&self.input, &format!("{}-gitops-{suffix}", self.id))
    }
}

async fn folder(tag: &str) -> Folder {
    let (api, department_file) = api_with_file(&[PoolSpec::new("shared", 1)], "").await;
    let id = api.dept.id();
    let root = scratch(tag);
    let input = root.join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n").unwrap();
    let dir = root.join("connectors");
    std::fs::create_dir_all(&dir).unwrap();
    Folder {
        api,
        department: department_file.display().to_string(),
        dir,
        id,
        input,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_planned_applied_changed_pruned_and_renamed_through_the_managed_api() {
    let f = folder("gitops-flow").await;
    let api = &f.api;
    // A connector created by hand: no owner label; never touched, never pruned.
    let hand = f.name("hand");
    let created = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": hand, "config": f.source("hand")})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // Three connectors: Apache format, managed Terraform format with a ${env:...} secret, and
    // one paused by its state field.
    let (a, b, c) = (f.name("001"), f.name("002"), f.name("003"));
    write(&f.dir, "a.json", &apache(&a, &f.source("a")));
    let mut b_config = f.source("b");
    b_config.insert("name".into(), b.clone());
    write(
        &f.dir,
        "b.json",
        &json!({"name": b, "config_nonsensitive": b_config,
                "config_sensitive": {"db.password": format!("${{env:{PASSWORD_ENV}}}")}}),
    );
    write(
        &f.dir,
        "c.json",
        &json!({"name": c, "config": f.source("c"), "state": "PAUSED"}),
    );

    let (code, out, err) = run("plan", &f.args(&["--format", "json"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(
        steps(&out),
        [
            ("create".to_string(), a.clone()),
            ("create".to_string(), b.clone()),
            ("create".to_string(), c.clone()),
        ]
    );
    let mut outputs = vec![out, err];

    let (code, out, err) = run("apply", &f.args(&["--commit", "0123abcdef"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("done     create {b}")), "{out}");
    assert!(out.contains("Apply: 3 done"), "{out}");
    outputs.extend([out, err]);
    let mut expected = vec![a.clone(), b.clone(), c.clone(), hand.clone()];
    expected.sort();
    assert_eq!(names(api).await, expected);
    // The secret was resolved at apply time: the supervisor externalized the value itself.
    let stored = api
        .dept
        .supervisor
        .department()
        .supervisor
        .state_dir
        .clone();
    let connect_config = api
        .dept
        .worker("shared")
        .connector_config(&b)
        .await
        .unwrap();
    assert_eq!(secret_behind(&connect_config["db.password"]), DB_PASSWORD);
    assert_eq!(config_of(api, &b).await[OWNER_KEY], OWNER);
    eventually("the paused connector to be PAUSED", WAIT, || async {
        let s = api
            .call(
                As::Operator,
                Method::GET,
                &api.managed(&format!("/connectors/{c}/status")),
                None,
            )
            .await;
        (s.body["connector"]["state"] == "PAUSED").then_some(())
    })
    .await;

    // Re-plan: nothing to do.
    let (code, out, err) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("Plan: no changes; 3 connectors unchanged"),
        "{out}"
    );
    outputs.extend([out, err]);

    // One value changed: one update with its key diff; the secret stays unchanged.
    let mut b_changed = f.source("b");
    b_changed.insert("name".into(), b.clone());
    b_changed.insert("batch.size".into(), "500".into());
    write(
        &f.dir,
        "b.json",
        &json!({"name": b, "config_nonsensitive": b_changed,
                "config_sensitive": {"db.password": format!("${{env:{PASSWORD_ENV}}}")}}),
    );
    let (code, out, err) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains(&format!("update {b}")), "{out}");
    assert!(out.contains("+ batch.size = \"500\""), "{out}");
    assert!(out.contains("secrets unchanged: db.password"), "{out}");
    assert!(
        out.contains("Plan: 1 to update; 2 connectors unchanged"),
        "{out}"
    );
    let (code, md, _) = run("plan", &f.args(&["--format", "markdown"]));
    assert_eq!(code, Some(2));
    assert!(md.contains(&format!("| update | `{b}` |")), "{md}");
    outputs.extend([out, err, md]);
    let (code, out, err) = run("apply", &f.args(&["--commit", "0123abcdef"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(config_of(api, &b).await["batch.size"], "500");
    let (code, out2, _) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(0), "{out2}");
    outputs.extend([out, err, out2]);

    // A file naming the hand-made connector is refused, and nothing is applied.
    write(&f.dir, "hand.json", &apache(&hand, &f.source("hand")));
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("error[gitops.unowned]"), "{out}");
    assert!(out.contains("Apply: nothing done"), "{out}");
    std::fs::remove_file(f.dir.join("hand.json")).unwrap();

    // One file removed: a delete only with --prune, applied only then; never the hand-made one.
    std::fs::remove_file(f.dir.join("a.json")).unwrap();
    let (code, out, err) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("note[gitops.prune-skipped]"), "{out}");
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        names(api).await.contains(&a),
        "apply without --prune deleted {a}"
    );
    let (code, out, err) = run("plan", &f.args(&["--prune", "--format", "json"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(steps(&out), [("delete".to_string(), a.clone())]);
    let (code, out, err) = run("apply", &f.args(&["--prune"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let now = names(api).await;
    assert!(!now.contains(&a) && now.contains(&hand), "{now:?}");
    outputs.extend([out, err]);

    // The state field: c runs again (a resume), then reads its three lines.
    write(
        &f.dir,
        "c.json",
        &json!({"name": c, "config": f.source("c"), "state": "RUNNING"}),
    );
    let (code, out, err) = run("plan", &f.args(&["--format", "json"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(steps(&out), [("resume".to_string(), c.clone())]);
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");

    // A rename (same settings, new name) is refused, then done as destroy-create: the new
    // connector starts with no offsets and reads its file again from the start.
    let topic = format!("{}-gitops-c", f.id);
    consume(&topic, 3, WAIT, Duration::from_secs(1));
    std::fs::remove_file(f.dir.join("c.json")).unwrap();
    let c2 = f.name("004");
    write(&f.dir, "c2.json", &apache(&c2, &f.source("c")));
    let (code, out, err) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("error[gitops.rename-refused]"), "{out}");
    assert!(out.contains("--allow-renames"), "{out}");
    assert!(out.contains("--allow-destroy-create"), "{out}");
    let (code, out, err) = run("apply", &f.args(&["--allow-destroy-create"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("done     rename {c} -> {c2}")),
        "{out}"
    );
    let now = names(api).await;
    assert!(now.contains(&c2) && !now.contains(&c), "{now:?}");
    // Offsets lost: the three lines are in the topic twice.
    let lines = consume(&topic, 6, WAIT, Duration::from_secs(2));
    assert_eq!(lines.len(), 6, "{lines:?}");
    let offsets = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!("/connectors/{c2}/offsets")),
            None,
        )
        .await;
    assert_eq!(offsets.status, 200, "{}", offsets.text);
    outputs.extend([out, err]);

    // The same kind of rename with --allow-renames carries the offsets (through the migration's
    // rename): the new name starts where the old one stood, the topic gets no line twice again,
    // and a new line is read once.
    let before = eventually("the offsets of the renamed connector", WAIT, || async {
        let o = offsets_of(api, &c2).await;
        (o.as_array().is_some_and(|a| !a.is_empty()) && o[0]["offset"]["position"] == 14)
            .then_some(o)
    })
    .await;
    std::fs::remove_file(f.dir.join("c2.json")).unwrap();
    let c3 = f.name("005");
    write(&f.dir, "c3.json", &apache(&c3, &f.source("c")));
    let (code, out, err) = run("plan", &f.args(&["--allow-renames"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains(&format!("rename {c2} -> {c3}  [offsets carried]")),
        "{out}"
    );
    // A state folder that cannot be made stops the rename before it changes anything.
    let not_a_folder = f.dir.parent().unwrap().join("in.txt");
    let not_a_folder = not_a_folder.join("state");
    let (code, out, err) = run(
        "apply",
        &f.args(&[
            "--allow-renames",
            "--state-dir",
            not_a_folder.to_str().unwrap(),
        ]),
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!("FAILED   rename {c2} -> {c3}: ")),
        "{out}"
    );
    assert!(out.contains(not_a_folder.to_str().unwrap()), "{out}");
    assert!(out.contains("nothing was renamed"), "{out}");
    let now = names(api).await;
    assert!(now.contains(&c2) && !now.contains(&c3), "{now:?}");
    assert_eq!(offsets_of(api, &c2).await, before);
    let (code, out, err) = run("apply", &f.args(&["--allow-renames"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("done     rename {c2} -> {c3}")),
        "{out}"
    );
    let now = names(api).await;
    assert!(now.contains(&c3) && !now.contains(&c2), "{now:?}");
    // The default state folder sits next to the connector folder; the file's config (with the
    // owner label) is on the new name.
    let state_file = f
        .dir
        .parent()
        .unwrap()
        .join(".connect-supervisor")
        .join(format!("{c2}.cutover.json"));
    assert!(
        state_file.is_file(),
        "no state file {}",
        state_file.display()
    );
    assert_eq!(config_of(api, &c3).await[OWNER_KEY], OWNER);
    assert_eq!(offsets_of(api, &c3).await, before);
    let (code, again, _) = run("plan", &f.args(&["--allow-renames"]));
    assert_eq!(code, Some(0), "{again}");
    let mut input = std::fs::OpenOptions::new()
        .append(true)
        .open(&f.input)
        .unwrap();
    std::io::Write::write_all(&mut input, b"four\n").unwrap();
    let lines = consume(&topic, 7, WAIT, Duration::from_secs(3));
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains("four")).count(), 1);
    outputs.extend([out, err, again]);

    // apply stops at the first failure, saying what was done and what was not: a connector
    // class the workers do not have passes the offline guardrails but not the API.
    let (x1, x2) = (f.name("x1"), f.name("x2"));
    write(&f.dir, "x1.json", &apache(&x1, &f.source("x1")));
    let mut broken = f.source("x2");
    broken.insert(
        "connector.class".into(),
        "org.example.NoSuchConnector".into(),
    );
    write(&f.dir, "x2.json", &apache(&x2, &broken));
    let mut b_again = b_changed.clone();
    b_again.insert("batch.size".into(), "600".into());
    write(
        &f.dir,
        "b.json",
        &json!({"name": b, "config_nonsensitive": b_again,
                "config_sensitive": {"db.password": format!("${{env:{PASSWORD_ENV}}}")}}),
    );
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(&format!("done     create {x1}")), "{out}");
    assert!(out.contains(&format!("FAILED   create {x2}: ")), "{out}");
    assert!(out.contains(&format!("not run  update {b}")), "{out}");
    assert!(out.contains("1 failed, 1 not run"), "{out}");
    assert_eq!(config_of(api, &b).await["batch.size"], "500");
    std::fs::remove_file(f.dir.join("x2.json")).unwrap();
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("done     update {b}")), "{out}");
    assert!(!out.contains(&format!("create {x1}")), "{out}");
    outputs.extend([out, err]);

    // A connector with a ${env:...} secret renamed with its offsets: the new name gets the
    // secret (from the file, not from the masked config read back), and the state file of the
    // rename holds no secret.
    let read_all = std::fs::metadata(&f.input).unwrap().len();
    let b_before = eventually("the offsets of b at the end of its file", WAIT, || async {
        let o = offsets_of(api, &b).await;
        (o.as_array().is_some_and(|a| !a.is_empty()) && o[0]["offset"]["position"] == read_all)
            .then_some(o)
    })
    .await;
    let b2 = f.name("006");
    std::fs::remove_file(f.dir.join("b.json")).unwrap();
    let mut b2_config = b_again.clone();
    b2_config.insert("name".into(), b2.clone());
    write(
        &f.dir,
        "b2.json",
        &json!({"name": b2, "config_nonsensitive": b2_config,
                "config_sensitive": {"db.password": format!("${{env:{PASSWORD_ENV}}}")}}),
    );
    let (code, out, err) = run("apply", &f.args(&["--allow-renames"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("done     rename {b} -> {b2}")),
        "{out}"
    );
    let connect_config = api
        .dept
        .worker("shared")
        .connector_config(&b2)
        .await
        .unwrap();
    assert_eq!(secret_behind(&connect_config["db.password"]), DB_PASSWORD);
    assert_eq!(config_of(api, &b2).await[OWNER_KEY], OWNER);
    let b2_offsets = offsets_of(api, &b2).await;
    assert_eq!(b2_offsets, b_before);
    let state_text = std::fs::read_to_string(
        f.dir
            .parent()
            .unwrap()
            .join(".connect-supervisor")
            .join(format!("{b}.cutover.json")),
    )
    .unwrap();
    outputs.extend([out, err, state_text]);

    // The audit trail records the commit of every change apply made, and the secret is
    // nowhere: not in any output, the audit trail, the events or the supervisor's logs.
    let audit = std::fs::read_to_string(stored.join("audit.jsonl")).unwrap();
    let creates: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["action"] == "connector_created" && r["principal"] == "OPERATOR")
        .collect();
    let with_commit: Vec<&Value> = creates
        .iter()
        .filter(|r| r["commit"] == "0123abcdef")
        .collect();
    assert_eq!(with_commit.len(), 3, "{audit}");
    assert!(audit.contains("\"connector_updated\""), "{audit}");
    let events = serde_json::to_string(&events(api)).unwrap();
    for (what, text) in [
        ("outputs", outputs.join("\n")),
        ("audit", audit),
        ("events", events),
        ("logs", harness::api::captured_logs()),
    ] {
        assert!(!text.contains(DB_PASSWORD), "the secret is in the {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_through_the_api_is_reported_and_healed_within_one_interval() {
    let f = folder("gitops-drift").await;
    let api = &f.api;
    let (a, b) = (f.name("001"), f.name("002"));
    write(&f.dir, "a.json", &apache(&a, &f.source("a")));
    write(&f.dir, "b.json", &apache(&b, &f.source("b")));
    let (code, out, err) = run("apply", &f.args(&[]));
    assert_eq!(code, Some(0), "{out}{err}");

    let settings = GitopsSettings {
        source: f.dir.clone(),
        interval: Duration::from_secs(3),
        mode: DriftMode::Report,
        environment: None,
        owner: OWNER.into(),
        prune: false,
    };
    let against = Against {
        url: api.base.clone(),
        credentials: Credentials::ApiKey {
            id: "OPERATOR".into(),
            secret: OPERATOR_SECRET.into(),
        },
    };
    let department = api.dept.supervisor.department().as_ref().clone();
    let observer = api.dept.supervisor.observer().clone();
    let mut watch =
        DriftWatch::new(department, settings.clone(), &against, observer).expect("watch");
    assert!(watch.round().await.drift.is_empty());

    // A config change through the API, to a connector the folder owns.
    let mut changed = config_of(api, &a).await;
    changed.insert("topic".into(), format!("{}-changed-by-hand", f.id));
    let put = api
        .call(
            As::Operator,
            Method::PUT,
            &api.managed(&format!("/connectors/{a}/config")),
            Some(&json!(changed)),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let (code, out, err) = run("plan", &f.args(&[]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains(&format!("update {a}")), "{out}");
    assert!(out.contains("~ topic:"), "{out}");
    let round = watch.round().await;
    assert!(
        round.drift.contains(&(a.clone(), "config")),
        "{:?}",
        round.drift
    );
    let metrics = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("kcs_gitops_drift{{connector=\"{a}\"");
    let series: Vec<&str> = metrics.lines().filter(|l| l.starts_with(&line)).collect();
    assert_eq!(series.len(), 1, "{metrics}");
    assert!(
        series[0].contains("kind=\"config\"") && series[0].ends_with(" 1"),
        "{series:?}"
    );
    assert!(
        events(api)
            .iter()
            .any(|e| e.event == "gitops_drift" && e.connector.as_deref() == Some(&a)),
        "no gitops_drift event"
    );
    // Report mode changed nothing.
    assert!(config_of(api, &a).await["topic"].ends_with("-changed-by-hand"));

    // Heal mode: the running loop puts it back within one interval.
    watch.set_mode(DriftMode::Heal);
    let interval = settings.interval;
    let task = tokio::spawn(watch.run());
    let started = Instant::now();
    eventually("the config to be put back", WAIT, || async {
        (config_of(api, &a).await["topic"] == f.source("a")["topic"]).then_some(())
    })
    .await;
    let first = started.elapsed();
    // A second change, made while the loop runs, is healed by the next round.
    let mut changed = config_of(api, &b).await;
    changed.insert("topic".into(), format!("{}-changed-again", f.id));
    let put = api
        .call(
            As::Operator,
            Method::PUT,
            &api.managed(&format!("/connectors/{b}/config")),
            Some(&json!(changed)),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let changed_at = Instant::now();
    eventually("the second change to be put back", WAIT, || async {
        (config_of(api, &b).await["topic"] == f.source("b")["topic"]).then_some(())
    })
    .await;
    let healed_after = changed_at.elapsed();
    task.abort();
    println!(
        "heal: first round {:.1}s after start; a change made through the API healed after {:.1}s (interval {}s)",
        first.as_secs_f64(),
        healed_after.as_secs_f64(),
        interval.as_secs()
    );
    // One interval plus the round itself (plan + apply) on a busy 2-core machine.
    assert!(
        healed_after <= interval + Duration::from_secs(15),
        "healed after {healed_after:?}"
    );
    assert!(
        events(api)
            .iter()
            .any(|e| e.event == "gitops_healed" && e.connector.as_deref() == Some(&a)),
        "no gitops_healed event"
    );
}

#[test]
fn the_example_repository_validates_and_its_workflow_uses_existing_flags() {
    let root = Path::new(harness::PROJECT).join("examples");
    let department = root.join("department.toml");
    for env in ["dev", "cert", "prod"] {
        let folder = root.join("gitops/connectors").join(env);
        let (code, out, err) = run(
            "validate",
            &[
                "--department",
                department.to_str().unwrap(),
                folder.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(0), "{env}: {out}{err}");
        assert!(out.contains("0 errors"), "{out}");
    }
    let workflow_path = root.join("gitops/.github/workflows/connectors.yml");
    let text = std::fs::read_to_string(&workflow_path).unwrap();
    let workflow: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    assert!(workflow["on"]["pull_request"].is_mapping(), "{text}");
    assert!(workflow["on"]["push"].is_mapping(), "{text}");
    let steps = |job: &str| -> String {
        workflow["jobs"][job]["steps"]
            .as_sequence()
            .unwrap_or_else(|| panic!("no job {job}"))
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (job, command) in [("plan", "plan"), ("plan", "validate"), ("apply", "apply")] {
        let script = steps(job);
        let call = format!("connect-supervisor {command} ");
        let at = script
            .find(&call)
            .unwrap_or_else(|| panic!("job {job} does not run {command}"));
        let invocation: String = script[at..]
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .scan(true, |more, l| {
                let keep = *more;
                *more = l.trim_end().ends_with('\\');
                keep.then(|| l.to_string())
            })
            .collect::<Vec<_>>()
            .join(" ");
        let (_, help, _) = run(command, &["--help"]);
        for flag in invocation
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
        {
            assert!(
                help.contains(flag),
                "{job}: {command} has no {flag}: {help}"
            );
        }
    }
}

/// Ends the `run` process of a test with SIGTERM (its graceful shutdown stops the workers).
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_a_gitops_table_creates_the_folder_and_heals_it() {
    let id = harness::unique("r");
    let root = scratch(&format!("{id}-run"));
    let folder = root.join("connectors");
    std::fs::create_dir_all(&folder).unwrap();
    let input = root.join("in.txt");
    std::fs::write(&input, "x\n").unwrap();
    let name = format!("{id}-lines-file-source-dev-001");
    write(
        &folder,
        "a.json",
        &apache(&name, &file_source(&input, &format!("{id}-lines"))),
    );
    let port = connect_supervisor::supervisor::free_port("127.0.0.1").unwrap();
    let text = harness::department_toml(
        &id,
        &[PoolSpec::new("shared", 1)],
        &root.join("state"),
        &format!(
            "{}\n[gitops]\nsource = \"{}\"\ninterval = \"2s\"\nmode = \"heal\"\nowner = \"{OWNER}\"\n",
            harness::api::auth_toml(""),
            folder.display()
        ),
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let file = root.join("department.toml");
    std::fs::write(&file, text).unwrap();
    let _daemon = Daemon(
        Command::new(BIN)
            .args(["run", "--config", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(root.join("run.log")).unwrap())
            .spawn()
            .expect("start connect-supervisor run"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let managed = format!("{base}/connect/v1/environments/env-{id}/clusters/lkc-{id}/connectors");
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(url)
                .basic_auth("OPERATOR", Some(OPERATOR_SECRET))
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()
        }
    };
    // The folder's connector is missing: the continuous mode creates it.
    let log = root.join("run.log");
    eventually("run to create the folder's connector", WAIT * 2, || async {
        let names = get(managed.clone()).await?;
        names
            .as_array()?
            .iter()
            .any(|n| n == name.as_str())
            .then_some(())
    })
    .await;
    // A change through the API is put back by the next rounds.
    let config_url = format!("{managed}/{name}/config");
    let mut config: BTreeMap<String, String> =
        serde_json::from_value(get(config_url.clone()).await.unwrap()).unwrap();
    assert_eq!(config[OWNER_KEY], OWNER);
    let topic = config["topic"].clone();
    config.insert("topic".into(), format!("{id}-elsewhere"));
    let put = http
        .put(&config_url)
        .basic_auth("OPERATOR", Some(OPERATOR_SECRET))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    eventually("run to heal the change", WAIT, || async {
        let config = get(config_url.clone()).await?;
        (config["topic"] == topic.as_str()).then_some(())
    })
    .await;
    let audit = std::fs::read_to_string(root.join("state/audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"principal\":\"gitops-drift\"")
                && l.contains("\"connector_updated\"")),
        "{audit}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
