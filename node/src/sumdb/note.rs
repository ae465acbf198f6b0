//! Verification of signed notes, the format in which a Go checksum database (such as
//! sum.golang.org) publishes its signed tree heads and lookup answers.
//!
//! This is the verifying half of `golang.org/x/mod/sumdb/note`. A note is UTF-8 text ending in
//! a newline, then a blank line, then one line per signature:
//! `— <key name> <base64(4-byte big-endian key hash || signature)>`. A verifier key is written
//! `<name>+<8 hex digits of key hash>+<base64(0x01 || 32-byte Ed25519 public key)>`, where the
//! key hash is the first four bytes of SHA-256 over the name, a newline and the encoded key.
//! Parsing follows Go's rules exactly (UTF-8, no control characters, at most 100 signatures,
//! Go's base64 dialect); signatures are checked with `ring`'s Ed25519.

use std::collections::HashSet;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// Algorithm byte that prefixes an Ed25519 public key in a verifier key.
const ALG_ED25519: u8 = 1;

/// Go refuses notes with more signature lines than this.
const MAX_SIGNATURES: usize = 100;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Go's `base64.StdEncoding`: padded, but lenient about non-zero trailing bits.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Why a verifier key or a signed note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key is not `<name>+<hash>+<key>` with a valid name, hash and key.
    #[error("malformed verifier id")]
    MalformedVerifierKey,
    /// The verifier key uses an algorithm other than Ed25519.
    #[error("unknown verifier algorithm")]
    UnknownAlgorithm,
    /// The key hash in the verifier key does not match its name and public key.
    #[error("invalid verifier hash")]
    VerifierHashMismatch,
    /// The message is not a well-formed signed note.
    #[error("malformed note")]
    Malformed,
    /// A signature by a known key does not verify over the note text.
    #[error("invalid signature for key {name}+{hash:08x}")]
    InvalidSignature {
        /// Name of the key.
        name: String,
        /// Hash of the key.
        hash: u32,
    },
    /// More than one of the given verifiers has the name and hash of a signature.
    #[error("ambiguous key {name}+{hash:08x}")]
    AmbiguousKey {
        /// Name of the key.
        name: String,
        /// Hash of the key.
        hash: u32,
    },
    /// The note is well formed but none of its signatures is by a given verifier.
    #[error("note has no verifiable signatures")]
    Unverified(Box<Note>),
}

/// An Ed25519 public key of a named signer, parsed from a verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: [u8; 32],
}

impl Verifier {
    /// Parses a verifier key such as
    /// `sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let (name, rest) = vkey.split_once('+').unwrap_or((vkey, ""));
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let (Some(hash), Some(key)) = (parse_hex_u32(hash16), decode_base64(key64)) else {
            return Err(NoteError::MalformedVerifierKey);
        };
        if !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedVerifierKey);
        }
        if key_hash(name, &key) != hash {
            return Err(NoteError::VerifierHashMismatch);
        }
        match key.split_first() {
            Some((&ALG_ED25519, public)) => {
                let key =
                    <[u8; 32]>::try_from(public).map_err(|_| NoteError::MalformedVerifierKey)?;
                Ok(Self {
                    name: name.to_owned(),
                    hash,
                    key,
                })
            }
            Some(_) => Err(NoteError::UnknownAlgorithm),
            None => Err(NoteError::MalformedVerifierKey),
        }
    }

    /// The signer's name, usually the database's host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit hash identifying this key among the keys of the same name.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Whether `sig` is a valid Ed25519 signature of `msg` by this key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(msg, sig)
            .is_ok()
    }
}

/// A signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name of the signing key.
    pub name: String,
    /// Hash of the signing key.
    pub hash: u32,
    /// The signature as written in the note (key hash and signature bytes, base64).
    pub base64: String,
}

/// An opened note: its text and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signatures that were verified by a given verifier.
    pub sigs: Vec<Signature>,
    /// Signatures by keys that were not given (and so were not checked).
    pub unverified_sigs: Vec<Signature>,
}

/// Parses `msg` as a signed note and checks that `verifier` signed it.
///
/// Signatures by other keys are ignored (listed in [`Note::unverified_sigs`]); a bad signature
/// by `verifier`'s key is an error, and so is a note without one.
pub fn open(msg: &[u8], verifier: &Verifier) -> Result<Note, NoteError> {
    open_with(msg, std::slice::from_ref(verifier))
}

/// Like [`open`], but accepts a signature by any of `known`, like Go's `Open` with a
/// `VerifierList`: every signature by one of them must verify and at least one must be present.
pub fn open_with(msg: &[u8], known: &[Verifier]) -> Result<Note, NoteError> {
    let (text, sig_block) = split_note(msg)?;
    let mut opener = Opener {
        known,
        text,
        note: Note {
            text: text.to_owned(),
            sigs: Vec::new(),
            unverified_sigs: Vec::new(),
        },
        seen: HashSet::new(),
        seen_unverified: HashSet::new(),
    };
    for (count, line) in sig_block.split_terminator('\n').enumerate() {
        let sig = parse_signature_line(line)?;
        if count >= MAX_SIGNATURES {
            return Err(NoteError::Malformed);
        }
        opener.add(line, sig)?;
    }
    if opener.note.sigs.is_empty() {
        return Err(NoteError::Unverified(Box::new(opener.note)));
    }
    Ok(opener.note)
}

/// State of [`open_with`] while it walks the signature lines.
struct Opener<'a> {
    known: &'a [Verifier],
    text: &'a str,
    note: Note,
    seen: HashSet<(&'a str, u32)>,
    seen_unverified: HashSet<&'a str>,
}

/// One decoded signature line.
struct SigLine<'a> {
    name: &'a str,
    b64: &'a str,
    hash: u32,
    sig: Vec<u8>,
}

impl<'a> Opener<'a> {
    /// Records one signature line, verifying it if its key is known.
    fn add(&mut self, line: &'a str, sig: SigLine<'a>) -> Result<(), NoteError> {
        let mut matching = self
            .known
            .iter()
            .filter(|v| v.name == sig.name && v.hash == sig.hash);
        let verifier = match (matching.next(), matching.next()) {
            (None, _) => {
                if self.seen_unverified.insert(line) {
                    self.note.unverified_sigs.push(sig.to_signature());
                }
                return Ok(());
            }
            (Some(_), Some(_)) => {
                return Err(NoteError::AmbiguousKey {
                    name: sig.name.to_owned(),
                    hash: sig.hash,
                })
            }
            (Some(v), None) => v,
        };
        if !self.seen.insert((sig.name, sig.hash)) {
            return Ok(());
        }
        if !verifier.verify(self.text.as_bytes(), &sig.sig) {
            return Err(NoteError::InvalidSignature {
                name: sig.name.to_owned(),
                hash: sig.hash,
            });
        }
        self.note.sigs.push(sig.to_signature());
        Ok(())
    }
}

impl SigLine<'_> {
    fn to_signature(&self) -> Signature {
        Signature {
            name: self.name.to_owned(),
            hash: self.hash,
            base64: self.b64.to_owned(),
        }
    }
}

/// Checks the character rules and splits a note into its text (with its final newline) and its
/// signature block (ending in a newline).
fn split_note(msg: &[u8]) -> Result<(&str, &str), NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
    if msg.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::Malformed);
    }
    let split = msg.rfind("\n\n").ok_or(NoteError::Malformed)?;
    let text = msg.get(..=split).ok_or(NoteError::Malformed)?;
    let sigs = msg.get(split + 2..).ok_or(NoteError::Malformed)?;
    if !sigs.ends_with('\n') {
        return Err(NoteError::Malformed);
    }
    Ok((text, sigs))
}

/// Decodes `— <name> <base64>` (without its newline).
fn parse_signature_line(line: &str) -> Result<SigLine<'_>, NoteError> {
    let line = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
    let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
    let raw = decode_base64(b64).ok_or(NoteError::Malformed)?;
    if !is_valid_name(name) || b64.is_empty() || raw.len() < 5 {
        return Err(NoteError::Malformed);
    }
    let (hash, sig) = raw.split_at(4);
    let hash = <[u8; 4]>::try_from(hash).map_err(|_| NoteError::Malformed)?;
    Ok(SigLine {
        name,
        b64,
        hash: u32::from_be_bytes(hash),
        sig: sig.to_vec(),
    })
}

/// A key name is non-empty and has neither white space nor `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key hash of `name` and the encoded public key (algorithm byte included).
fn key_hash(name: &str, key: &[u8]) -> u32 {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update(key)
        .finalize()
        .into();
    let [a, b, c, d, ..] = digest;
    u32::from_be_bytes([a, b, c, d])
}

/// Exactly eight hex digits (either case), as Go's `ParseUint(s, 16, 32)` with a length check.
fn parse_hex_u32(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Decodes like Go's `base64.StdEncoding.DecodeString`, which skips `\r` and `\n`.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = s.bytes().filter(|&b| b != b'\r' && b != b'\n').collect();
    GO_STD_BASE64.decode(cleaned).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::Ed25519KeyPair;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    /// A tree head as served by sum.golang.org (fetched by `go mod download`).
    const SUMDB_NOTE: &str = "go.sum database tree\n72097574\nTN5X3MLGTDFnVRn7RF0+aSqn9MdPDdly11pPObF1Ti8=\n\n— sum.golang.org Az3grqWEGn3sDlsyQ9ppBk0lZ6N+PyvyN98h/w05RN0Kd0gEPt5lnWXQ0GU4cdmhWiTJp6w7TVjS+LEx1xKeKQ+9EAk=\n";
    /// A tree note signed by Go's `note.Sign` with `GenerateKey(zeros, "EnochRoot")`.
    const GO_TREE_NOTE: &str = "go.sum database tree\n1000\nICs8Wlxet0qqr7Sp09ytfOgmiCOptZFl6HDC2G/vFGo=\n\n— EnochRoot rwz+eITdAJJqr0JmVaw/09AJvjh4/h/lEVf8h3mHCe+AnH84GCXe7seXMhSNOu5aH0N1plByeAISwrTTQMrqZg1gbgU=\n";

    fn peter() -> Verifier {
        Verifier::parse(PETER_VKEY).unwrap()
    }

    fn enoch() -> Verifier {
        Verifier::parse(ENOCH_VKEY).unwrap()
    }

    fn sig(name: &str, hash: u32, b64: &str) -> Signature {
        Signature {
            name: name.into(),
            hash,
            base64: b64.into(),
        }
    }

    fn peter_sig() -> Signature {
        sig("PeterNeumann", 0xc74f20a3, "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=")
    }

    fn enoch_sig() -> Signature {
        sig("EnochRoot", 0xaf0cfe78, "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=")
    }

    /// Signs `text` like Go's `note.Sign` with a `PRIVATE+KEY+name+hash+seed` key.
    fn sign(skey: &str, text: &str) -> String {
        let rest = skey.strip_prefix("PRIVATE+KEY+").unwrap();
        let parts: Vec<&str> = rest.splitn(3, '+').collect();
        let (name, hash16, seed64) = (parts[0], parts[1], parts[2]);
        let seed = decode_base64(seed64).unwrap();
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed[1..]).unwrap();
        let mut raw = u32::from_str_radix(hash16, 16)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        raw.extend_from_slice(pair.sign(text.as_bytes()).as_ref());
        format!("{text}\n— {name} {}\n", GO_STD_BASE64.encode(raw))
    }

    #[test]
    fn parses_go_verifier_key() {
        let v = peter();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_hash(), 0xc74f20a3);
        let s = Verifier::parse(SUMDB_VKEY).unwrap();
        assert_eq!(s.name(), "sum.golang.org");
        assert_eq!(s.key_hash(), 0x033de0ae);
    }

    #[test]
    fn rejects_mangled_verifier_keys() {
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let k = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(Verifier::parse(k).is_err(), "{k}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let k = String::from_utf8(m).unwrap();
            assert!(Verifier::parse(&k).is_err(), "{k}");
        }
    }

    #[test]
    fn verifier_key_errors() {
        let wrong_len =
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==";
        assert_eq!(
            Verifier::parse(wrong_len),
            Err(NoteError::MalformedVerifierKey)
        );
        let unknown_alg = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert_eq!(
            Verifier::parse(unknown_alg),
            Err(NoteError::UnknownAlgorithm)
        );
        let wrong_hash = "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert_eq!(
            Verifier::parse(wrong_hash),
            Err(NoteError::VerifierHashMismatch)
        );
        for bad in [
            "",
            "+",
            "++",
            "Peter Neumann+c74f20a3+ARpc",
            "PeterNeumann++c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann++c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter\u{a0}Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
        // The hex digits may be upper case, as with Go's ParseUint.
        let upper = "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert_eq!(Verifier::parse(upper).unwrap(), peter());
    }

    #[test]
    fn signing_helper_matches_go() {
        assert_eq!(sign(PETER_SKEY, TEXT), format!("{TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn opens_go_example() {
        let n = open(format!("{TEXT}\n{PETER_SIG}").as_bytes(), &peter()).unwrap();
        assert_eq!(n.text, TEXT);
        assert_eq!(n.sigs, vec![peter_sig()]);
        assert!(n.unverified_sigs.is_empty());
    }

    #[test]
    fn one_verified_one_not() {
        let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let n = open(msg.as_bytes(), &peter()).unwrap();
        assert_eq!(n.text, TEXT);
        assert_eq!(n.sigs, vec![peter_sig()]);
        assert_eq!(n.unverified_sigs, vec![enoch_sig()]);

        let n = open_with(msg.as_bytes(), &[peter(), enoch()]).unwrap();
        assert_eq!(n.sigs, vec![peter_sig(), enoch_sig()]);
        assert!(n.unverified_sigs.is_empty());
    }

    #[test]
    fn unknown_signers_only_is_unverified() {
        let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let err = open_with(msg.as_bytes(), &[]).unwrap_err();
        assert_eq!(err.to_string(), "note has no verifiable signatures");
        let NoteError::Unverified(n) = err else {
            panic!("{err:?}")
        };
        assert!(n.sigs.is_empty());
        assert_eq!(n.unverified_sigs, vec![peter_sig(), enoch_sig()]);

        let other = Verifier::parse(SUMDB_VKEY).unwrap();
        assert!(matches!(
            open(msg.as_bytes(), &other),
            Err(NoteError::Unverified(_))
        ));
    }

    #[test]
    fn ambiguous_verifiers() {
        let msg = format!("{TEXT}\n{ENOCH_SIG}");
        let err = open_with(msg.as_bytes(), &[enoch(), peter(), enoch()]).unwrap_err();
        assert_eq!(err.to_string(), "ambiguous key EnochRoot+af0cfe78");
        // An unused duplicate is harmless.
        let msg = format!("{TEXT}\n{PETER_SIG}");
        open_with(msg.as_bytes(), &[enoch(), peter(), enoch()]).unwrap();
    }

    #[test]
    fn too_many_signatures() {
        let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
        assert_eq!(open(msg.as_bytes(), &peter()), Err(NoteError::Malformed));
        assert_eq!(open_with(msg.as_bytes(), &[]), Err(NoteError::Malformed));
        let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
        assert_eq!(open(msg.as_bytes(), &peter()).unwrap().sigs.len(), 1);
    }

    #[test]
    fn invalid_signature() {
        let msg = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let err = open(msg.as_bytes(), &peter()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid signature for key PeterNeumann+c74f20a3"
        );
        // A correct signature over a different text.
        let other = sign(PETER_SKEY, "some other text\n");
        let sig_line = other.split("\n\n").nth(1).unwrap();
        let msg = format!("{TEXT}\n{sig_line}");
        assert!(matches!(
            open(msg.as_bytes(), &peter()),
            Err(NoteError::InvalidSignature { .. })
        ));
        // A signature of the wrong length (valid base64, right key hash).
        let short = format!(
            "{TEXT}\n— PeterNeumann {}\n",
            GO_STD_BASE64.encode([0xc7, 0x4f, 0x20, 0xa3, 1, 2, 3])
        );
        assert!(matches!(
            open(short.as_bytes(), &peter()),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_hash_in_signature_is_unknown_signer() {
        // Same name, other key hash: not this verifier's signature, so not checked.
        let mut raw = decode_base64(&peter_sig().base64).unwrap();
        raw[0] ^= 0xff;
        let msg = format!("{TEXT}\n— PeterNeumann {}\n", GO_STD_BASE64.encode(&raw));
        let Err(NoteError::Unverified(n)) = open(msg.as_bytes(), &peter()) else {
            panic!("want unverified")
        };
        assert_eq!(n.unverified_sigs.len(), 1);
        assert_eq!(n.unverified_sigs[0].hash, 0xc74f20a3 ^ 0xff00_0000);
    }

    #[test]
    fn duplicate_signatures_are_dropped() {
        let bad_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
        let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{bad_enoch}");
        let n = open(msg.as_bytes(), &peter()).unwrap();
        assert_eq!(n.sigs, vec![peter_sig()]);
        let enoch_abcd = sig(
            "EnochRoot",
            0xaf0cfe78,
            "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5nABCD2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=",
        );
        assert_eq!(n.unverified_sigs, vec![enoch_sig(), enoch_abcd]);
    }

    #[test]
    fn malformed_notes() {
        let peter_sig_no_nl = &PETER_SIG[..PETER_SIG.len() - 1];
        let bad: Vec<Vec<u8>> = vec![
            TEXT.into(),
            format!("{TEXT}\n").into(),
            format!("{TEXT}\n{peter_sig_no_nl}").into(),
            format!("\x01{TEXT}\n{PETER_SIG}").into(),
            [b"\xff".as_slice(), format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat(),
            format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").into(),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
            format!("{TEXT}\n{PETER_SIG}\n").into(),
            format!("{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
            format!("{TEXT}\n— PeterNeumann\n").into(),
            format!("{TEXT}\n— PeterNeumann \n").into(),
            format!("{TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n").into(),
            format!("{TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM= \n").into(),
            format!("{TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\r\n").into(),
            format!("{TEXT}\n— PeterNeumann x08g\n").into(),
            format!("{TEXT}\n— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
            format!("If you think\tcryptography\n\n{PETER_SIG}").into(),
            b"\n\n".to_vec(),
            Vec::new(),
            vec![0xe2, 0x80],
        ];
        for msg in bad {
            assert_eq!(
                open(&msg, &peter()),
                Err(NoteError::Malformed),
                "{:?}",
                String::from_utf8_lossy(&msg)
            );
        }
    }

    #[test]
    fn signature_over_text_with_leading_blank_lines() {
        // The split is at the last blank line; earlier blank lines belong to the text.
        let text = "a\n\nb\n";
        let msg = sign(PETER_SKEY, text);
        assert_eq!(open(msg.as_bytes(), &peter()).unwrap().text, text);
    }

    #[test]
    fn opens_note_signed_by_go() {
        let n = open(GO_TREE_NOTE.as_bytes(), &enoch()).unwrap();
        assert_eq!(
            n.text,
            "go.sum database tree\n1000\nICs8Wlxet0qqr7Sp09ytfOgmiCOptZFl6HDC2G/vFGo=\n"
        );
        let tampered = GO_TREE_NOTE.replace("1000", "1001");
        assert!(matches!(
            open(tampered.as_bytes(), &enoch()),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn opens_real_sum_golang_org_tree_head() {
        let v = Verifier::parse(SUMDB_VKEY).unwrap();
        let n = open(SUMDB_NOTE.as_bytes(), &v).unwrap();
        assert!(n.text.starts_with("go.sum database tree\n72097574\n"));
        assert_eq!(n.sigs.len(), 1);
        assert_eq!(n.sigs[0].hash, 0x033de0ae);
        let tampered = SUMDB_NOTE.replace("72097574", "72097575");
        assert!(open(tampered.as_bytes(), &v).is_err());
    }

    #[test]
    fn open_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let base = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}").into_bytes();
        let v = peter();
        for _ in 0..20_000 {
            let mut msg = base.clone();
            for _ in 0..=next(3) {
                let at = next(msg.len() + 1);
                let byte = b"\n \xe2\x80\x94+=A\x01\xff"[next(10)];
                match next(3) {
                    0 if at < msg.len() => msg[at] = byte,
                    1 => msg.insert(at, byte),
                    _ => msg.truncate(at),
                }
            }
            let _ = open(&msg, &v);
            let key = String::from_utf8_lossy(&msg[..next(msg.len() + 1)]).into_owned();
            let _ = Verifier::parse(&key);
        }
    }

    #[test]
    fn go_base64_rules() {
        // Padding is required, trailing bits may be non-zero, CR and LF are skipped.
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert!(decode_base64("YQ").is_none());
        assert!(decode_base64("YQ=").is_none());
        assert_eq!(decode_base64("YR==").unwrap(), b"a");
        assert_eq!(decode_base64("Y\r\nQ==").unwrap(), b"a");
        assert!(decode_base64("Y Q==").is_none());
        assert_eq!(decode_base64("").unwrap(), b"");
    }
}
