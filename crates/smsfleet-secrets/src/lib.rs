//! Token and password protection, derived from the one server key an
//! operator configures. Its own crate because the ingress (which checks
//! tokens and passwords) and the accounts role (which sets them) both need
//! it, and the ingress should not depend on a role.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the server key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Keys derived from the one server key an operator configures.
#[derive(Clone)]
pub struct Secrets {
    lookup_key: [u8; 32],
    seal_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl Secrets {
    /// From the hex server key (`SMSFLEET_SERVER_KEY`).
    pub fn from_hex(server_key: &str) -> Result<Secrets, SecretsError> {
        let raw = hex::decode(server_key.trim()).map_err(|_| SecretsError::BadKey)?;
        if raw.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        // Separate keys per purpose, so a leak of one use cannot serve another.
        Ok(Secrets {
            lookup_key: hmac(&raw, b"smsfleet token lookup v1"),
            seal_key: hmac(&raw, b"smsfleet token seal v1"),
        })
    }

    /// A fresh random server key, hex.
    pub fn generate_key() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// The keyed hash the account cache is indexed by.
    pub fn token_lookup(&self, token: &str) -> String {
        hex::encode(hmac(&self.lookup_key, token.as_bytes()))
    }

    /// A keyed fingerprint of a password that an ingress may keep in memory
    /// to remember a successful argon2 check without keeping the password.
    /// Domain-separated from token lookups.
    pub fn password_fingerprint(&self, password: &str) -> String {
        let mut data = b"password fingerprint v1\0".to_vec();
        data.extend_from_slice(password.as_bytes());
        hex::encode(hmac(&self.lookup_key, &data))
    }

    /// Constant-time comparison of a presented token against a stored lookup hash.
    pub fn token_matches(&self, token: &str, stored_lookup: &str) -> bool {
        let computed = self.token_lookup(token);
        computed.as_bytes().ct_eq(stored_lookup.as_bytes()).into()
    }

    pub fn seal(&self, token: &str) -> String {
        let cipher = Aes256Gcm::new((&self.seal_key).into());
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        // Encryption of a short in-memory buffer cannot fail.
        let ct = cipher.encrypt(nonce, token.as_bytes()).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<String> {
        let raw = B64.decode(sealed).ok()?;
        if raw.len() < 13 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        let cipher = Aes256Gcm::new((&self.seal_key).into());
        let pt = cipher.decrypt(Nonce::from_slice(nonce), ct).ok()?;
        String::from_utf8(pt).ok()
    }
}

/// A webservices token: 32 lower-case hex characters, like playSMS's.
pub fn generate_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id (19 MiB, 2 passes): login is rare, and a
    // stolen database must stay expensive to crack.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, SecretsError> {
    argon2().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| SecretsError::Hash(e.to_string()))
}

/// Constant-time by construction (argon2 verification compares digests in
/// constant time).
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_round_trip_and_lookup() {
        let s = Secrets::from_hex(&Secrets::generate_key()).unwrap();
        let t = generate_token();
        assert_eq!(t.len(), 32);
        let sealed = s.seal(&t);
        assert!(!sealed.contains(&t));
        assert_eq!(s.open(&sealed).as_deref(), Some(t.as_str()));
        assert!(s.token_matches(&t, &s.token_lookup(&t)));
        assert!(!s.token_matches("other", &s.token_lookup(&t)));
        let other = Secrets::from_hex(&Secrets::generate_key()).unwrap();
        assert_eq!(other.open(&sealed), None);
        assert!(Secrets::from_hex("abc").is_err());
        assert_eq!(s.password_fingerprint("pw1"), s.password_fingerprint("pw1"));
        assert_ne!(s.password_fingerprint("pw1"), s.password_fingerprint("pw2"));
        assert_ne!(s.password_fingerprint("pw1"), s.token_lookup("pw1"));
    }

    #[test]
    fn passwords() {
        let h = hash_password("alicepass1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "alicepass1"));
        assert!(!verify_password(&h, "alicepass2"));
        assert!(!verify_password("garbage", "x"));
    }
}
