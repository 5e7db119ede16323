//! Dashboard sessions: a server-side table of signed-in API keys, and the CSRF tokens of the
//! sign-in form.
//!
//! A session is created only from an API key and secret that [`Authenticator`] accepts (the same
//! keys as the API). The browser holds a random 256-bit session id in an HttpOnly,
//! SameSite=Strict cookie; the table keeps only the SHA-256 of that id, the key id, the role, the
//! digest of the secret it was opened with, its CSRF token and its expiry. Every lookup checks
//! the key again against the department's current keys, so a removed key (or a changed secret or
//! role) ends its sessions. The table lives in memory: a supervisor restart signs everyone out.
//!
//! Session ids and CSRF tokens are never logged and never leave here except in the cookie and
//! the forms; `Debug` shows neither.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::auth::{AuthSettings, Authenticator, Principal, Role, Scheme, digest};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cs_session";
/// Name of the cookie holding the sign-in form's CSRF token (double submit: the form field must
/// equal it).
pub const LOGIN_CSRF_COOKIE: &str = "cs_login_csrf";
/// Name of the CSRF form field of every dashboard form.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; the oldest are dropped beyond it (a flood of sign-ins cannot
/// grow the table without bound).
pub const MAX_SESSIONS: usize = 10_000;

/// A signed-in browser.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Key id (the principal's name).
    pub key_id: String,
    /// Role of the key at sign-in (checked again on every lookup).
    pub role: Role,
    /// The synchronizer token every form of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
    secret_sha256: [u8; 32],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("key_id", &self.key_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The principal of requests made in this session.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.key_id.clone(),
            role: self.role,
            // A session stands for the API key it was opened with.
            scheme: Scheme::ApiKey,
        }
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        tokens_match(&self.csrf, presented)
    }
}

/// Whether two tokens are equal, in constant time for equal lengths.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// A new random token: 32 bytes, URL-safe base64 without padding.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signed-in sessions of the department.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.len())
            .finish()
    }
}

impl Sessions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().expect("sessions lock")
    }

    /// Signs in with an API key id and secret: the new session id (for the cookie) and the
    /// session, or `None` when the key or secret is wrong (the same check as HTTP Basic).
    pub fn sign_in(
        &self,
        auth: &Authenticator,
        key_id: &str,
        secret: &str,
    ) -> Option<(String, Session)> {
        if key_id.is_empty() || secret.is_empty() || key_id.contains(':') {
            return None;
        }
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key_id}:{secret}"))
        );
        let principal = auth.authenticate(Some(&header)).ok()?;
        if principal.scheme != Scheme::ApiKey {
            return None;
        }
        let id = new_token();
        let session = Session {
            key_id: principal.name,
            role: principal.role,
            csrf: new_token(),
            expires: Instant::now() + SESSION_TTL,
            secret_sha256: digest(secret),
        };
        let mut table = self.lock();
        let now = Instant::now();
        table.retain(|_, s| s.expires > now);
        while table.len() >= MAX_SESSIONS {
            let Some(oldest) = table.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else {
                break;
            };
            table.remove(&oldest);
        }
        table.insert(digest(&id), session.clone());
        Some((id, session))
    }

    /// The live session of cookie value `id`: not expired, and its key still in `settings` with
    /// the same secret and role. A session that fails the check is removed.
    pub fn lookup(&self, settings: &AuthSettings, id: &str) -> Option<Session> {
        let hash = digest(id);
        let mut table = self.lock();
        let session = table.get(&hash)?.clone();
        let key_still_valid = settings.keys.iter().any(|k| {
            bool::from(k.id.as_bytes().ct_eq(session.key_id.as_bytes()))
                && bool::from(k.secret_sha256.ct_eq(&session.secret_sha256))
                && k.role == session.role
        });
        if session.expires <= Instant::now() || !key_still_valid {
            table.remove(&hash);
            return None;
        }
        Some(session)
    }

    /// Ends the session of cookie value `id` (sign-out).
    pub fn sign_out(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

/// `Set-Cookie` value of a session cookie; `secure` (the browser reached the supervisor over
/// HTTPS, through a proxy that says so) adds `Secure`, so the cookie never travels in clear.
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that removes cookie `name` set for `path`.
pub fn expired_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// `Set-Cookie` value of the sign-in form's CSRF cookie (lives as long as a form may stay open).
pub fn login_csrf_cookie(token: &str) -> String {
    format!("{LOGIN_CSRF_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=3600")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ApiKey;

    fn settings() -> AuthSettings {
        AuthSettings {
            configured: true,
            keys: vec![
                ApiKey {
                    id: "OPKEY".into(),
                    secret_sha256: digest("op-secret"),
                    role: Role::Operator,
                },
                ApiKey {
                    id: "VIEWKEY".into(),
                    secret_sha256: digest("view-secret"),
                    role: Role::Viewer,
                },
            ],
            ..AuthSettings::default()
        }
    }

    #[test]
    fn a_right_secret_opens_a_session_with_the_keys_role_and_a_wrong_one_does_not() {
        let auth = Authenticator::new(settings());
        let sessions = Sessions::new();
        let (id, s) = sessions.sign_in(&auth, "OPKEY", "op-secret").unwrap();
        assert_eq!((s.key_id.as_str(), s.role), ("OPKEY", Role::Operator));
        assert_eq!(sessions.lookup(auth.settings(), &id), Some(s.clone()));
        assert_eq!(s.principal().name, "OPKEY");
        assert!(sessions.sign_in(&auth, "OPKEY", "view-secret").is_none());
        assert!(sessions.sign_in(&auth, "NOPE", "op-secret").is_none());
        assert!(sessions.sign_in(&auth, "OPKEY", "").is_none());
        assert!(sessions.sign_in(&auth, "OP:KEY", "op-secret").is_none());
        assert_eq!(sessions.len(), 1, "failed sign-ins add nothing");
        assert!(sessions.lookup(auth.settings(), "forged").is_none());
    }

    #[test]
    fn a_removed_key_or_changed_secret_or_role_ends_its_sessions() {
        let auth = Authenticator::new(settings());
        let sessions = Sessions::new();
        let (id, _) = sessions.sign_in(&auth, "OPKEY", "op-secret").unwrap();
        let mut removed = settings();
        removed.keys.retain(|k| k.id != "OPKEY");
        assert!(sessions.lookup(&removed, &id).is_none());
        assert!(sessions.is_empty(), "the ended session is dropped");

        let (id, _) = sessions.sign_in(&auth, "OPKEY", "op-secret").unwrap();
        let mut rotated = settings();
        rotated.keys[0].secret_sha256 = digest("new-secret");
        assert!(sessions.lookup(&rotated, &id).is_none());

        let (id, _) = sessions.sign_in(&auth, "OPKEY", "op-secret").unwrap();
        let mut demoted = settings();
        demoted.keys[0].role = Role::Viewer;
        assert!(sessions.lookup(&demoted, &id).is_none());
    }

    #[test]
    fn sign_out_ends_the_session() {
        let auth = Authenticator::new(settings());
        let sessions = Sessions::new();
        let (id, _) = sessions.sign_in(&auth, "VIEWKEY", "view-secret").unwrap();
        sessions.sign_out(&id);
        assert!(sessions.lookup(auth.settings(), &id).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_expire() {
        let auth = Authenticator::new(settings());
        let sessions = Sessions::new();
        let (id, _) = sessions.sign_in(&auth, "VIEWKEY", "view-secret").unwrap();
        tokio::time::advance(SESSION_TTL - Duration::from_secs(1)).await;
        assert!(sessions.lookup(auth.settings(), &id).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(sessions.lookup(auth.settings(), &id).is_none());
    }

    #[test]
    fn csrf_tokens_compare_exactly_and_never_empty() {
        let auth = Authenticator::new(settings());
        let (_, s) = Sessions::new()
            .sign_in(&auth, "OPKEY", "op-secret")
            .unwrap();
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&new_token()));
        assert!(!tokens_match("", ""));
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 43);
    }

    #[test]
    fn cookies_are_read_by_name_and_set_strict_and_http_only() {
        let h = "a=1; cs_session=abc ; cs_login_csrf=xyz";
        assert_eq!(cookie(h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(h, LOGIN_CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(h, "b"), None);
        let set = session_cookie("abc", false);
        for part in ["HttpOnly", "SameSite=Strict", "Max-Age=28800", "Path=/ui"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Secure"));
        assert!(session_cookie("abc", true).ends_with("; Secure"));
        assert!(expired_cookie(SESSION_COOKIE, "/ui").contains("Max-Age=0"));
    }

    #[test]
    fn debug_shows_neither_the_csrf_token_nor_the_secret_digest() {
        let auth = Authenticator::new(settings());
        let (_, s) = Sessions::new()
            .sign_in(&auth, "OPKEY", "op-secret")
            .unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains(&s.csrf), "{text}");
        assert!(text.contains("OPKEY"));
    }
}
