//! Passwords (argon2 hashes from config) and bearer tokens (random, in memory, with expiry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use datafusion::catalog::MemorySchemaProvider;
use rand::RngCore;

use crate::access::Role;
use crate::error::{Result, ServeError};

/// The argon2id PHC string of `password`, for `[users.<name>] password-hash`.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ServeError::Internal(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ServeError::Internal(format!("password hash: {e}")))
}

/// Checks `password` against a PHC hash; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `Basic base64(user:password)` from an `authorization` header.
pub fn parse_basic(header: &str) -> Result<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(|| {
            ServeError::Unauthenticated(
                "the handshake needs `authorization: Basic <base64 user:password>`".into(),
            )
        })?;
    // Some clients (Go's Flight client, hence ADBC) send unpadded base64.
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| ServeError::Unauthenticated("malformed Basic credentials".into()))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| ServeError::Unauthenticated("malformed Basic credentials".into()))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| ServeError::Unauthenticated("malformed Basic credentials".into()))?;
    Ok((user.to_string(), password.to_string()))
}

/// Who is calling: one handshake, one session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub role: Arc<Role>,
    pub expires_at: Instant,
    /// The session's own schema (`public`): temporary views created with `CREATE VIEW`.
    pub scratch: Arc<MemorySchemaProvider>,
}

/// Bearer tokens in memory. A restart logs everyone out, which is what a token TTL means anyway.
#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl TokenStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh token for an authenticated user.
    pub fn issue(&self, user: &str, role: Arc<Role>) -> (String, Arc<Session>) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().to_string(),
            user: user.to_string(),
            role,
            expires_at: Instant::now() + self.ttl,
            scratch: Arc::new(MemorySchemaProvider::new()),
        });
        let mut sessions = self.sessions.lock().expect("token store lock");
        let now = Instant::now();
        sessions.retain(|_, s| s.expires_at > now);
        sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The session of `authorization: Bearer <token>`.
    pub fn check(&self, header: Option<&str>) -> Result<Arc<Session>> {
        let header = header.ok_or_else(|| {
            ServeError::Unauthenticated(
                "no credentials: authenticate with the Handshake (Basic user:password), then send `authorization: Bearer <token>` on every call".into(),
            )
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ServeError::Unauthenticated(
                    "expected `authorization: Bearer <token>` from the Handshake".into(),
                )
            })?
            .trim();
        let mut sessions = self.sessions.lock().expect("token store lock");
        match sessions.get(token) {
            Some(session) if session.expires_at > Instant::now() => Ok(session.clone()),
            Some(_) => {
                sessions.remove(token);
                Err(ServeError::Unauthenticated(
                    "the token has expired (server.token-ttl); authenticate again".into(),
                ))
            }
            None => Err(ServeError::Unauthenticated(
                "invalid or unknown token; authenticate again with the Handshake".into(),
            )),
        }
    }

    pub fn active(&self) -> usize {
        let now = Instant::now();
        self.sessions
            .lock()
            .expect("token store lock")
            .values()
            .filter(|s| s.expires_at > now)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Arc<Role> {
        Arc::new(Role::for_tests("analyst", false))
    }

    #[test]
    fn hashes_verify_and_never_equal_the_password() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("s3cret"));
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn basic_header_parses() {
        let header = format!("Basic {}", STANDARD.encode("ana:pa:ss"));
        assert_eq!(
            parse_basic(&header).unwrap(),
            ("ana".to_string(), "pa:ss".to_string())
        );
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("admin:pw"));
        assert_eq!(parse_basic(&unpadded).unwrap().0, "admin");
        assert!(parse_basic("Bearer x").is_err());
    }

    #[test]
    fn tokens_expire_and_unknown_tokens_fail() {
        let store = TokenStore::new(Duration::from_millis(50));
        let (token, _) = store.issue("ana", role());
        let session = store.check(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(session.user, "ana");
        assert!(store.check(Some("Bearer nope")).is_err());
        assert!(store.check(None).is_err());
        std::thread::sleep(Duration::from_millis(80));
        let err = store
            .check(Some(&format!("Bearer {token}")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
    }
}
