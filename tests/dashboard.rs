//! The health dashboard in a real headless Chromium (Debian `chromium` + `chromium-driver`, over
//! WebDriver) against a supervisor with a real Connect worker: sign-in (a wrong secret gives an
//! error and no session), the connector table with a RUNNING FileStreamSource and a failing
//! FileStreamSink (failing first), the sink's page with its trace and log lines, the restart
//! button (checked on the worker's REST API, audited), live updates, sign-out, a viewer without
//! buttons whose forged action is refused, CSRF-less posts refused, a narrow window; and 200
//! connectors rendered within a second. Screenshots of each page go to `target/screenshots/`.

mod harness;

use std::time::{Duration, Instant};

use connect_supervisor::api::ui::html::Viewer;
use connect_supervisor::api::ui::pages::connectors_document;
use connect_supervisor::api::ui::table::TableQuery;
use connect_supervisor::auth::Role;
use connect_supervisor::healing::{AutoRestartView, ConnectorHealth};
use harness::api::{ADMIN_SECRET, As, OPERATOR_SECRET, TestApi, VIEWER_SECRET, captured_logs};
use harness::browser::{Browser, ENTER, TAB};
use harness::{PoolSpec, eventually, file_sink, file_source, scratch};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);
/// A secret in the sink's config: masked on its page as the API masks it.
const SECRET: &str = "Hunter2-Dashboard-Secret-77";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn body_text(b: &Browser) -> String {
    b.eval("return document.body.innerText;", json!([]))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn sign_in(b: &Browser, api: &TestApi, key: &str, secret: &str) {
    b.goto(&api.url("/ui/login")).await;
    let k = b.find("input[name=key]").await;
    b.type_into(&k, key).await;
    let s = b.find("input[name=secret]").await;
    b.type_into(&s, secret).await;
    b.click(&b.find("form.login button[type=submit]").await)
        .await;
}

async fn session_cookie(b: &Browser) -> Option<Value> {
    b.cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "cs_session")
}

/// The CSRF token of the page's sign-out form (every signed-in page has one).
async fn page_csrf(b: &Browser) -> String {
    let e = b.find("form.signout input[name=csrf]").await;
    b.attribute(&e, "value").await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[auto_restart]\nenabled = false\ninterval = \"1s\"\n[supervision]\nsample_interval = \"1s\"\n",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch(&format!("{id}-dash"));
    let topic = format!("{id}-orders");
    let source = format!("{id}-orders-file-source");
    let sink = format!("{id}-orders-file-sink");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let out_dir = dir.join("not-there-yet");
    for (name, config) in [
        (&source, file_source(&input, &topic)),
        (&sink, {
            let mut c = file_sink(&topic, &out_dir.join("out.txt"));
            c.insert("db.password".into(), SECRET.into());
            c
        }),
    ] {
        let a = api
            .call(
                As::Operator,
                Method::POST,
                &api.managed("/connectors"),
                Some(&json!({ "name": name, "config": config })),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    eventually("the source RUNNING and the sink FAILED", WAIT, || async {
        let s = api.state.watch.summary(Role::Admin);
        let state = |n: &str| s.connectors.iter().find(|c| c.name == n).map(|c| c.state);
        (state(&source) == Some("RUNNING") && state(&sink) == Some("FAILED")).then_some(())
    })
    .await;

    // API clients keep getting JSON at /; a browser without credentials is sent to the dashboard.
    let http = no_redirects();
    let a = api.call(As::Admin, Method::GET, &api.url("/"), None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["service"], "connect-supervisor");
    let r = http
        .get(api.url("/"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/");
    let a = api.call(As::Nobody, Method::GET, &api.url("/"), None).await;
    assert_eq!(a.status, 401, "no browser, no credentials: the API's 401");

    let b = Browser::start(1280, 900).await;

    // The root in a browser leads to the sign-in form.
    b.goto(&api.url("/")).await;
    b.wait_url("/ui/login").await;

    // A wrong secret: an error, no session.
    sign_in(&b, &api, "OPERATOR", "not-the-secret").await;
    b.wait_text("Sign-in failed: the API key or secret is wrong.")
        .await;
    assert!(
        session_cookie(&b).await.is_none(),
        "a wrong secret gives no session"
    );
    b.screenshot("login-error").await;

    // The operator signs in: an HttpOnly, SameSite=Strict session cookie with an expiry.
    sign_in(&b, &api, "OPERATOR", OPERATOR_SECRET).await;
    b.wait_url("/ui/").await;
    let cookie = session_cookie(&b).await.expect("a session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert!(cookie["expiry"].as_u64().is_some(), "{cookie}");
    let session_id = cookie["value"].as_str().unwrap().to_string();
    let operator_csrf = page_csrf(&b).await;

    // Overview: the pool's worker with its state, CPU and memory against the limits, charts,
    // Kafka and log forwarding.
    let overview = b
        .wait_for(
            "the worker's usage chart",
            WAIT,
            Some(&api.url("/ui/")),
            |s| s.contains("<polyline class=\"series\""),
        )
        .await;
    let text = body_text(&b).await;
    for expected in [
        "Pool shared: 1 of 1 workers ready",
        "shared-0",
        "/ 1.00 cores",
        "/ 512 MiB",
        "Kafka",
        "Log forwarding",
        "Data as of",
        "OOM kills",
    ] {
        assert!(
            text.contains(expected),
            "overview lacks {expected:?}:\n{text}"
        );
    }
    assert!(
        overview.contains("role=\"img\""),
        "charts are labelled images"
    );
    b.screenshot_page("overview-operator", 1280, 900).await;

    // The connector table: both connectors with their states, the failing one first.
    b.goto(&api.url("/ui/connectors")).await;
    let rows = b.all("table.connectors tbody tr").await;
    assert_eq!(rows.len(), 2, "{}", b.source().await);
    assert_eq!(
        b.attribute(&rows[0], "data-name").await.as_deref(),
        Some(sink.as_str())
    );
    assert!(
        b.text(&rows[0]).await.contains("FAILED"),
        "{}",
        b.text(&rows[0]).await
    );
    assert_eq!(
        b.attribute(&rows[1], "data-name").await.as_deref(),
        Some(source.as_str())
    );
    assert!(b.text(&rows[1]).await.contains("RUNNING"));
    b.screenshot_page("connectors", 1280, 900).await;
    // Sorting and filtering are query parameters (no script needed).
    b.goto(&api.url("/ui/connectors?sort=name&dir=desc")).await;
    let rows = b.all("table.connectors tbody tr").await;
    assert_eq!(
        b.attribute(&rows[0], "data-name").await.as_deref(),
        Some(source.as_str())
    );
    b.goto(&api.url("/ui/connectors?state=failing")).await;
    assert_eq!(b.all("table.connectors tbody tr[data-name]").await.len(), 1);
    // The table updates without a reload.
    b.goto(&api.url("/ui/connectors")).await;
    eventually(
        "the live block to refresh",
        Duration::from_secs(30),
        || async {
            let v = b
                .eval(
                    "return document.getElementById('live').getAttribute('data-refreshed');",
                    json!([]),
                )
                .await;
            v.as_str().map(|_| ())
        },
    )
    .await;

    // The failing sink's page: its trace and its log lines.
    b.click(&b.find(&format!("a[href='/ui/connectors/{sink}']")).await)
        .await;
    b.wait_url(&format!("/ui/connectors/{sink}")).await;
    let page_url = api.url(&format!("/ui/connectors/{sink}"));
    b.wait_for("the sink's log lines", WAIT, Some(&page_url), |s| {
        s.contains("class=\"line level-error\"")
    })
    .await;
    let text = body_text(&b).await;
    assert!(
        text.contains("Couldn't find or create file"),
        "the trace:\n{text}"
    );
    assert!(
        !b.all("details.trace pre").await.is_empty(),
        "a trace block"
    );
    assert!(!b.all("ol.log li").await.is_empty(), "log lines");
    let config_row = b.find("table.config tr[data-key='db.password'] td").await;
    assert_eq!(
        b.text(&config_row).await,
        "****************",
        "the secret is masked as the API masks it"
    );
    assert!(
        !b.source().await.contains(SECRET),
        "the page holds the secret"
    );
    for section in [
        "Summary",
        "Tasks",
        "Config",
        "Offsets",
        "Recent events",
        "Log",
    ] {
        assert!(text.contains(section), "connector page lacks {section}");
    }
    // The log's level filter and text search.
    b.goto(&format!("{page_url}?level=ERROR&q=couldn")).await;
    let lines = b.all("ol.log li").await;
    assert!(!lines.is_empty());
    for l in &lines {
        let t = b.text(l).await;
        assert!(t.contains("ERROR") || t.contains("FATAL"), "{t}");
    }
    b.goto(&format!("{page_url}?q=no-such-text-anywhere")).await;
    assert!(body_text(&b).await.contains("No log line matches."));
    b.goto(&page_url).await;
    b.screenshot_page("connector", 1280, 900).await;

    // A POST without the CSRF token (or with a wrong one) is refused and changes nothing.
    let cookie_header = format!("cs_session={session_id}");
    for body in ["", "csrf=forged"] {
        let r = http
            .post(api.url(&format!("/ui/connectors/{sink}/pause")))
            .header("cookie", &cookie_header)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "body {body:?}");
        assert!(r.text().await.unwrap().contains("CSRF"));
    }
    // The pages are complete without JavaScript (server-rendered), and the script's fragment is
    // the live block alone.
    let page = http
        .get(api.url("/ui/connectors"))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("data-name=\"{sink}\"")) && page.contains(">FAILED<"));
    let fragment = http
        .get(api.url("/ui/connectors"))
        .header("cookie", &cookie_header)
        .header("x-dashboard-fragment", "live")
        .send()
        .await
        .unwrap();
    assert_eq!(fragment.headers()["x-dashboard-fragment"], "live");
    let fragment = fragment.text().await.unwrap();
    assert!(fragment.starts_with("<div id=\"live\"") && fragment.contains("Data as of"));
    assert!(!fragment.contains("<html"), "only the live block");
    let status = api
        .dept
        .worker("shared")
        .connector_status(&sink)
        .await
        .unwrap();
    assert_ne!(status.connector.state, "PAUSED");

    // The restart button, behind a confirmation, restarts it: with its folder there now, the
    // worker's REST API shows the task RUNNING (automatic restarts are off in this department).
    std::fs::create_dir_all(&out_dir).unwrap();
    // With the keyboard only: Tab from the top reaches the skip link first, then the restart
    // button, and Enter opens its confirmation.
    b.goto(&page_url).await;
    b.press(TAB).await;
    assert!(
        b.focused().await.contains("class=\"skip\""),
        "{}",
        b.focused().await
    );
    let mut tabs = 0;
    while !b.focused().await.contains("data-action=\"restart\"") {
        b.press(TAB).await;
        tabs += 1;
        assert!(tabs < 20, "Tab never reached the restart button");
    }
    b.press(ENTER).await;
    b.wait_text(&format!("Restart {sink}?")).await;
    b.screenshot("confirm-restart").await;
    b.click(&b.find("#confirm").await).await;
    b.wait_text("Restart requested").await;
    let worker = api.dept.worker("shared");
    eventually(
        "the restarted sink's task RUNNING on the worker",
        WAIT,
        || async {
            let s = worker.connector_status(&sink).await.ok()?;
            (s.tasks.first().map(|t| t.state.state.as_str()) == Some("RUNNING")).then_some(())
        },
    )
    .await;
    // Audited like the API call, with the operator as principal.
    let audit = api
        .call(
            As::Admin,
            Method::GET,
            &api.url(&format!(
                "/v1/audit?connector={sink}&action=connector_restarted"
            )),
            None,
        )
        .await;
    let records = audit.body["records"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["principal"] == "OPERATOR"
            && r["status"] == 202
            && r["path"] == format!("/ui/connectors/{sink}/restart")),
        "{}",
        audit.text
    );
    let refused = api
        .call(
            As::Admin,
            Method::GET,
            &api.url(&format!(
                "/v1/audit?connector={sink}&action=connector_paused"
            )),
            None,
        )
        .await;
    assert!(
        refused.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 403),
        "the refused posts are audited as refused: {}",
        refused.text
    );

    // Behind a TLS-terminating proxy the session cookie is Secure.
    let form = http.get(api.url("/ui/login")).send().await.unwrap();
    let login_cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let form = form.text().await.unwrap();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let r = http
        .post(api.url("/ui/login"))
        .header("cookie", &login_cookie)
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&key=VIEWER&secret={VIEWER_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("cs_session=") && c.ends_with("; Secure")),
        "{set:?}"
    );
    // The sign-in form refuses a post without its own token.
    let r = http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key=VIEWER&secret={VIEWER_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cs_session="))
    );

    // A narrow window: the page does not scroll sideways (tables scroll in their own box).
    b.resize(400, 900).await;
    b.goto(&api.url("/ui/connectors")).await;
    let overflow = b
        .eval(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap_or(99) <= 1,
        "page overflows by {overflow}px"
    );
    b.screenshot_page("connectors-narrow", 400, 900).await;
    b.resize(1280, 900).await;

    // Sign-out ends the session on the server.
    b.goto(&api.url("/ui/")).await;
    b.click(&b.find("form.signout button").await).await;
    b.wait_url("/ui/login").await;
    let r = http
        .get(api.url("/ui/"))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie no longer works");

    // A viewer: no action buttons, and a forged action (with the viewer's own valid token) is
    // refused by the server.
    b.clear_cookies().await;
    sign_in(&b, &api, "VIEWER", VIEWER_SECRET).await;
    b.wait_url("/ui/").await;
    b.goto(&page_url).await;
    assert!(
        b.all("a[data-action]").await.is_empty(),
        "a viewer sees no action buttons"
    );
    assert!(body_text(&b).await.contains("cannot read connector logs"));
    b.screenshot_page("viewer-connector", 1280, 900).await;
    let viewer_csrf = page_csrf(&b).await;
    let viewer_cookie = session_cookie(&b).await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    for action in ["restart", "pause", "resume", "restart-failed"] {
        let r = http
            .post(api.url(&format!("/ui/connectors/{sink}/{action}")))
            .header("cookie", format!("cs_session={viewer_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={viewer_csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "viewer {action}");
    }
    let r = http
        .post(api.url("/ui/pools/shared/restart"))
        .header("cookie", format!("cs_session={viewer_cookie}"))
        .body(format!("csrf={viewer_csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "viewer rolling restart");
    // The session cookie is no credential for the JSON API.
    let r = http
        .get(api.managed("/connectors"))
        .header("cookie", format!("cs_session={viewer_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // An admin sees the rolling restart button on the overview.
    b.clear_cookies().await;
    sign_in(&b, &api, "ADMIN", ADMIN_SECRET).await;
    b.wait_url("/ui/").await;
    assert_eq!(b.all("a[href='/ui/pools/shared/restart']").await.len(), 1);
    b.wait_text("Data as of").await;
    b.screenshot_page("overview", 1280, 900).await;
    // The admin's rolling restart, behind its confirmation, audited like POST
    // /v1/pools/shared/restart; the overview follows its progress.
    b.click(&b.find("a[href='/ui/pools/shared/restart']").await)
        .await;
    b.wait_text("Rolling restart of pool shared?").await;
    b.click(&b.find("#confirm").await).await;
    b.wait_text("Rolling restart started").await;
    eventually("the rolling restart to complete", WAIT, || async {
        let pools = api.state.supervisor.status();
        (pools[0].rollout.as_ref().map(|r| r.state) == Some("completed")).then_some(())
    })
    .await;
    b.goto(&api.url("/ui/")).await;
    b.wait_text("Rolling restart completed: 1 of 1 workers done")
        .await;
    let pool_audit = api
        .call(
            As::Admin,
            Method::GET,
            &api.url("/v1/audit?action=pool_restarted"),
            None,
        )
        .await;
    assert!(
        pool_audit.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["principal"] == "ADMIN"
                && r["status"] == 202
                && r["target"] == "shared"
                && r["path"] == "/ui/pools/shared/restart"),
        "{}",
        pool_audit.text
    );

    // Session ids and CSRF tokens never reach logs, events or the audit trail.
    let audit_file = audit.body["file"].as_str().unwrap();
    let audit_text = std::fs::read_to_string(audit_file).unwrap();
    let events = api
        .call(
            As::Admin,
            Method::GET,
            &api.url("/v1/events?limit=1000"),
            None,
        )
        .await;
    let logs = captured_logs();
    for secret in [&session_id, &viewer_cookie, &operator_csrf, &viewer_csrf] {
        assert!(
            !audit_text.contains(secret.as_str()),
            "audit holds a session secret"
        );
        assert!(
            !events.text.contains(secret.as_str()),
            "events hold a session secret"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "logs hold a session secret"
        );
    }
    drop(b);
    api.stop().await;
}

fn synthetic(i: usize) -> ConnectorHealth {
    let failing = i.is_multiple_of(10);
    ConnectorHealth {
        name: format!("dept1-source{i:03}-jdbc-source-prod-001"),
        pool: "shared".into(),
        state: if failing { "FAILED" } else { "RUNNING" },
        connect_state: "RUNNING".into(),
        tasks: 3,
        failed_tasks: usize::from(failing),
        last_error: failing.then(|| {
            "org.apache.kafka.connect.errors.ConnectException: connection refused".to_string()
        }),
        last_error_at: failing.then(time::OffsetDateTime::now_utc),
        errors_last_hour: if failing { 12 } else { 0 },
        last_activity: Some(time::OffsetDateTime::now_utc()),
        uptime_seconds: Some(3600),
        auto_restart: AutoRestartView {
            enabled: true,
            restarts: u32::from(failing),
            max_restarts: 10,
            held: false,
            next_restart_in_seconds: None,
            last_failure: None,
        },
    }
}

/// 200 connectors: the table page as the dashboard renders it, served to the browser; the time
/// from its last byte to the page being laid out must stay under a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connectors_render_within_a_second() {
    let rows: Vec<ConnectorHealth> = (0..200).map(synthetic).collect();
    let viewer = Viewer {
        name: "OPERATOR".into(),
        role: Role::Operator,
        csrf: "t".into(),
    };
    let started = Instant::now();
    let page = connectors_document(
        "dept1",
        &viewer,
        &rows,
        &TableQuery::default(),
        time::OffsetDateTime::now_utc(),
    );
    let server_ms = started.elapsed().as_secs_f64() * 1000.0;
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || {
                let page = page.clone();
                async move { ([("content-type", "text/html; charset=utf-8")], page) }
            }),
        )
        .route(
            "/ui/assets/app.css",
            axum::routing::get(|| async {
                (
                    [("content-type", "text/css")],
                    include_str!("../src/api/ui/assets/app.css"),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let b = Browser::start(1280, 900).await;
    b.goto(&url).await;
    let rendered = b.all("table.connectors tbody tr").await.len();
    assert_eq!(rendered, 200);
    let timing = b
        .eval(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return { dom: n.domContentLoadedEventEnd - n.responseEnd, load: n.loadEventEnd - n.responseEnd, \
                      bytes: n.transferSize };",
            json!([]),
        )
        .await;
    let dom = timing["dom"].as_f64().unwrap();
    let load = timing["load"].as_f64().unwrap();
    println!(
        "200 connectors: server render {server_ms:.1} ms, browser from last byte to DOM ready {dom:.1} ms, to load {load:.1} ms ({} bytes)",
        timing["bytes"]
    );
    assert!(load < 1000.0, "200 connectors took {load:.0} ms to render");
    assert!(server_ms < 1000.0, "server render took {server_ms:.0} ms");
    drop(b);
    server.abort();
}
