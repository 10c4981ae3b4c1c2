//! Secrets and their hashes.
//!
//! Every secret the managers hand out (tokens, the join token, node secrets) is 32
//! random bytes in hex behind a short readable prefix that says what it is for. Only
//! the SHA-256 of a secret ever enters a command, the log or the state: a copy of the
//! data dir or a snapshot gives no usable credential. Comparisons of secrets (and of
//! hashes) take the same time wherever they differ.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a secret is for; its prefix tells a person which one they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Token,
    JoinToken,
    NodeSecret,
    /// The accessor id of a token: public, shorter, for listing and revoking.
    Accessor,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::Token => "gantry-token-",
            SecretKind::JoinToken => "gantry-join-",
            SecretKind::NodeSecret => "gantry-node-",
            SecretKind::Accessor => "",
        }
    }

    fn random_bytes(self) -> usize {
        match self {
            SecretKind::Accessor => 12,
            _ => 32,
        }
    }
}

/// The shortest secret an operator may choose (bootstrap, join-token rotation).
pub const MIN_CHOSEN_LEN: usize = 16;

/// A fresh random secret of `kind`.
pub fn generate(kind: SecretKind) -> String {
    let mut bytes = vec![0u8; kind.random_bytes()];
    rand::rng().fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), hex(&bytes))
}

/// The SHA-256 of `secret`, in lowercase hex: what the state keeps.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The SHA-256 of a secret: the only form in which a secret enters a command, the log or
/// the state. It can only be made by hashing a secret (or read back from the state).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        SecretHash(hash(secret))
    }

    /// Whether `secret` hashes to this (compared in constant time).
    pub fn matches(&self, secret: &str) -> bool {
        constant_time_eq(hash(secret).as_bytes(), self.0.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Checks a secret an operator chose: long enough, printable, no spaces.
pub fn check_chosen(secret: &str) -> Result<(), String> {
    if secret.chars().count() < MIN_CHOSEN_LEN {
        return Err(format!(
            "must be at least {MIN_CHOSEN_LEN} characters (or leave it out to get a generated one)"
        ));
    }
    if !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[(byte >> 4) as usize] as char);
        text.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_long() {
        let a = generate(SecretKind::Token);
        let b = generate(SecretKind::Token);
        assert_ne!(a, b);
        assert!(a.starts_with("gantry-token-"));
        assert_eq!(a.len(), "gantry-token-".len() + 64);
        assert!(generate(SecretKind::JoinToken).starts_with("gantry-join-"));
        assert_eq!(generate(SecretKind::Accessor).len(), 24);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash("abc"), hash("abd"));
    }

    #[test]
    fn a_hash_matches_only_its_secret() {
        let hash = SecretHash::of("gantry-token-1");
        assert!(hash.matches("gantry-token-1"));
        assert!(!hash.matches("gantry-token-2"));
        assert!(!format!("{hash:?}").contains("gantry-token-1"));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", hash.as_str()));
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same-longer"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn chosen_secrets_must_be_long_and_plain() {
        assert!(check_chosen("0123456789abcdef").is_ok());
        assert!(check_chosen("short").is_err());
        assert!(check_chosen("0123456789 abcdef").is_err());
    }
}
