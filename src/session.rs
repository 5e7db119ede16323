//! Session tokens: the JWTs the supervisor issues at `POST /api/sessions` (the Confluent CLI's
//! login, an API key id as e-mail and its secret as password) and accepts as bearers on every
//! route with exactly the role of the key they were issued for.
//!
//! Owns the signing key (32 random bytes in `<state_dir>/session.key`, created 0600 on first use
//! and kept across restarts so sessions survive one), issuing (HS256, `iss`, `aud` = department,
//! `sub` = key id, `exp`) and verification (algorithm, signature, issuer, audience, expiry, and
//! that the key is still in the department file *unchanged*: each token carries a fingerprint of
//! the key's id, secret digest and role, so removing, rotating or re-roling a key ends its
//! sessions). Pure except for reading/creating the key file. It must never log or return a
//! token, a secret or the signing key; [`SessionSigner`]'s `Debug` shows none of them.
//!
//! The CLI never checks the signature (it only decodes `exp` to know when to log in again), so
//! the token's format is the supervisor's own business; HS256 keeps it a standard JWT that any
//! JWT library can inspect.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::ApiKey;

/// File name of the signing key in the state folder.
pub const SESSION_KEY_FILE: &str = "session.key";
pub use crate::model::auth::{
    DEFAULT_SESSION_LIFETIME, MAX_SESSION_LIFETIME, MIN_SESSION_LIFETIME,
};
/// `iss` of every token.
pub const ISSUER: &str = "connect-supervisor";
/// Clock skew tolerated on `iat` (a token issued "in the future" by this much is still fine).
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Length of the signing key.
const KEY_LEN: usize = 32;
/// Length of the key fingerprint carried in a token.
const FINGERPRINT_LEN: usize = 16;
/// The only header this supervisor issues and accepts.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading, creating or writing the key file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file exists but does not hold a key.
    #[error(
        "{path} does not hold a session signing key (64 hex digits); remove it to have a new \
         one created (every session then ends)"
    )]
    BadKeyFile {
        /// The file.
        path: PathBuf,
    },
}

impl SessionError {
    /// Short, bounded code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "session_key_io",
            Self::BadKeyFile { .. } => "session_key_invalid",
        }
    }
}

/// Why a presented session token is refused. Says what is wrong with the token, never what it
/// contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Not three base64url parts with JSON inside, or not the header this server issues.
    #[error("is not a session token of this supervisor")]
    Malformed,
    /// The signature does not match (tampered, or signed by another supervisor).
    #[error("has an invalid signature")]
    Signature,
    /// Issued by another service.
    #[error("was issued by another service")]
    Issuer,
    /// Issued for another department.
    #[error("was issued for another department")]
    Audience,
    /// `exp` has passed.
    #[error("has expired")]
    Expired,
    /// `iat` lies in the future.
    #[error("is not valid yet")]
    NotYetValid,
    /// Its API key was removed from the department file, or its secret or role changed.
    #[error("belongs to an API key that was removed or changed")]
    KeyRevoked,
}

impl Rejected {
    /// Short, bounded code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "session_malformed",
            Self::Signature => "session_signature",
            Self::Issuer => "session_issuer",
            Self::Audience => "session_audience",
            Self::Expired => "session_expired",
            Self::NotYetValid => "session_not_yet_valid",
            Self::KeyRevoked => "session_key_revoked",
        }
    }
}

/// The payload of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// [`ISSUER`].
    pub iss: String,
    /// The department id.
    pub aud: String,
    /// The API key id.
    pub sub: String,
    /// The key's role when issued (informational: the key's entry decides, see `kfp`).
    pub role: String,
    /// Fingerprint of the key entry (id, secret digest, role), base64url.
    pub kfp: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Random token id (two logins never produce the same token).
    pub jti: String,
}

/// A freshly issued token.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The JWT.
    pub token: String,
    /// Its `exp` (seconds since the epoch).
    pub expires_at: i64,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Issues and verifies the department's session tokens.
#[derive(Clone)]
pub struct SessionSigner {
    key: [u8; KEY_LEN],
    audience: String,
    lifetime: Duration,
}

impl fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSigner")
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether a bearer value has the shape of a JWT (three base64url parts, a JSON header). Static
/// bearer tokens generated by `new-key --token` are alphanumeric and never look like one.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SessionSigner {
    /// A signer with this key (tests and benches; the daemon uses [`SessionSigner::load_or_create`]).
    pub fn from_key(key: [u8; KEY_LEN], audience: &str, lifetime: Duration) -> Self {
        Self {
            key,
            audience: audience.to_string(),
            lifetime,
        }
    }

    /// The signer whose key is in `<state_dir>/session.key`, creating a random key (mode 0600)
    /// on first use. `audience` is the department id.
    pub fn load_or_create(
        state_dir: &Path,
        audience: &str,
        lifetime: Duration,
    ) -> Result<Self, SessionError> {
        let path = state_dir.join(SESSION_KEY_FILE);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| SessionError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(state_dir).map_err(io("cannot create", state_dir))?;
        let key = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let key: [u8; KEY_LEN] = rand::random();
                file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io("cannot write", &path))?;
                tracing::info!(path = %path.display(), "Session signing key created.");
                key
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).map_err(io("cannot read", &path))?;
                let mode = std::fs::metadata(&path)
                    .map_err(io("cannot stat", &path))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                        "The session signing key is readable by others; chmod 600 it.");
                }
                hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
                    .ok_or_else(|| SessionError::BadKeyFile { path: path.clone() })?
            }
            Err(source) => {
                return Err(SessionError::Io {
                    action: "cannot create",
                    path,
                    source,
                });
            }
        };
        Ok(Self::from_key(key, audience, lifetime))
    }

    /// How long a session lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn fingerprint(&self, key: &ApiKey) -> String {
        let mac = hmac_sha256(
            &self.key,
            &[
                b"connect-supervisor key fingerprint\0",
                key.id.as_bytes(),
                b"\0",
                &key.secret_sha256,
                b"\0",
                key.role.as_str().as_bytes(),
            ],
        );
        URL_SAFE_NO_PAD.encode(&mac[..FINGERPRINT_LEN])
    }

    /// A session for `key`, valid for the configured lifetime from now.
    pub fn issue(&self, key: &ApiKey) -> Issued {
        let now = now_unix();
        self.issue_at(key, now, now + self.lifetime.as_secs() as i64)
    }

    /// A token for `key` issued at `iat` and expiring at `exp` (seconds since the epoch).
    pub fn issue_at(&self, key: &ApiKey, iat: i64, exp: i64) -> Issued {
        let jti: [u8; 16] = rand::random();
        let claims = Claims {
            iss: ISSUER.to_string(),
            aud: self.audience.clone(),
            sub: key.id.clone(),
            role: key.role.as_str().to_string(),
            kfp: self.fingerprint(key),
            iat,
            exp,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialise");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = hmac_sha256(&self.key, &[signing_input.as_bytes()]);
        Issued {
            token: format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            expires_at: exp,
        }
    }

    /// The key of `keys` a token was issued for, if it verifies now.
    pub fn verify<'k>(
        &self,
        token: &str,
        keys: &'k [ApiKey],
    ) -> Result<(&'k ApiKey, Claims), Rejected> {
        self.verify_at(token, keys, now_unix())
    }

    /// [`SessionSigner::verify`] at time `now` (seconds since the epoch).
    pub fn verify_at<'k>(
        &self,
        token: &str,
        keys: &'k [ApiKey],
        now: i64,
    ) -> Result<(&'k ApiKey, Claims), Rejected> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejected::Malformed);
        };
        // Only the exact header issued here: no `alg: none`, no algorithm chosen by the caller.
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Rejected::Malformed)?;
        let header_value: serde_json::Value =
            serde_json::from_slice(&header_json).map_err(|_| Rejected::Malformed)?;
        if header_value.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(Rejected::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Rejected::Malformed)?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let expected = hmac_sha256(&self.key, &[signing_input.as_bytes()]);
        if !bool::from(expected.as_slice().ct_eq(signature.as_slice())) {
            return Err(Rejected::Signature);
        }
        // The payload is parsed only once the signature proved it is ours.
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(Rejected::Malformed)?;
        if claims.iss != ISSUER {
            return Err(Rejected::Issuer);
        }
        if claims.aud != self.audience {
            return Err(Rejected::Audience);
        }
        if now >= claims.exp {
            return Err(Rejected::Expired);
        }
        if claims.iat > now + CLOCK_SKEW_SECONDS {
            return Err(Rejected::NotYetValid);
        }
        let key = keys
            .iter()
            .find(|k| k.id == claims.sub)
            .ok_or(Rejected::KeyRevoked)?;
        if !bool::from(
            self.fingerprint(key)
                .as_bytes()
                .ct_eq(claims.kfp.as_bytes()),
        ) {
            return Err(Rejected::KeyRevoked);
        }
        Ok((key, claims))
    }
}

/// The payload of a JWT decoded without verification, as the Confluent CLI reads it (to find
/// `exp`). For tests and diagnostics only: never trust what it returns.
pub fn decode_unverified(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, digest};

    fn key(id: &str, secret: &str, role: Role) -> ApiKey {
        ApiKey {
            id: id.into(),
            secret_sha256: digest(secret),
            role,
        }
    }

    fn signer() -> SessionSigner {
        SessionSigner::from_key([7; KEY_LEN], "dept1", DEFAULT_SESSION_LIFETIME)
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vectors() {
        // Test case 1: 20 bytes of 0x0b, "Hi There".
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2: key "Jefe", split input.
        assert_eq!(
            hex::encode(hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn an_issued_token_is_a_jwt_the_cli_can_read_and_verifies_to_its_key() {
        let s = signer();
        let keys = vec![
            key("ADMIN", "a", Role::Admin),
            key("VIEW", "v", Role::Viewer),
        ];
        let issued = s.issue_at(&keys[1], 1_000, 1_000 + 8 * 3600);
        assert!(looks_like_jwt(&issued.token));
        assert_eq!(issued.token.split('.').count(), 3);
        let payload = decode_unverified(&issued.token).unwrap();
        assert_eq!(payload["exp"], 1_000 + 8 * 3600);
        assert_eq!(payload["sub"], "VIEW");
        let (k, claims) = s.verify_at(&issued.token, &keys, 2_000).unwrap();
        assert_eq!((k.id.as_str(), k.role), ("VIEW", Role::Viewer));
        assert_eq!(Role::parse(&claims.role), Some(Role::Viewer));
        // Nothing secret inside: the payload holds no secret or digest.
        let text = payload.to_string();
        assert!(!text.contains(&hex::encode(digest("v"))), "{text}");
        assert_ne!(s.issue_at(&keys[1], 1_000, 2_000).token, issued.token);
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let s = signer();
        let keys = vec![key("K", "s", Role::Operator)];
        let t = s.issue_at(&keys[0], 1_000, 2_000).token;
        assert!(s.verify_at(&t, &keys, 1_999).is_ok());
        assert_eq!(s.verify_at(&t, &keys, 2_000), Err(Rejected::Expired));
        assert_eq!(s.verify_at(&t, &keys, 99_999), Err(Rejected::Expired));
        let future = s.issue_at(&keys[0], 5_000, 9_000).token;
        assert_eq!(
            s.verify_at(&future, &keys, 4_000),
            Err(Rejected::NotYetValid)
        );
        assert!(
            s.verify_at(&future, &keys, 5_000 - CLOCK_SKEW_SECONDS)
                .is_ok()
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let s = signer();
        let keys = vec![
            key("VIEW", "v", Role::Viewer),
            key("ADMIN", "a", Role::Admin),
        ];
        let t = s.issue_at(&keys[0], 1_000, 9_000).token;
        let parts: Vec<&str> = t.split('.').collect();
        // A payload rewritten to claim another key (an admin), signature kept.
        let mut claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims.sub = "ADMIN".into();
        claims.role = "admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(s.verify_at(&forged, &keys, 2_000), Err(Rejected::Signature));
        // A flipped signature character. The first one: the last character of
        // a 32-byte signature carries only four bits, so changing it can make
        // the base64 non-canonical (Malformed) instead of a wrong signature.
        let mut sig = parts[2].to_string();
        let first = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(..1, first);
        let flipped = format!("{}.{}.{sig}", parts[0], parts[1]);
        assert_eq!(
            s.verify_at(&flipped, &keys, 2_000),
            Err(Rejected::Signature)
        );
        // `alg: none` with no signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert_eq!(s.verify_at(&none, &keys, 2_000), Err(Rejected::Malformed));
        // Another supervisor's key.
        let other = SessionSigner::from_key([8; KEY_LEN], "dept1", DEFAULT_SESSION_LIFETIME);
        assert_eq!(other.verify_at(&t, &keys, 2_000), Err(Rejected::Signature));
        for garbage in ["", "a.b", "a.b.c.d", "eyJ.eyJ.x", "!!.!!.!!"] {
            assert_eq!(
                s.verify_at(garbage, &keys, 2_000),
                Err(Rejected::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn another_department_or_issuer_is_refused() {
        let keys = vec![key("K", "s", Role::Operator)];
        let dept2 = SessionSigner::from_key([7; KEY_LEN], "dept2", DEFAULT_SESSION_LIFETIME);
        let t = dept2.issue_at(&keys[0], 1_000, 9_000).token;
        assert_eq!(
            signer().verify_at(&t, &keys, 2_000),
            Err(Rejected::Audience)
        );
        // A validly signed token from another issuer (same key material, e.g. a copied state
        // folder used by another tool).
        let s = signer();
        let mut claims = decode_unverified(&s.issue_at(&keys[0], 1_000, 9_000).token).unwrap();
        claims["iss"] = "someone-else".into();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = hmac_sha256(&[7; KEY_LEN], &[input.as_bytes()]);
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(s.verify_at(&t, &keys, 2_000), Err(Rejected::Issuer));
    }

    #[test]
    fn a_removed_rotated_or_re_roled_key_ends_its_sessions() {
        let s = signer();
        let keys = vec![key("K", "s", Role::Operator), key("O", "o", Role::Admin)];
        let t = s.issue_at(&keys[0], 1_000, 9_000).token;
        assert!(s.verify_at(&t, &keys, 2_000).is_ok());
        let removed = vec![keys[1].clone()];
        assert_eq!(s.verify_at(&t, &removed, 2_000), Err(Rejected::KeyRevoked));
        let rotated = vec![key("K", "new-secret", Role::Operator)];
        assert_eq!(s.verify_at(&t, &rotated, 2_000), Err(Rejected::KeyRevoked));
        let promoted = vec![key("K", "s", Role::Admin)];
        assert_eq!(s.verify_at(&t, &promoted, 2_000), Err(Rejected::KeyRevoked));
    }

    #[test]
    fn the_key_file_is_created_0600_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = SessionSigner::load_or_create(&state, "dept1", DEFAULT_SESSION_LIFETIME).unwrap();
        let path = state.join(SESSION_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = SessionSigner::load_or_create(&state, "dept1", DEFAULT_SESSION_LIFETIME).unwrap();
        let keys = vec![key("K", "s", Role::Viewer)];
        let t = a.issue(&keys[0]).token;
        assert!(b.verify(&t, &keys).is_ok(), "a restart keeps the sessions");
        assert!(format!("{a:?}").contains("dept1"));
        assert!(!format!("{a:?}").contains(&hex::encode(a.key)));
        std::fs::write(&path, "not a key").unwrap();
        let e =
            SessionSigner::load_or_create(&state, "dept1", DEFAULT_SESSION_LIFETIME).unwrap_err();
        assert_eq!(e.code(), "session_key_invalid");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
