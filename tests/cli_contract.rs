//! The Confluent CLI's conversation with a department, replayed request by request as the CLI
//! (v4) sends it (reference notes: confluent-cli-notes.md), against real Connect workers: login
//! through `POST /api/sessions`, `me`, environments, the `cmk/v2` cluster lookup, every
//! `confluent connect cluster ...` command on the `/api/connect/v1` routes with the session
//! token as bearer, offsets, `confluent connect logs` (data-plane token, then the logs/v1 search
//! sent to `api.logging.<host>`), delete. The JWT is decoded the way the CLI decodes it (payload
//! `exp`, no signature check), and the role of the token's key is enforced.
//!
//! Also the session tokens themselves over HTTP: expired, tampered, another department's, and a
//! key removed from the department file.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connect_supervisor::api::cloud::cli_logs_host;
use connect_supervisor::api::router;
use connect_supervisor::auth::Authenticator;
use connect_supervisor::session::SessionSigner;
use harness::api::{
    ADMIN_SECRET, As, Contract, OPERATOR_SECRET, TestApi, VIEWER_SECRET, captured_logs,
};
use harness::{PoolSpec, eventually, file_sink, scratch, unique};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const MASK: &str = "****************";
const SECRET: &str = "cli-contract-secret-81";

/// The payload of a JWT, decoded without verification as the CLI does (`pkg/jwt`).
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    for part in &parts {
        assert!(
            URL_SAFE_NO_PAD.decode(part).is_ok(),
            "each part is base64url: {part}"
        );
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A time as the CLI's `--start-time`/`--end-time` want it: `YYYY-MM-DDTHH:MM:SSZ`.
fn cli_time(offset_seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(now() + offset_seconds).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `confluent login`: realm lookups, then `POST /api/sessions`. Returns the answer's body.
async fn login(api: &TestApi, email: &str, password: &str) -> Value {
    for _ in 0..2 {
        let realm = api
            .call_with(
                None,
                Method::GET,
                &api.url(&format!("/api/login/realm?client_id=cli&email={email}")),
                None,
            )
            .await;
        assert_eq!(realm.status, 200, "{}", realm.text);
        assert_eq!(realm.body["is_sso"], false);
    }
    let a = api
        .call_with(
            None,
            Method::POST,
            &api.url("/api/sessions"),
            Some(&json!({"email": email, "password": password})),
        )
        .await;
    assert_eq!(a.status, 200, "login as {email}: {}", a.text);
    a.body
}

/// The CLI's list with expansions (its SDK adds its own `expand`).
async fn cli_list(api: &TestApi, bearer: &str, prefix: &str, expand: &str) -> Value {
    let a = api
        .call_with(
            Some(bearer),
            Method::GET,
            &format!("{prefix}/connectors?expand=info%2Cstatus%2Cid&expand={expand}"),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    Contract::get().check("listConnectv1ConnectorsWithExpansions", 200, &a.body);
    a.body
}

/// The entry whose `id.id` is `lcc` (the CLI addresses connectors by id).
fn by_id<'a>(listed: &'a Value, lcc: &str) -> (&'a String, &'a Value) {
    listed
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, e)| e["id"]["id"] == lcc)
        .unwrap_or_else(|| panic!("no connector with id {lcc} in {listed}"))
}

async fn wait_listed_state(api: &TestApi, bearer: &str, prefix: &str, lcc: &str, target: &str) {
    eventually(&format!("{lcc} to be listed {target}"), WAIT, || async {
        let listed = cli_list(api, bearer, prefix, "id%2Cstatus").await;
        let (_, entry) = by_id(&listed, lcc);
        (entry["status"]["connector"]["state"] == target).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confluent_cli_sequence_works_against_the_department() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let department = api.dept.supervisor.department().clone();
    let (env, lkc) = (
        department.environment_id.clone(),
        department.kafka_cluster_id.clone(),
    );
    let login_url = format!("{}/confluent.cloud", api.base);

    // confluent login --url http://127.0.0.1:<port>/confluent.cloud (API key id as e-mail).
    let wrong = api
        .call_with(
            None,
            Method::POST,
            &api.url("/api/sessions"),
            Some(&json!({"email": "OPERATOR", "password": "not-the-secret"})),
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert!(
        wrong.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unauthorized"),
        "{}",
        wrong.text
    );
    let session = login(&api, "OPERATOR", OPERATOR_SECRET).await;
    let token = session["token"].as_str().unwrap().to_string();
    let payload = jwt_payload(&token);
    let exp = payload["exp"].as_i64().expect("exp is a number");
    assert!(
        (exp - now() - 8 * 3600).abs() < 120,
        "8 h by default: exp {exp}"
    );
    assert!(session["refresh_token"].is_string());
    assert_eq!(session["user"]["email"], "OPERATOR");
    assert!(session["user"]["id"].is_i64());
    assert!(session["organization"]["id"].is_i64());
    let org = session["organization"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(session["organization"]["name"].is_string());
    let bearer = format!("Bearer {token}");

    // GET /api/me: accounts[0].id becomes the current environment.
    let me = api
        .call_with(Some(&bearer), Method::GET, &api.url("/api/me"), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["accounts"][0]["id"], env.as_str());
    assert_eq!(me.body["user"]["email"], "OPERATOR");
    assert_eq!(me.body["organization"]["resource_id"], org.as_str());

    // confluent environment use / list.
    let envs = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &api.url("/api/org/v2/environments?page_size=100"),
            None,
        )
        .await;
    assert_eq!(envs.status, 200, "{}", envs.text);
    assert_eq!(envs.body["data"][0]["id"], env.as_str());
    assert!(envs.body["metadata"].is_object());
    let one = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &api.url(&format!("/api/org/v2/environments/{env}")),
            None,
        )
        .await;
    assert_eq!((one.status, &one.body["id"]), (200, &json!(env)));
    let missing = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &api.url("/api/org/v2/environments/env-nope"),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("env-nope")
    );

    // confluent kafka cluster use: the cmk/v2 lookup with a non-empty bootstrap.
    let cluster = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &api.url(&format!("/api/cmk/v2/clusters/{lkc}?environment={env}")),
            None,
        )
        .await;
    assert_eq!(cluster.status, 200, "{}", cluster.text);
    assert_eq!(cluster.body["id"], lkc.as_str());
    let bootstrap = cluster.body["spec"]["kafka_bootstrap_endpoint"]
        .as_str()
        .unwrap();
    assert!(
        bootstrap.ends_with(&department.kafka.bootstrap_servers),
        "{bootstrap}"
    );
    assert_eq!(cluster.body["spec"]["http_endpoint"], "");
    assert_eq!(cluster.body["spec"]["environment"]["id"], env.as_str());
    assert_eq!(cluster.body["status"]["phase"], "PROVISIONED");
    for (url, status) in [
        (
            format!("/api/cmk/v2/clusters/lkc-nope?environment={env}"),
            404,
        ),
        (
            format!("/api/cmk/v2/clusters/{lkc}?environment=env-nope"),
            403,
        ),
    ] {
        let a = api
            .call_with(Some(&bearer), Method::GET, &api.url(&url), None)
            .await;
        assert_eq!(a.status, status, "{url}: {}", a.text);
        assert!(a.body["errors"][0]["detail"].is_string(), "{}", a.text);
    }
    // After every command: the usage report (discarded).
    let usage = api
        .call_with(
            Some(&bearer),
            Method::POST,
            &api.url("/api/cli/v1/usages"),
            Some(&json!({"command": "login"})),
        )
        .await;
    assert!((200..300).contains(&usage.status), "{}", usage.text);

    // confluent connect cluster create --config-file f.json
    let prefix = format!(
        "{}/api/connect/v1/environments/{env}/clusters/{lkc}",
        api.base
    );
    let dir = scratch("cli");
    let topic = unique(&format!("{id}-cli-"));
    let name = format!("{id}-files-sink-dev-001");
    let mut config = file_sink(&topic, &dir.join("out.txt"));
    config.insert("name".into(), name.clone());
    config.insert("db.password".into(), SECRET.into());
    let file = dir.join("connector.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&json!({"name": name, "config": config})).unwrap(),
    )
    .unwrap();
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let create_body =
        json!({"name": from_file["name"], "config": from_file["config"], "offsets": null});

    // A viewer key's session may read but not create.
    let viewer = login(&api, "VIEWER", VIEWER_SECRET).await;
    let viewer_bearer = format!("Bearer {}", viewer["token"].as_str().unwrap());
    let refused = api
        .call_with(
            Some(&viewer_bearer),
            Method::POST,
            &format!("{prefix}/connectors"),
            Some(&create_body),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("VIEWER has role viewer"),
        "{}",
        refused.text
    );
    let created = api
        .call_with(
            Some(&bearer),
            Method::POST,
            &format!("{prefix}/connectors"),
            Some(&create_body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    Contract::get().check("createConnectv1Connector", 201, &created.body);
    assert_eq!(created.body["name"], name.as_str());
    let listed = cli_list(&api, &bearer, &prefix, "id%2Cstatus").await;
    let lcc = listed[&name]["id"]["id"].as_str().unwrap().to_string();
    assert!(lcc.starts_with("lcc-"), "{lcc}");
    // The viewer's session lists it too.
    let seen = cli_list(&api, &viewer_bearer, &prefix, "id%2Cstatus").await;
    assert!(seen.get(&name).is_some());
    wait_listed_state(&api, &bearer, &prefix, &lcc, "RUNNING").await;

    // describe <lcc>: list with id,info,status, found by id.
    let listed = cli_list(&api, &bearer, &prefix, "id%2Cinfo%2Cstatus").await;
    let (found, entry) = by_id(&listed, &lcc);
    assert_eq!(found, &name);
    assert_eq!(entry["info"]["config"]["db.password"], MASK);
    assert!(entry["status"]["tasks"].as_array().is_some());
    assert_eq!(
        entry["status"]["connector"]["worker_id"], "shared-0",
        "the worker's name, not its address"
    );
    assert_eq!(
        entry["extensions"],
        json!({}),
        "as the managed service records it"
    );
    // The keys a read adds to the config are the ones the README names, and only those.
    let named = [
        "cloud.environment",
        "cloud.provider",
        "kafka.endpoint",
        "kafka.region",
        "config.internal.connect-supervisor.applied-defaults",
    ];
    let added: Vec<&String> = entry["info"]["config"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !config.contains_key(k.as_str()))
        .collect();
    for key in &added {
        assert!(
            named.contains(&key.as_str()),
            "{key} is added to reads but not named in the README"
        );
    }
    for key in &named[..4] {
        assert!(added.iter().any(|k| k == key), "{key} missing: {added:?}");
    }
    // Connect's routes answer with a trailing slash too, as Connect does.
    for path in [
        format!("/connectors/{name}/status/"),
        format!("/connectors/{name}/"),
        "/connectors/".to_string(),
        "/connector-plugins/".to_string(),
    ] {
        let slashed = api
            .call_with(Some(&bearer), Method::GET, &api.url(&path), None)
            .await;
        assert_eq!(slashed.status, 200, "{path}: {}", slashed.text);
        if !path.contains("status") {
            let plain = api
                .call_with(
                    Some(&bearer),
                    Method::GET,
                    &api.url(path.trim_end_matches('/')),
                    None,
                )
                .await;
            assert_eq!(slashed.body, plain.body, "{path}");
        }
    }

    // update <lcc> --config batch.size=7: the whole config as read back, with one key changed.
    let mut whole = entry["info"]["config"].clone();
    whole["batch.size"] = json!("7");
    let updated = api
        .call_with(
            Some(&bearer),
            Method::PUT,
            &format!("{prefix}/connectors/{name}/config"),
            Some(&whole),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let listed = cli_list(&api, &bearer, &prefix, "id%2Cinfo%2Cstatus").await;
    let (_, entry) = by_id(&listed, &lcc);
    assert_eq!(entry["info"]["config"]["batch.size"], "7");
    assert_eq!(entry["info"]["config"]["db.password"], MASK);
    let stored = api
        .dept
        .worker("shared")
        .connector(&name)
        .await
        .unwrap()
        .config;
    assert_eq!(
        harness::guardrails::secret_behind(&stored["db.password"]),
        SECRET,
        "the mask sent back stood for the secret"
    );

    // pause <lcc> / resume <lcc>: list with id,info, then PUT.
    for (verb, target) in [("pause", "PAUSED"), ("resume", "RUNNING")] {
        let listed = cli_list(&api, &bearer, &prefix, "id%2Cinfo").await;
        let (n, _) = by_id(&listed, &lcc);
        let a = api
            .call_with(
                Some(&bearer),
                Method::PUT,
                &format!("{prefix}/connectors/{n}/{verb}"),
                None,
            )
            .await;
        assert_eq!(a.status, 202, "{verb}: {}", a.text);
        wait_listed_state(&api, &bearer, &prefix, &lcc, target).await;
    }

    // plugin list
    let plugins = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &format!("{prefix}/connector-plugins"),
            None,
        )
        .await;
    assert_eq!(plugins.status, 200, "{}", plugins.text);
    Contract::get().check("listConnectv1ConnectorPlugins", 200, &plugins.body);
    // Plugin names as the managed service lists them (the CLI prints `class` and `type`), not
    // Java classes; each is a name validate and create accept.
    let listed_plugins = plugins.body.as_array().unwrap();
    assert!(
        listed_plugins
            .iter()
            .any(|p| p["class"] == "FileStreamSink" && p["type"] == "sink"),
        "{}",
        plugins.text
    );
    assert!(
        listed_plugins
            .iter()
            .any(|p| p["class"] == "FileStreamSource" && p["type"] == "source"),
        "{}",
        plugins.text
    );
    for p in listed_plugins {
        let class = p["class"].as_str().unwrap();
        assert!(!class.contains('.'), "a plugin name, not a class: {class}");
    }
    // plugin describe: a validate. A secret under a key nobody treats as one is warned about;
    // the widened default patterns (`pwd`) mask what Terraform's config_sensitive sends.
    let mut probe = config.clone();
    probe.insert("conn.pwd".into(), "Pwd-Value-9xQz7".into());
    probe.insert("conn.pass".into(), "Looks-Secret-8kLm2".into());
    let validated = api
        .call_with(
            Some(&bearer),
            Method::PUT,
            &format!("{prefix}/connector-plugins/FileStreamSink/config/validate"),
            Some(&json!(probe)),
        )
        .await;
    assert_eq!(validated.status, 200, "{}", validated.text);
    Contract::get().check("validateConnectv1ConnectorPlugin", 200, &validated.body);
    // The fields the managed service's recording has on every config (Terraform's
    // validate.json): `metadata`, `definition.alias` and `definition.default_value` (a string,
    // empty where Connect has no default).
    let configs = validated.body["configs"].as_array().unwrap();
    assert!(configs.len() > 5, "{}", validated.text);
    for c in configs {
        assert!(c["metadata"].is_object(), "{c}");
        assert_eq!(c["definition"]["alias"], "", "{c}");
        assert!(c["definition"]["default_value"].is_string(), "{c}");
    }
    let topics = configs
        .iter()
        .find(|c| c["definition"]["name"] == "topics")
        .expect("topics");
    assert_eq!(
        topics["definition"]["default_value"], "",
        "no default: empty"
    );
    assert!(
        !validated.text.contains("Pwd-Value-9xQz7"),
        "conn.pwd is a secret"
    );
    let warnings = validated.body["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.starts_with("conn.pass:"), "{warning}");
    assert!(!warning.contains("Looks-Secret-8kLm2"), "{warning}");

    // offset describe, offset update --config-file, offset status describe (polled every 1 s
    // while PENDING, as the CLI does).
    let offsets = api
        .call_with(
            Some(&bearer),
            Method::GET,
            &format!("{prefix}/connectors/{name}/offsets"),
            None,
        )
        .await;
    assert_eq!(offsets.status, 200, "{}", offsets.text);
    let request = api
        .call_with(
            Some(&bearer),
            Method::POST,
            &format!("{prefix}/connectors/{name}/offsets/request"),
            Some(&json!({"type": "PATCH", "offsets": [
                {"partition": {"kafka_partition": 0, "kafka_topic": topic}, "offset": {"kafka_offset": 0}}
            ]})),
        )
        .await;
    assert_eq!(request.status, 202, "{}", request.text);
    let status_url = format!("{prefix}/connectors/{name}/offsets/request/status");
    eventually("the offsets request to be APPLIED", WAIT, || async {
        let s = api
            .call_with(Some(&bearer), Method::GET, &status_url, None)
            .await;
        assert_eq!(s.status, 200, "{}", s.text);
        Contract::get().check("getConnectv1ConnectorOffsetsRequestStatus", 200, &s.body);
        match s.body["status"]["phase"].as_str().unwrap() {
            "PENDING" => None,
            "APPLIED" => Some(()),
            other => panic!("the CLI stops on phase {other}: {}", s.body),
        }
    })
    .await;
    wait_listed_state(&api, &bearer, &prefix, &lcc, "RUNNING").await;

    // confluent connect logs <lcc> --level INFO: a data-plane token from the login URL, then
    // the search at api.logging.<host>, a name that must reach the supervisor.
    let dataplane = api
        .call_with(
            Some(&bearer),
            Method::POST,
            &format!("{login_url}/api/access_tokens"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(dataplane.status, 200, "{}", dataplane.text);
    let dp_token = dataplane.body["token"].as_str().unwrap().to_string();
    assert!(
        jwt_payload(&dp_token)["exp"].as_i64().unwrap() <= exp,
        "a data-plane token never outlives its session"
    );
    // The search goes to api.logging.<login host>: here a login at localhost, its name resolved
    // to the supervisor as a hosts-file line would (the HTTP client refuses a name that ends
    // in an IPv4 address, such as api.logging.127.0.0.1, which the CLI itself accepts).
    let port = api.base.rsplit_once(':').unwrap().1;
    let (logs_host, needs_name) =
        cli_logs_host(&format!("http://localhost:{port}/confluent.cloud"));
    assert!(needs_name);
    let logs_name = logs_host.rsplit_once(':').unwrap().0;
    assert_eq!(logs_name, "api.logging.localhost");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let logs_client = reqwest::Client::builder()
        .resolve(logs_name, addr)
        .build()
        .unwrap();
    let crn = format!(
        "crn://confluent.cloud/organization={org}/environment={env}/cloud-cluster={lkc}/connector={name}"
    );
    let search = |token: String, levels: Vec<&'static str>, text: Option<String>, page: String| {
        let client = logs_client.clone();
        let crn = crn.clone();
        let lcc = lcc.clone();
        let url = format!("http://{logs_host}/logs/v1/search?{page}");
        async move {
            let mut s = json!({"level": levels, "id": lcc});
            if let Some(t) = text {
                s["search_text"] = json!(t);
            }
            let body = json!({"crn": crn, "search": s, "sort": "desc",
                "start_time": cli_time(-3600), "end_time": cli_time(60)});
            let response = client
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap(), text)
        }
    };
    let (_, first, first_text) = eventually("INFO lines of the connector", WAIT, || async {
        let (status, body, text) =
            search(dp_token.clone(), vec!["INFO"], None, "page_size=200".into()).await;
        assert_eq!(status, 200, "{text}");
        (body["data"].as_array().unwrap().len() >= 3).then_some((status, body, text))
    })
    .await;
    assert_eq!(first["kind"], "LoggingSearchResponse");
    assert_eq!(first["api_version"], "v1");
    let data = first["data"].as_array().unwrap();
    assert!(
        data.iter()
            .all(|e| e["level"] == "INFO" && e["id"] == lcc.as_str())
    );
    let times: Vec<&str> = data
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "desc: {times:?}");
    assert!(!first_text.contains(SECRET), "a secret in the logs search");
    // Paging through metadata.next, as `--next` does.
    let (_, page1, _) = search(dp_token.clone(), vec!["INFO"], None, "page_size=2".into()).await;
    let next = page1["metadata"]["next"]
        .as_str()
        .expect("more pages")
        .to_string();
    let page_token = next.split("page_token=").nth(1).unwrap().to_string();
    let (status, page2, text) = search(
        dp_token.clone(),
        vec!["INFO"],
        None,
        format!("page_size=2&page_token={page_token}"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let p1: Vec<&Value> = page1["data"].as_array().unwrap().iter().collect();
    let p2: Vec<&Value> = page2["data"].as_array().unwrap().iter().collect();
    assert_eq!((p1.len(), !p2.is_empty()), (2, true));
    assert!(
        p2[0]["timestamp"].as_str() <= p1[0]["timestamp"].as_str(),
        "older page"
    );
    assert!(p1.iter().all(|a| !p2.contains(a)), "pages overlap");
    // Text search (a regex, as the CLI's examples use it) and the level filter.
    let word = data[0]["message"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (_, hits, _) = search(
        dp_token.clone(),
        vec!["INFO", "WARN", "ERROR"],
        Some(regex::escape(&word)),
        "page_size=200".into(),
    )
    .await;
    let hits = hits["data"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|e| {
        e["message"].as_str().unwrap().contains(&word)
            || e["exception"]["stacktrace"]
                .as_str()
                .unwrap_or("")
                .contains(&word)
    }));
    let (_, errors, _) = search(
        dp_token.clone(),
        vec!["ERROR"],
        None,
        "page_size=200".into(),
    )
    .await;
    assert!(
        errors["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["level"] == "ERROR")
    );
    // A viewer's session gets a token but may not read logs (as on .../connectors/{name}/logs).
    let viewer_dp = api
        .call_with(
            Some(&viewer_bearer),
            Method::POST,
            &format!("{login_url}/api/access_tokens"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(viewer_dp.status, 200, "{}", viewer_dp.text);
    let (status, _, text) = search(
        viewer_dp.body["token"].as_str().unwrap().to_string(),
        vec!["INFO"],
        None,
        "page_size=200".into(),
    )
    .await;
    assert_eq!(status, 403, "{text}");

    // delete <lcc> --force: list with id,info,status, then DELETE.
    let listed = cli_list(&api, &bearer, &prefix, "id%2Cinfo%2Cstatus").await;
    let (n, _) = by_id(&listed, &lcc);
    let deleted = api
        .call_with(
            Some(&bearer),
            Method::DELETE,
            &format!("{prefix}/connectors/{n}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert!(deleted.body["error"].is_null());
    let listed = cli_list(&api, &bearer, &prefix, "id%2Cstatus").await;
    assert!(listed.get(&name).is_none(), "{listed}");

    // Roles are the key's exactly: an operator's session is no admin, an admin's is.
    let pools = api
        .call_with(Some(&bearer), Method::GET, &api.url("/v1/pools"), None)
        .await;
    assert_eq!(pools.status, 403, "{}", pools.text);
    let admin = login(&api, "ADMIN", ADMIN_SECRET).await;
    let admin_bearer = format!("Bearer {}", admin["token"].as_str().unwrap());
    let pools = api
        .call_with(
            Some(&admin_bearer),
            Method::GET,
            &api.url("/v1/pools"),
            None,
        )
        .await;
    assert_eq!(pools.status, 200, "{}", pools.text);
    // GET / keeps worker internals (command lines, cgroups, pids) to admins.
    let root = api
        .call_with(Some(&bearer), Method::GET, &api.url("/"), None)
        .await;
    assert_eq!(root.status, 200, "{}", root.text);
    assert_eq!(root.body["pools"][0]["name"], "shared");
    assert!(
        root.body["pools"][0].get("workers").is_none(),
        "{}",
        root.text
    );
    assert!(
        !root.text.contains("cgroup") && !root.text.contains("\"pid\""),
        "{}",
        root.text
    );
    let root = api
        .call_with(Some(&admin_bearer), Method::GET, &api.url("/"), None)
        .await;
    assert!(root.body["pools"][0]["workers"].is_array(), "{}", root.text);
    // Connect's own routes take the session too.
    let names = api
        .call_with(Some(&bearer), Method::GET, &api.url("/connectors"), None)
        .await;
    assert_eq!(names.status, 200, "{}", names.text);

    // No token and no secret in logs, events, the audit trail or the metrics.
    let events = api
        .call(
            As::Admin,
            Method::GET,
            &api.url("/v1/events?limit=2000"),
            None,
        )
        .await;
    let audit = api
        .call(
            As::Admin,
            Method::GET,
            &api.url("/v1/audit?limit=10000"),
            None,
        )
        .await;
    let metrics = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = captured_logs();
    for (what, text) in [
        ("events", events.text.as_str()),
        ("audit", audit.text.as_str()),
        ("metrics", metrics.as_str()),
        ("logs", logs.as_str()),
    ] {
        for secret in [token.as_str(), dp_token.as_str(), SECRET, OPERATOR_SECRET] {
            assert!(!text.contains(secret), "{what} show a token or secret");
        }
    }
    assert!(
        audit.text.contains("\"principal\":\"OPERATOR\""),
        "changes made with a session are audited under the key id"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_expire_resist_tampering_and_end_with_their_key() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let status_of = |bearer: String| {
        let url = api.managed("/connectors");
        let api = &api;
        async move {
            let a = api.call_with(Some(&bearer), Method::GET, &url, None).await;
            (
                a.status,
                a.body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let session = login(&api, "OPERATOR", OPERATOR_SECRET).await;
    let token = session["token"].as_str().unwrap().to_string();
    assert_eq!(status_of(format!("Bearer {token}")).await.0, 200);

    // Expired: a token of this supervisor's own key whose exp has passed.
    let signer = api.state.auth.sessions().expect("sessions are on").clone();
    let key = api
        .state
        .auth
        .settings()
        .keys
        .iter()
        .find(|k| k.id == "OPERATOR")
        .unwrap()
        .clone();
    let expired = signer.issue_at(&key, now() - 7200, now() - 10).token;
    let (status, message) = status_of(format!("Bearer {expired}")).await;
    assert_eq!(status, 401);
    assert!(message.contains("expired"), "{message}");

    // Tampered: the payload rewritten to an admin key, the signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = jwt_payload(&token);
    claims["sub"] = json!("ADMIN");
    claims["role"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let (status, message) = status_of(format!("Bearer {forged}")).await;
    assert_eq!(status, 401);
    assert!(message.contains("invalid signature"), "{message}");
    let pools = api
        .call_with(
            Some(&format!("Bearer {forged}")),
            Method::GET,
            &api.url("/v1/pools"),
            None,
        )
        .await;
    assert_eq!(pools.status, 401);

    // Another department's supervisor (another signing key and audience): refused.
    let other = SessionSigner::from_key([9; 32], "other", Duration::from_secs(3600));
    let (status, _) = status_of(format!("Bearer {}", other.issue(&key).token)).await;
    assert_eq!(status, 401);

    // The key leaves the department file: the supervisor started again with the same state
    // folder (so the same signing key) and a file without it refuses the session; the other
    // keys' sessions keep working.
    let admin = login(&api, "ADMIN", ADMIN_SECRET).await;
    let admin_token = admin["token"].as_str().unwrap().to_string();
    let department = api.dept.supervisor.department().clone();
    let mut settings = department.auth.clone();
    settings.keys.retain(|k| k.id != "OPERATOR");
    let reloaded = SessionSigner::load_or_create(
        &department.supervisor.state_dir,
        &department.id,
        settings.session_lifetime,
    )
    .unwrap();
    let mut state = api.state.clone();
    state.auth = Arc::new(Authenticator::new(settings).with_sessions(reloaded));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    let url = format!("{base}{}/connectors", api.prefix);
    let gone = api
        .call_with(Some(&format!("Bearer {token}")), Method::GET, &url, None)
        .await;
    assert_eq!(gone.status, 401, "{}", gone.text);
    assert!(
        gone.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("removed or changed"),
        "{}",
        gone.text
    );
    let kept = api
        .call_with(
            Some(&format!("Bearer {admin_token}")),
            Method::GET,
            &url,
            None,
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let relogin = api
        .call_with(
            None,
            Method::POST,
            &format!("{base}/api/sessions"),
            Some(&json!({"email": "OPERATOR", "password": OPERATOR_SECRET})),
        )
        .await;
    assert_eq!(relogin.status, 401, "{}", relogin.text);
    server.abort();

    // The signing key is kept 0600 in the state folder.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(
        department
            .supervisor
            .state_dir
            .join(connect_supervisor::session::SESSION_KEY_FILE),
    )
    .unwrap()
    .permissions()
    .mode();
    assert_eq!(mode & 0o777, 0o600);
    api.stop().await;
}
