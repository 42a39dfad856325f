//! block_hostile's side that the host compiles too: its config and the
//! garbage it sends ([`garbage`]), each descriptor built to be refused.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use arbor_sessions::block::op;
use serde::Deserialize;

/// block_hostile's config.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Be the honest client (write and read back blocks) instead of the
    /// hostile one.
    #[serde(default)]
    pub honest: bool,
}

/// Decodes config text as block_hostile does.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

/// One raw descriptor: what the hostile client writes into its submit ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw {
    /// Payload offset (relative to the payload area).
    pub offset: u64,
    /// Payload bytes.
    pub length: u32,
    /// Opcode.
    pub opcode: u16,
    /// First block (or the opcode's argument).
    pub argument: u64,
}

impl Raw {
    /// The descriptor's four ring words (the packet stream's layout).
    pub fn words(&self, tag: u64) -> [u64; 4] {
        [
            self.offset,
            u64::from(self.length) | u64::from(self.opcode) << 32,
            tag,
            self.argument,
        ]
    }
}

/// Kinds of garbage, each refused by an honest Block server.
pub const KINDS: u64 = 10;

/// Garbage descriptor number `kind` (mod [`KINDS`]) for a device of
/// `block_count` blocks of 512 bytes behind a payload area of
/// `payload_len` bytes (the whole area: the region is page-rounded, so
/// it can be larger than what the session asked for); `noise` varies the
/// fields within the kind.
pub fn garbage(kind: u64, noise: u64, block_count: u64, payload_len: u64) -> Raw {
    let block = 512u32;
    let small = noise % 8;
    match kind % KINDS {
        // A block far beyond the device.
        0 => Raw {
            offset: 0,
            length: block,
            opcode: op::READ.0,
            argument: block_count + noise % (u64::MAX - block_count),
        },
        // A range that starts on the device and runs off its end.
        1 => Raw {
            offset: 0,
            length: block * 4,
            opcode: op::READ.0,
            argument: block_count - 1 - small.min(2),
        },
        // No bytes, or a part of a block.
        2 => Raw {
            offset: 0,
            length: (noise % 511) as u32,
            opcode: op::READ.0,
            argument: small,
        },
        // More than the payload area (and than one request may move).
        3 => Raw {
            offset: 0,
            length: (payload_len as u32).saturating_add(block * (1 + small as u32)),
            opcode: op::WRITE.0,
            argument: small,
        },
        // A payload starting past the end of the buffer.
        4 => Raw {
            offset: payload_len + small * 64,
            length: block,
            opcode: op::READ.0,
            argument: small,
        },
        // A payload whose end wraps around.
        5 => Raw {
            offset: u64::MAX - small * 64,
            length: block,
            opcode: op::WRITE.0,
            argument: small,
        },
        // Opcodes nobody defined.
        6 => Raw {
            offset: 0,
            length: block,
            opcode: 20 + (noise % 1000) as u16,
            argument: small,
        },
        // Info with an argument.
        7 => Raw {
            offset: 0,
            length: 16,
            opcode: op::INFO.0,
            argument: 1 + noise % 1000,
        },
        // Flush with an argument.
        8 => Raw {
            offset: 0,
            length: 0,
            opcode: op::FLUSH.0,
            argument: 1 + noise % 1000,
        },
        // A write of whole blocks and a bit.
        _ => Raw {
            offset: 0,
            length: block * (1 + small as u32) + 1 + (noise % 500) as u32,
            opcode: op::WRITE.0,
            argument: small,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor::packet_stream::Opcode;
    use arbor_sessions::block::{Info, decode_request};

    /// Every kind of garbage, with any noise, is refused by the decoder or
    /// lies outside the payload area (refused by the stream's check).
    #[test]
    fn fuzz_every_garbage_descriptor_is_refused() {
        let info = Info {
            block_size: 512,
            block_count: 8192,
            writable: true,
        };
        for payload_len in [16 * 1024u64, 19_200, 4096] {
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            for round in 0..20_000u64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let raw = garbage(round, state, info.block_count, payload_len);
                let in_buffer = raw
                    .offset
                    .checked_add(u64::from(raw.length))
                    .is_some_and(|end| end <= payload_len);
                let decoded =
                    decode_request(Opcode(raw.opcode), raw.argument, raw.length as usize, &info);
                assert!(
                    !in_buffer || decoded.is_err(),
                    "kind {} accepted: {raw:?}",
                    round % KINDS
                );
            }
        }
        assert_eq!(parse(b"(honest: true)").unwrap(), Config { honest: true });
        assert_eq!(parse(b"()").unwrap(), Config::default());
    }
}
