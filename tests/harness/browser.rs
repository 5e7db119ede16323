//! A real headless Chromium driven over W3C WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the dashboard tests. The client is the handful of WebDriver commands
//! the tests need, sent with reqwest; `chromedriver` runs in its own process group, which is
//! killed (with the browser) when the [`Browser`] is dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// W3C's key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Folder of the screenshots (`target/screenshots`).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/chromium"),
    ]) {
        for n in names {
            let candidate = dir.join(n);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the browsers it started share its process group.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.driver.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.driver.wait();
    }
}

/// An element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session with a `width`×`height`
    /// window. Fails naming the Debian packages when the browser or the driver is missing.
    pub async fn start(width: u32, height: u32) -> Self {
        let driver_bin = find_on_path(&["chromedriver"]).unwrap_or_else(|| {
            panic!(
                "the dashboard tests need chromedriver: install the Debian packages `chromium` and \
                 `chromium-driver` (apt-get install chromium chromium-driver); .ci/run does"
            )
        });
        let chromium = find_on_path(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!(
                "the dashboard tests need Chromium: install the Debian package `chromium` \
                 (apt-get install chromium chromium-driver); .ci/run does"
            )
        });
        let port = connect_supervisor::supervisor::free_port("127.0.0.1").expect("a free port");
        let mut command = Command::new(&driver_bin);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .map(|v| v["value"]["ready"] == true)
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                        format!("--window-size={width},{height}"),
                    ]
                }
            }}
        });
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            http,
        };
        let v = browser
            .send(reqwest::Method::POST, "/session", Some(caps))
            .await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        browser
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let response = r
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status();
        let v: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    async fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.send(method, &path, body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.session_call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.session_call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.session_call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Elements matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let v = self
            .session_call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one element matching `css` (fails the test when there is none).
    pub async fn find(&self, css: &str) -> Element {
        self.all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css} on the page"))
    }

    /// Clicks an element.
    pub async fn click(&self, e: &Element) {
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The visible text of an element.
    pub async fn text(&self, e: &Element) -> String {
        self.session_call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The value of attribute `name` of an element.
    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.session_call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", e.0),
            None,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// The cookies of the current page (HttpOnly ones included: WebDriver sees them).
    pub async fn cookies(&self) -> Vec<Value> {
        self.session_call(reqwest::Method::GET, "/cookie", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Removes every cookie.
    pub async fn clear_cookies(&self) {
        self.session_call(reqwest::Method::DELETE, "/cookie", None)
            .await;
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.session_call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Saves a PNG of the page as `target/screenshots/<name>.png`, returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self
            .session_call(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is base64"))
            .expect("valid base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Polls until the page source satisfies `check`, reloading `url` between tries when given.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        reload: Option<&str>,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let source = self.source().await;
            if check(&source) {
                return source;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; the page was:\n{source}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Some(url) = reload {
                self.goto(url).await;
            }
        }
    }
}

impl Browser {
    /// Polls until the current URL ends with `suffix` (a click's navigation may still be under
    /// way when WebDriver answers).
    pub async fn wait_url(&self, suffix: &str) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return url;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the browser is at {url}, not at ...{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the page's visible text contains `needle`; returns the text.
    pub async fn wait_text(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self
                .eval(
                    "return document.body ? document.body.innerText : '';",
                    serde_json::json!([]),
                )
                .await
                .as_str()
                .unwrap_or_default()
                .to_string();
            if text.contains(needle) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the page never said {needle:?}; it says:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Browser {
    /// Like [`Browser::screenshot`], of the whole page: the window is made as tall as the page
    /// (at most 4000 px) for the shot, then set back to `width`×`height`.
    pub async fn screenshot_page(&self, name: &str, width: u32, height: u32) -> PathBuf {
        let full = self
            .eval(
                "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);",
                serde_json::json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(u64::from(height))
            .min(4000) as u32;
        // The window's frame is not part of the viewport in headless mode; a little extra keeps
        // the last line in the shot.
        self.resize(width, full.max(height) + 20).await;
        let path = self.screenshot(name).await;
        self.resize(width, height).await;
        path
    }
}

impl Browser {
    /// Presses a key (a WebDriver key code such as [`TAB`] or [`ENTER`]) on the focused element.
    pub async fn press(&self, key: &str) {
        self.session_call(
            reqwest::Method::POST,
            "/actions",
            Some(serde_json::json!({ "actions": [{
                "type": "key", "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }]
            }]})),
        )
        .await;
    }

    /// The focused element's outer HTML (its opening tag is enough to tell which it is).
    pub async fn focused(&self) -> String {
        self.eval(
            "const a = document.activeElement; return a ? a.outerHTML.slice(0, 200) : '';",
            serde_json::json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }
}

/// WebDriver's Tab key.
pub const TAB: &str = "\u{E004}";
/// WebDriver's Enter key.
pub const ENTER: &str = "\u{E007}";
