//! Salesforce record Ids: 18 characters = 3-char key prefix + 2-char instance + reserved char +
//! 9-char base62 counter (the case-sensitive 15-char Id) + the 3-char case-safe checksum suffix.
//! `SfId` is a compact, `Copy` 18-byte value; parsing accepts 15- or 18-char input and answers
//! `MALFORMED_ID` otherwise.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::data::error::FieldError;

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The emulator's instance ("pod") characters and the reserved character after them.
pub const INSTANCE: &str = "EM0";

/// An 18-character Salesforce Id (ASCII, always with a valid checksum suffix).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId([u8; 18]);

/// The 3-character case-safe suffix of a 15-character Id: for each 5-char chunk, a 5-bit
/// number whose bit i is set when char i of the chunk is an uppercase letter.
pub fn checksum(id15: &[u8; 15]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (chunk, slot) in id15.chunks(5).zip(out.iter_mut()) {
        let mut bits = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        *slot = SUFFIX_ALPHABET[bits];
    }
    out
}

fn malformed(s: &str) -> FieldError {
    FieldError::new("MALFORMED_ID", format!("malformed id {s}"))
}

impl SfId {
    /// The smallest Id (all `0`), for range bounds (not a valid record Id).
    pub const MIN: SfId = SfId([b'0'; 18]);
    /// The largest Id (all `z`), for range bounds (not a valid record Id).
    pub const MAX: SfId = SfId([b'z'; 18]);

    /// Builds the Id with `prefix` (3 chars) and counter `n`.
    pub fn generate(prefix: &str, n: u64) -> SfId {
        let mut id15 = [b'0'; 15];
        let p = prefix.as_bytes();
        for (i, slot) in id15.iter_mut().take(3).enumerate() {
            *slot = p.get(i).copied().unwrap_or(b'0');
        }
        id15[3..6].copy_from_slice(INSTANCE.as_bytes());
        let mut n = n;
        for i in (6..15).rev() {
            id15[i] = BASE62[(n % 62) as usize];
            n /= 62;
        }
        Self::from_15(&id15)
    }

    fn from_15(id15: &[u8; 15]) -> SfId {
        let mut b = [0u8; 18];
        b[..15].copy_from_slice(id15);
        b[15..].copy_from_slice(&checksum(id15));
        SfId(b)
    }

    /// Parses a 15- or 18-character Id. An 18-char Id must carry the right suffix for its
    /// 15-char part (compared case-insensitively, as Salesforce does).
    pub fn parse(s: &str) -> Result<SfId, FieldError> {
        let b = s.as_bytes();
        if !(b.len() == 15 || b.len() == 18) || !b.iter().all(|c| c.is_ascii_alphanumeric()) {
            return Err(malformed(s));
        }
        let mut id15 = [0u8; 15];
        id15.copy_from_slice(&b[..15]);
        let id = Self::from_15(&id15);
        if b.len() == 18 && !b[15..].eq_ignore_ascii_case(&id.0[15..]) {
            return Err(malformed(s));
        }
        Ok(id)
    }

    /// The 18-character form.
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII alphanumerics.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The case-sensitive 15-character form.
    pub fn as_15(&self) -> &str {
        &self.as_str()[..15]
    }

    /// The 3-character key prefix (object type).
    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }

    /// The counter encoded in an emulator-generated Id (None for foreign Ids).
    pub fn counter(&self) -> Option<u64> {
        if &self.0[3..6] != INSTANCE.as_bytes() {
            return None;
        }
        let mut n: u64 = 0;
        for &c in &self.0[6..15] {
            let d = BASE62.iter().position(|&x| x == c)? as u64;
            n = n.checked_mul(62)?.checked_add(d)?;
        }
        Some(n)
    }
}

/// 15 → 18 normalization of a string Id (errors with `MALFORMED_ID`).
pub fn to_18(s: &str) -> Result<String, FieldError> {
    SfId::parse(s).map(|id| id.as_str().to_string())
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.as_str())
    }
}

impl Serialize for SfId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for SfId {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SfId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_real_suffixes() {
        for real in [
            "001RO0000035WQgYAM",
            "003RO0000035WQgYAM",
            "0015f00002J9YaUAAV",
            "0055f000005mc66AAA",
            "a00D0000008pQR5IAM",
            "a00D0000008pQRAIA2",
            "7506g00000DhRA2AAN",
            "0056g000005HQPyAAO",
            "005R0000000UyrWIAS",
        ] {
            let id = SfId::parse(&real[..15]).unwrap();
            assert_eq!(id.as_str(), real);
            assert_eq!(SfId::parse(real).unwrap().as_str(), real);
        }
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in [
            "",
            "001",
            "001RO0000035WQgYAX",
            "001RO0000035WQ!",
            "001RO0000035WQgYAMx",
        ] {
            let e = SfId::parse(bad).unwrap_err();
            assert_eq!(e.status_code, "MALFORMED_ID");
        }
        // Suffix compared case-insensitively.
        assert!(SfId::parse("001RO0000035WQgyam").is_ok());
    }

    #[test]
    fn generated_ids_roundtrip_and_sort() {
        let a = SfId::generate("001", 61);
        let b = SfId::generate("001", 62);
        assert_eq!(a.key_prefix(), "001");
        assert_eq!(a.counter(), Some(61));
        assert!(a < b);
        assert_eq!(SfId::parse(a.as_15()).unwrap(), a);
    }
}
