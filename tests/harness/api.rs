//! The supervisor's HTTP API over a real test department: the router served on a free loopback
//! port with known credentials (one key per role and a bearer token), a client that records every
//! answer (to grep for secrets), the contract checker, and a capture of the supervisor's logs.
#![allow(dead_code)]

pub mod contract;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use connect_supervisor::api::{AppState, router};
use connect_supervisor::auth::hash_secret;
use connect_supervisor::config;
use reqwest::Method;
use serde_json::Value;

use super::{PROJECT, PoolSpec, TestDepartment, department_toml, scratch, unique};
pub use contract::Contract;

/// Secret of the admin key `ADMIN` of every test department.
pub const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef0123456789";
/// Secret of the operator key `OPERATOR`.
pub const OPERATOR_SECRET: &str = "operator-secret-0123456789abcdef012345";
/// Secret of the viewer key `VIEWER`.
pub const VIEWER_SECRET: &str = "viewer-secret-0123456789abcdef01234567";
/// Bearer token `ci` (operator).
pub const CI_TOKEN: &str = "ci-token-0123456789abcdef0123456789abcd";

/// Who a test request is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// Key `ADMIN`.
    Admin,
    /// Key `OPERATOR`.
    Operator,
    /// Key `VIEWER`.
    Viewer,
    /// Bearer token `ci`.
    Token,
    /// Key `ADMIN` with a wrong secret.
    WrongSecret,
    /// No credentials.
    Nobody,
}

/// The `[auth]` table of test departments.
pub fn auth_toml(extra: &str) -> String {
    format!(
        "\n[auth]\n{extra}\n\
         [[auth.keys]]\nid = \"ADMIN\"\nsecret_sha256 = \"{}\"\nrole = \"admin\"\n\
         [[auth.keys]]\nid = \"OPERATOR\"\nsecret_sha256 = \"{}\"\nrole = \"operator\"\n\
         [[auth.keys]]\nid = \"VIEWER\"\nsecret_sha256 = \"{}\"\nrole = \"viewer\"\n\
         [[auth.tokens]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\n",
        hash_secret(ADMIN_SECRET),
        hash_secret(OPERATOR_SECRET),
        hash_secret(VIEWER_SECRET),
        hash_secret(CI_TOKEN),
    )
}

/// One answer of the API.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// JSON body (`Null` when empty).
    pub body: Value,
    /// Raw body.
    pub text: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Allow`, `WWW-Authenticate`, `Location` headers, when present.
    pub headers: reqwest::header::HeaderMap,
}

/// The API of a running test department.
pub struct TestApi {
    /// The department.
    pub dept: TestDepartment,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The managed prefix (`/connect/v1/environments/<env>/clusters/<cluster>`).
    pub prefix: String,
    /// State of the router (gateway, auth).
    pub state: AppState,
    http: reqwest::Client,
    transcript: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestApi {
    /// Starts a department with `pools`, the test `[auth]` table (plus `auth_extra` lines in it)
    /// and `extra` TOML, waits for its workers, and serves the API.
    pub async fn start(pools: &[PoolSpec], auth_extra: &str, extra: &str) -> Self {
        capture_logs();
        let id = unique("t");
        let state_dir = scratch(&format!("{id}-state"));
        let text = department_toml(
            &id,
            pools,
            &state_dir,
            &format!("{}{extra}", auth_toml(auth_extra)),
        );
        let department = config::parse(&text, Path::new(PROJECT), &|_| None)
            .unwrap_or_else(|e| panic!("test department is invalid: {e:?}\n{text}"));
        let dept = TestDepartment::start(department).await;
        Self::serve(dept).await
    }

    /// Serves the API of an already running department (e.g. a second API over the same
    /// supervisor, as after a supervisor restart).
    pub async fn serve(dept: TestDepartment) -> Self {
        let wired =
            connect_supervisor::app::wire(dept.supervisor.clone()).expect("API state opens");
        let (state, background) = (wired.state, wired.background);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone());
        // The server `run` and `dev` use, with the department's timeouts and connection bound.
        let limits = dept.supervisor.department().supervisor.http;
        let server = tokio::spawn(async move {
            // The components' background tasks live as long as the server.
            let _background = background;
            connect_supervisor::api::serve::serve(listener, app, limits, std::future::pending())
                .await
                .unwrap();
        });
        let d = dept.supervisor.department();
        let prefix = format!(
            "/connect/v1/environments/{}/clusters/{}",
            d.environment_id, d.kafka_cluster_id
        );
        Self {
            dept,
            base,
            prefix,
            state,
            http: reqwest::Client::new(),
            transcript: Arc::new(Mutex::new(Vec::new())),
            server,
        }
    }

    /// URL of a managed route (`path` relative to the managed prefix, e.g. `/connectors`).
    pub fn managed(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }

    /// URL of any route.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request as `who`, records the answer, and returns it.
    pub async fn call(&self, who: As, method: Method, url: &str, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method.clone(), url);
        request = match who {
            As::Admin => request.basic_auth("ADMIN", Some(ADMIN_SECRET)),
            As::Operator => request.basic_auth("OPERATOR", Some(OPERATOR_SECRET)),
            As::Viewer => request.basic_auth("VIEWER", Some(VIEWER_SECRET)),
            As::Token => request.bearer_auth(CI_TOKEN),
            As::WrongSecret => request.basic_auth("ADMIN", Some("not-the-secret")),
            As::Nobody => request,
        };
        self.send(request, method, url, body).await
    }

    /// Sends a request with this `Authorization` header value (e.g. `Bearer <session token>`),
    /// records the answer, and returns it.
    pub async fn call_with(
        &self,
        authorization: Option<&str>,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.http.request(method.clone(), url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        self.send(request, method, url, body).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Answer {
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap();
        self.transcript
            .lock()
            .unwrap()
            .push(format!("{method} {url} -> {status} {text}"));
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{method} {url} answered {status} with non-JSON {text:?}: {e}")
            })
        };
        if !text.is_empty() {
            let ct = content_type.clone().unwrap_or_default();
            assert!(
                ct.starts_with("application/json"),
                "{method} {url}: JSON answered with content type {ct:?}"
            );
        }
        Answer {
            status,
            body,
            text,
            content_type,
            headers,
        }
    }

    /// Like [`TestApi::call`], then checks the answer against the contract's `operation_id` and
    /// that its status is `expected`.
    pub async fn checked(
        &self,
        operation_id: &str,
        expected: u16,
        who: As,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Answer {
        let answer = self.call(who, method.clone(), url, body).await;
        assert_eq!(
            answer.status, expected,
            "{method} {url} ({operation_id}): expected {expected}, got {} {}",
            answer.status, answer.text
        );
        Contract::get().check(operation_id, answer.status, &answer.body);
        answer
    }

    /// Every answer so far, one line each.
    pub fn transcript(&self) -> String {
        self.transcript.lock().unwrap().join("\n")
    }

    /// Stops serving the API and hands back the department (a supervisor restart keeps the
    /// workers and state folder; only the API process state is new).
    pub fn into_department(self) -> TestDepartment {
        self.server.abort();
        self.dept
    }

    /// Stops the API and the department.
    pub async fn stop(self) {
        self.server.abort();
        self.dept.stop().await;
    }
}

/// Basic credentials as a header value.
pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

/// Installs (once per test binary) a tracing subscriber at debug level that keeps every log line
/// of the supervisor for [`captured_logs`] and still prints it.
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let buffer = log_buffer().clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("connect_supervisor=debug")
            .with_writer(move || Capture(buffer.clone()))
            .with_ansi(false)
            .try_init();
    });
}

/// Every log line of the supervisor so far in this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}
