//! Canonical byte encoding: the primitives every hashed or transmitted
//! structure is built from.
//!
//! Invariant: one value has exactly one encoding. Integers are unsigned LEB128
//! varints and the decoder rejects non-minimal forms, so `decode(bytes)`
//! re-encodes to the same `bytes` and a hash over bytes is a hash over the
//! value. The decoder never panics and never allocates more than the input
//! could describe: every length is checked against the bytes that remain and
//! against a named limit before anything is reserved.

use std::fmt;

/// Where and why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What was wrong there.
    pub kind: DecodeErrorKind,
}

/// The ways canonical bytes can be malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A varint longer than ten bytes or overflowing its target type.
    VarintOverflow {
        /// What was being read.
        what: &'static str,
    },
    /// A varint with redundant trailing zero groups (two encodings of one value).
    NonMinimalVarint {
        /// What was being read.
        what: &'static str,
    },
    /// A length or count above its named limit.
    TooLong {
        /// What was being read.
        what: &'static str,
        /// The length found in the input.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// A tag byte with no meaning at this position.
    UnknownTag {
        /// What was being read.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A format version this build does not understand.
    UnknownVersion {
        /// The version found.
        found: u8,
        /// The version expected.
        expected: u8,
    },
    /// A value that decodes but breaks a rule of the format (order, range).
    Invalid {
        /// What was being read.
        what: &'static str,
        /// The rule it broke.
        rule: &'static str,
    },
    /// Bytes left over after a complete value.
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what } => write!(f, "input ends inside {what}"),
            Self::VarintOverflow { what } => write!(f, "{what}: varint overflows"),
            Self::NonMinimalVarint { what } => write!(f, "{what}: varint is not minimally encoded"),
            Self::TooLong { what, found, limit } => write!(f, "{what}: {found} exceeds the limit of {limit}"),
            Self::UnknownTag { what, tag } => write!(f, "{what}: unknown tag {tag}"),
            Self::UnknownVersion { found, expected } => {
                write!(f, "format version {found} is not supported (expected {expected})")
            }
            Self::Invalid { what, rule } => write!(f, "{what}: {rule}"),
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes after the value"),
        }
    }
}

/// Appends `value` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a signed value as a zigzag varint.
pub fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, zigzag(value));
}

/// Number of bytes `put_signed` writes for `value`.
pub fn signed_len(value: i64) -> usize {
    varint_len(zigzag(value))
}

pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Number of bytes `put_varint` writes for `value`.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - value.max(1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over canonical bytes that reports where decoding failed.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, starting at offset 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// An error at the current offset.
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset: self.offset, kind }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.error(DecodeErrorKind::TrailingBytes { count })),
        }
    }

    /// Reads one byte.
    pub fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.offset).ok_or_else(|| self.error(DecodeErrorKind::Truncated { what }))?;
        self.offset += 1;
        Ok(byte)
    }

    /// Reads `len` bytes.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < len {
            return Err(self.error(DecodeErrorKind::Truncated { what }));
        }
        let slice = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    /// Reads a 32-byte array (hashes and ids).
    pub fn array32(&mut self, what: &'static str) -> Result<[u8; 32], DecodeError> {
        let slice = self.take(32, what)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Reads a minimal unsigned LEB128 varint.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let start = self.offset;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte(what)?;
            let group = u64::from(byte & 0x7f);
            if shift == 63 && group > 1 {
                self.offset = start;
                return Err(self.error(DecodeErrorKind::VarintOverflow { what }));
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    self.offset = start;
                    return Err(self.error(DecodeErrorKind::NonMinimalVarint { what }));
                }
                return Ok(value);
            }
        }
        self.offset = start;
        Err(self.error(DecodeErrorKind::VarintOverflow { what }))
    }

    /// Reads a varint that must fit in a `u32`.
    pub fn varint_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let start = self.offset;
        let value = self.varint(what)?;
        u32::try_from(value).map_err(|_| DecodeError { offset: start, kind: DecodeErrorKind::VarintOverflow { what } })
    }

    /// Reads a zigzag varint.
    pub fn signed(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a count and checks it against `limit` and against the bytes left
    /// (each item takes at least `min_item_bytes`), so a hostile count cannot
    /// make the caller reserve memory the input cannot fill.
    pub fn count(&mut self, what: &'static str, limit: u64, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let start = self.offset;
        let count = self.varint(what)?;
        let fits = (count as u128) * (min_item_bytes.max(1) as u128) <= self.remaining() as u128;
        if count > limit {
            self.offset = start;
            return Err(self.error(DecodeErrorKind::TooLong { what, found: count, limit }));
        }
        if !fits {
            return Err(self.error(DecodeErrorKind::Truncated { what }));
        }
        // The count is at most the remaining input length, so it fits in usize.
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips_and_is_minimal(value: u64) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            prop_assert_eq!(out.len(), varint_len(value));
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varint("v").unwrap(), value);
            prop_assert!(reader.finish().is_ok());
        }

        #[test]
        fn signed_round_trips(value: i64) {
            let mut out = Vec::new();
            put_signed(&mut out, value);
            prop_assert_eq!(Reader::new(&out).signed("v").unwrap(), value);
        }

        #[test]
        fn varint_decoder_never_panics(bytes: Vec<u8>) {
            let _ = Reader::new(&bytes).varint("v");
        }
    }

    #[test]
    fn non_minimal_varint_is_rejected() {
        let error = Reader::new(&[0x80, 0x00]).varint("seq").unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::NonMinimalVarint { what: "seq" });
        assert_eq!(error.offset, 0);
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xff; 11];
        let error = Reader::new(&bytes).varint("seq").unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::VarintOverflow { what: "seq" });
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&bytes).varint("seq").is_err());
    }

    #[test]
    fn hostile_count_is_rejected_before_allocation() {
        let mut out = Vec::new();
        put_varint(&mut out, 1_000_000);
        let error = Reader::new(&out).count("ops", 10_000_000, 1).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::Truncated { what: "ops" });
        let error = Reader::new(&out).count("ops", 10, 1).unwrap_err();
        assert!(matches!(error.kind, DecodeErrorKind::TooLong { found: 1_000_000, limit: 10, .. }));
    }
}
