//! Where the served files come from: the [`FileSource`] trait, and the one
//! source there is until a FileSystem session exists in the tree, the
//! files listed in web's config ROM ([`ConfigFiles`]).
//!
//! A FileSystem backend implements the same two calls (size, then reads
//! at offsets), so the connection code does not change when it plugs in.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// Why a file could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// No file at that path (404).
    NotFound,
    /// The source failed (500).
    Io,
}

/// A read-only tree of files, by normalised path (see `http::normalise_path`).
pub trait FileSource {
    /// Bytes of the file at `path`.
    fn size(&mut self, path: &str) -> Result<u64, FileError>;
    /// Reads from `offset` into `out`; bytes read (0 only at the end).
    fn read(&mut self, path: &str, offset: u64, out: &mut [u8]) -> Result<usize, FileError>;
}

/// One file as web's config lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum FileConfig {
    /// A file with this text.
    Text {
        /// Its path ("/" is the index).
        path: String,
        /// Its content.
        text: String,
    },
    /// A generated file of `size` bytes of [`pattern_byte`], for transfers
    /// whose checksum a client can recompute without a copy.
    Pattern {
        /// Its path.
        path: String,
        /// Bytes.
        size: u64,
    },
}

impl FileConfig {
    fn path(&self) -> &str {
        match self {
            Self::Text { path, .. } | Self::Pattern { path, .. } => path,
        }
    }
}

/// Byte `index` of every pattern file: varies with both low and high bits
/// so that a misplaced block changes the checksum.
pub fn pattern_byte(index: u64) -> u8 {
    (index.wrapping_mul(31) ^ (index >> 9).wrapping_mul(7)) as u8
}

/// FNV-1a over `bytes`, continuing from `state` (start from [`CHECKSUM_START`]).
pub fn checksum(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The FNV-1a offset basis.
pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The files of web's config ROM.
pub struct ConfigFiles {
    files: Vec<FileConfig>,
}

impl ConfigFiles {
    /// The files, as listed (a later duplicate path is never reached).
    pub fn new(files: Vec<FileConfig>) -> ConfigFiles {
        ConfigFiles { files }
    }

    fn find(&self, path: &str) -> Result<&FileConfig, FileError> {
        self.files
            .iter()
            .find(|file| file.path() == path)
            .ok_or(FileError::NotFound)
    }
}

impl FileSource for ConfigFiles {
    fn size(&mut self, path: &str) -> Result<u64, FileError> {
        Ok(match self.find(path)? {
            FileConfig::Text { text, .. } => text.len() as u64,
            FileConfig::Pattern { size, .. } => *size,
        })
    }

    fn read(&mut self, path: &str, offset: u64, out: &mut [u8]) -> Result<usize, FileError> {
        match self.find(path)? {
            FileConfig::Text { text, .. } => {
                let bytes = text.as_bytes();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let count = out.len().min(bytes.len() - start);
                out[..count].copy_from_slice(&bytes[start..start + count]);
                Ok(count)
            }
            FileConfig::Pattern { size, .. } => {
                let remaining = size.saturating_sub(offset);
                let count = (out.len() as u64).min(remaining) as usize;
                for (at, byte) in out[..count].iter_mut().enumerate() {
                    *byte = pattern_byte(offset + at as u64);
                }
                Ok(count)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn text_and_pattern_files_read_in_pieces() {
        let mut files = ConfigFiles::new(alloc::vec![
            FileConfig::Text {
                path: "/".to_string(),
                text: "hello".to_string()
            },
            FileConfig::Pattern {
                path: "/big".to_string(),
                size: 1000
            },
        ]);
        assert_eq!(files.size("/"), Ok(5));
        assert_eq!(files.size("/nope"), Err(FileError::NotFound));
        let mut buffer = [0u8; 3];
        assert_eq!(files.read("/", 3, &mut buffer), Ok(2));
        assert_eq!(&buffer[..2], b"lo");
        assert_eq!(files.read("/", u64::MAX, &mut buffer), Ok(0));
        let mut whole = alloc::vec![0u8; 1000];
        let mut offset = 0;
        let mut hash = CHECKSUM_START;
        while offset < 1000 {
            let count = files.read("/big", offset, &mut whole[..333]).unwrap();
            hash = checksum(hash, &whole[..count]);
            offset += count as u64;
        }
        let expected = (0..1000).map(pattern_byte).collect::<Vec<_>>();
        assert_eq!(hash, checksum(CHECKSUM_START, &expected));
        assert_eq!(files.read("/big", 1000, &mut buffer), Ok(0));
        assert_eq!(files.read("/big", u64::MAX, &mut buffer), Ok(0));
    }
}
