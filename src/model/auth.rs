//! Who may call the API, as the department file says (`[auth]`): roles, API keys and bearer
//! tokens (stored as SHA-256 digests, never as secrets), and the session lifetime bounds.

use std::fmt;
use std::time::Duration;

/// Lifetime of a session when the department file does not say (`auth.session_lifetime`).
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Shortest configurable session lifetime: the CLI treats a token that expires within a minute
/// as expired already, so anything near that would log it in on every command.
pub const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Longest configurable session lifetime: sessions are meant to be short.
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a principal may do. Ordered: each role can do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only: connectors, status, plugins, validation (a dry run).
    Viewer,
    /// Viewer, plus create/update/pause/resume/restart/delete connectors and their offsets.
    Operator,
    /// Everything, including the worker admin routes (`/v1/pools*`, `/v1/workers*`).
    Admin,
}

impl Role {
    /// The role's name in the department file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key: HTTP Basic with the id as user name and the secret as password.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id (not secret; shown in logs as the principal).
    pub id: String,
    /// SHA-256 of the secret.
    pub secret_sha256: [u8; 32],
    /// Its role.
    pub role: Role,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A bearer token (`Authorization: Bearer <token>`), e.g. for a CI pipeline.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Name of the token (not secret; shown in logs as the principal).
    pub name: String,
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
    /// Its role.
    pub role: Role,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The department's `[auth]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Whether the department file has an `[auth]` table at all. `run` refuses a department
    /// without one, so that a forgotten table never means "open to everyone".
    pub configured: bool,
    /// API keys.
    pub keys: Vec<ApiKey>,
    /// Bearer tokens.
    pub tokens: Vec<ApiToken>,
    /// Requests without credentials are accepted with [`AuthSettings::anonymous_role`]. Meant for
    /// a supervisor behind an authenticating proxy; off by default.
    pub allow_anonymous: bool,
    /// Role of anonymous requests when `allow_anonymous` is on.
    pub anonymous_role: Role,
    /// Deleting a connector needs the admin role instead of operator.
    pub delete_requires_admin: bool,
    /// `/healthz` answers without credentials (for Kubernetes probes).
    pub open_health: bool,
    /// `/metrics` answers without credentials (for Prometheus scrapes).
    pub open_metrics: bool,
    /// Lifetime of the session tokens `POST /api/sessions` issues (`auth.session_lifetime`).
    pub session_lifetime: std::time::Duration,
}

impl Default for AuthSettings {
    /// No `[auth]` table: see [`AuthSettings::configured`].
    fn default() -> Self {
        Self {
            configured: false,
            keys: Vec::new(),
            tokens: Vec::new(),
            allow_anonymous: false,
            anonymous_role: Role::Viewer,
            delete_requires_admin: false,
            open_health: true,
            open_metrics: true,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
        }
    }
}

impl AuthSettings {
    /// The role a request without credentials gets, if any. A department file without `[auth]`
    /// (only reachable through the library: `run` refuses it, `dev` adds a key) is treated as a
    /// trusted embedding and gets admin, so library users and tests keep working.
    pub fn anonymous(&self) -> Option<Role> {
        if !self.configured {
            Some(Role::Admin)
        } else if self.allow_anonymous {
            Some(self.anonymous_role)
        } else {
            None
        }
    }
}

/// Parses a 64-character hex SHA-256 digest.
pub fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}
