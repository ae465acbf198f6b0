//! Static tokens: the hashed tokens file, its in-memory index, and helpers for minting tokens.
//!
//! Only SHA-256 hashes are stored, so the file is not a secret in itself. Tokens are high-entropy
//! random strings, so an unsalted fast hash is enough (there is nothing to brute-force).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{AuthFailure, TokenFileError};

/// The prefix of tokens made by [`new_token`], so they are recognisable in secret scanners.
pub const TOKEN_PREFIX: &str = "cairn_";

/// A fresh random token: [`TOKEN_PREFIX`] and 32 random bytes in unpadded base64url (no `.`, so
/// it is never mistaken for a JWT).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The lowercase hex SHA-256 of `token`, as stored in the tokens file.
pub fn hash_token(token: &str) -> String {
    hex::encode(digest(token))
}

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Parses 64 hex digits (either case) into a digest.
pub(crate) fn parse_hash(hex_digits: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits.trim(), &mut out).ok()?;
    Some(out)
}

/// Compares two digests in constant time. The inputs are hashes, so this is belt and braces.
pub(crate) fn digest_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    sha256: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// What a token stands for.
#[derive(Debug)]
pub(crate) struct TokenEntry {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
}

/// The loaded tokens, indexed by hash for O(1) lookup.
#[derive(Debug, Default)]
pub(crate) struct TokenSet {
    by_hash: HashMap<[u8; 32], Arc<TokenEntry>>,
    names: HashSet<String>,
}

impl TokenSet {
    /// Parses a tokens file; any bad entry refuses the whole file.
    pub(crate) fn parse(text: &str) -> Result<TokenSet, TokenFileError> {
        let raw: RawFile = toml::from_str(text)?;
        let mut set = TokenSet::default();
        for (index, t) in raw.token.into_iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(TokenFileError::EmptyName { index });
            }
            let Some(hash) = parse_hash(&t.sha256) else {
                return Err(TokenFileError::BadHash {
                    index,
                    name: t.name,
                });
            };
            if set.by_hash.contains_key(&hash) {
                return Err(TokenFileError::DuplicateHash {
                    index,
                    name: t.name,
                });
            }
            set.names.insert(t.name.clone());
            let entry = TokenEntry {
                name: t.name,
                groups: t.groups,
            };
            set.by_hash.insert(hash, Arc::new(entry));
        }
        Ok(set)
    }

    /// How many tokens are loaded.
    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// The entry for a Bearer token.
    pub(crate) fn bearer(&self, token: &str) -> Result<&TokenEntry, AuthFailure> {
        self.by_hash
            .get(&digest(token))
            .map(|e| &**e)
            .ok_or(AuthFailure::UnknownToken)
    }

    /// The entry for a Basic login and password: the password's token must carry that name.
    pub(crate) fn basic(&self, login: &str, password: &str) -> Result<&TokenEntry, AuthFailure> {
        match self.by_hash.get(&digest(password)) {
            Some(e) if e.name == login => Ok(e),
            _ if self.names.contains(login) => Err(AuthFailure::BadPassword),
            _ => Err(AuthFailure::UnknownUser),
        }
    }
}
