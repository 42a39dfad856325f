//! The boot archive: one file that carries every ROM module of a scenario
//! (component binaries, configs) from the host tool to the kernel, passed to
//! QEMU as `-initrd`.
//!
//! Both sides share this crate: the host tool writes archives with
//! [`ArchiveBuilder`] (feature `alloc`), the kernel reads them with
//! [`Archive::parse`]. The reader trusts nothing: every length, offset and
//! name is checked before use, and a bad archive is an [`ArchiveError`] that
//! names the entry at fault — never a panic.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! offset 0   header   magic "ARBORARC", version: u32, module_count: u32, total_size: u64, reserved: u64
//! offset 32  entries  module_count x { name: [u8; 48] (UTF-8, NUL-padded), offset: u64, size: u64 }
//! then       data     each module at a 4 KiB aligned offset, in entry order, not overlapping
//! ```
//!
//! Modules are page aligned so that the kernel can later map a module's pages
//! into a component instead of copying them.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

use core::fmt;

/// The first eight bytes of every boot archive.
pub const MAGIC: [u8; 8] = *b"ARBORARC";
/// The layout version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 32;
/// Size of one entry in the module table.
pub const ENTRY_SIZE: usize = 64;
/// Longest module name, in bytes.
pub const NAME_CAPACITY: usize = 48;
/// Alignment of every module's data.
pub const MODULE_ALIGN: u64 = 4096;
/// Most modules an archive may hold; bounds the reader's work.
pub const MAX_MODULES: u32 = 256;

/// Why an archive was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// Fewer bytes than a header.
    TooShort { len: usize },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic { found: [u8; 8] },
    /// A layout version this reader does not know.
    UnsupportedVersion { found: u32 },
    /// More modules than [`MAX_MODULES`].
    TooManyModules { count: u32 },
    /// The header claims more bytes than were passed in.
    Truncated { declared: u64, actual: usize },
    /// The module table does not fit in the archive.
    TableOutOfBounds { count: u32 },
    /// A module name is empty, not UTF-8, or not NUL-padded.
    BadName { index: usize },
    /// Two modules share a name.
    DuplicateName { index: usize },
    /// A module's data does not start on a [`MODULE_ALIGN`] boundary.
    Misaligned { index: usize, offset: u64 },
    /// A module's data reaches past the end of the archive (or overflows).
    ModuleOutOfBounds {
        index: usize,
        offset: u64,
        size: u64,
    },
    /// A module starts before the previous one ends, or lies inside the table.
    Overlap { index: usize },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "archive is {len} bytes, shorter than its {HEADER_SIZE}-byte header"
                )
            }
            Self::BadMagic { found } => write!(f, "bad magic {found:02x?}, expected \"ARBORARC\""),
            Self::UnsupportedVersion { found } => {
                write!(
                    f,
                    "archive version {found}, this kernel reads version {VERSION}"
                )
            }
            Self::TooManyModules { count } => {
                write!(f, "{count} modules, at most {MAX_MODULES} are allowed")
            }
            Self::Truncated { declared, actual } => {
                write!(
                    f,
                    "truncated: header declares {declared} bytes, only {actual} present"
                )
            }
            Self::TableOutOfBounds { count } => {
                write!(
                    f,
                    "module table of {count} entries does not fit in the archive"
                )
            }
            Self::BadName { index } => write!(f, "module {index}: name is empty or not UTF-8"),
            Self::DuplicateName { index } => {
                write!(f, "module {index}: name already used by an earlier module")
            }
            Self::Misaligned { index, offset } => {
                write!(
                    f,
                    "module {index}: offset {offset:#x} is not {MODULE_ALIGN}-byte aligned"
                )
            }
            Self::ModuleOutOfBounds {
                index,
                offset,
                size,
            } => write!(
                f,
                "module {index}: {size} bytes at offset {offset:#x} reach past the archive's end"
            ),
            Self::Overlap { index } => {
                write!(
                    f,
                    "module {index}: overlaps the module table or the previous module"
                )
            }
        }
    }
}

/// One module of a validated archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    /// The module's name, as a ROM session would ask for it.
    pub name: &'a str,
    /// Where the data starts, counted from the archive's first byte.
    pub offset: u64,
    /// The module's bytes.
    pub data: &'a [u8],
}

/// A validated boot archive borrowed from memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    count: usize,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The name in a NUL-padded field: UTF-8, non-empty, nothing after the first NUL.
fn parse_name(field: &[u8]) -> Option<&str> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    if len == 0 || field[len..].iter().any(|&b| b != 0) {
        return None;
    }
    core::str::from_utf8(&field[..len]).ok()
}

impl<'a> Archive<'a> {
    /// Checks every header field, entry and range of `bytes`.
    ///
    /// `bytes` may be longer than the archive (a boot loader may round the
    /// module up to a page); it must not be shorter.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        if bytes.len() < HEADER_SIZE {
            return Err(ArchiveError::TooShort { len: bytes.len() });
        }
        let mut magic = [0; 8];
        magic.copy_from_slice(&bytes[..8]);
        if magic != MAGIC {
            return Err(ArchiveError::BadMagic { found: magic });
        }
        let version = read_u32(bytes, 8);
        if version != VERSION {
            return Err(ArchiveError::UnsupportedVersion { found: version });
        }
        let count = read_u32(bytes, 12);
        if count > MAX_MODULES {
            return Err(ArchiveError::TooManyModules { count });
        }
        let declared = read_u64(bytes, 16);
        if declared > bytes.len() as u64 {
            return Err(ArchiveError::Truncated {
                declared,
                actual: bytes.len(),
            });
        }
        // `declared` fits in usize now: it is at most `bytes.len()`.
        let bytes = &bytes[..declared as usize];
        let table_end = HEADER_SIZE + count as usize * ENTRY_SIZE;
        if table_end > bytes.len() {
            return Err(ArchiveError::TableOutOfBounds { count });
        }

        let archive = Archive {
            bytes,
            count: count as usize,
        };
        let mut previous_end = table_end as u64;
        for index in 0..archive.count {
            let entry = archive.entry_bytes(index);
            let name =
                parse_name(&entry[..NAME_CAPACITY]).ok_or(ArchiveError::BadName { index })?;
            let offset = read_u64(entry, NAME_CAPACITY);
            let size = read_u64(entry, NAME_CAPACITY + 8);
            if !offset.is_multiple_of(MODULE_ALIGN) {
                return Err(ArchiveError::Misaligned { index, offset });
            }
            let end = offset
                .checked_add(size)
                .filter(|&end| end <= bytes.len() as u64)
                .ok_or(ArchiveError::ModuleOutOfBounds {
                    index,
                    offset,
                    size,
                })?;
            if offset < previous_end {
                return Err(ArchiveError::Overlap { index });
            }
            previous_end = end;
            if (0..index).any(|earlier| archive.entry_name(earlier) == name) {
                return Err(ArchiveError::DuplicateName { index });
            }
        }
        Ok(archive)
    }

    fn entry_bytes(&self, index: usize) -> &'a [u8] {
        let start = HEADER_SIZE + index * ENTRY_SIZE;
        &self.bytes[start..start + ENTRY_SIZE]
    }

    /// Only for entries already validated by `parse`.
    fn entry_name(&self, index: usize) -> &'a str {
        parse_name(&self.entry_bytes(index)[..NAME_CAPACITY]).unwrap_or("")
    }

    /// How many modules the archive holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the archive holds no module.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The archive's size in bytes, as its header declares.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The module at `index`, if there is one.
    pub fn module(&self, index: usize) -> Option<Module<'a>> {
        if index >= self.count {
            return None;
        }
        let entry = self.entry_bytes(index);
        let offset = read_u64(entry, NAME_CAPACITY);
        let size = read_u64(entry, NAME_CAPACITY + 8);
        // Validated by `parse`: offset + size lies within `bytes`.
        let data = &self.bytes[offset as usize..(offset + size) as usize];
        Some(Module {
            name: self.entry_name(index),
            offset,
            data,
        })
    }

    /// Every module, in archive order.
    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + '_ {
        (0..self.count).filter_map(|index| self.module(index))
    }

    /// The module called `name`.
    pub fn find(&self, name: &str) -> Option<Module<'a>> {
        self.modules().find(|module| module.name == name)
    }
}

/// Why a module could not be added to an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The name is empty, longer than [`NAME_CAPACITY`] bytes, or holds a NUL.
    BadName,
    /// An earlier module has the same name.
    DuplicateName,
    /// The archive already holds [`MAX_MODULES`] modules.
    TooManyModules,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => write!(f, "module names are 1 to {NAME_CAPACITY} bytes without NUL"),
            Self::DuplicateName => write!(f, "a module of that name is already in the archive"),
            Self::TooManyModules => write!(f, "an archive holds at most {MAX_MODULES} modules"),
        }
    }
}

/// Collects modules and lays them out as an archive.
#[cfg(feature = "alloc")]
#[derive(Default)]
pub struct ArchiveBuilder {
    modules: alloc::vec::Vec<(alloc::string::String, alloc::vec::Vec<u8>)>,
}

#[cfg(feature = "alloc")]
impl ArchiveBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a module; names must be unique.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<&mut Self, BuildError> {
        if name.is_empty() || name.len() > NAME_CAPACITY || name.contains('\0') {
            return Err(BuildError::BadName);
        }
        if self.modules.iter().any(|(existing, _)| existing == name) {
            return Err(BuildError::DuplicateName);
        }
        if self.modules.len() >= MAX_MODULES as usize {
            return Err(BuildError::TooManyModules);
        }
        self.modules.push((name.into(), data.into()));
        Ok(self)
    }

    /// The archive's bytes.
    pub fn finish(&self) -> alloc::vec::Vec<u8> {
        let align = |n: u64| n.div_ceil(MODULE_ALIGN) * MODULE_ALIGN;
        let table_end = (HEADER_SIZE + self.modules.len() * ENTRY_SIZE) as u64;
        let mut offsets = alloc::vec::Vec::with_capacity(self.modules.len());
        let mut cursor = align(table_end);
        for (_, data) in &self.modules {
            offsets.push(cursor);
            cursor = align(cursor + data.len() as u64);
        }
        let total = cursor.max(table_end);

        let mut out = alloc::vec![0u8; total as usize];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(self.modules.len() as u32).to_le_bytes());
        out[16..24].copy_from_slice(&total.to_le_bytes());
        for (index, ((name, data), &offset)) in self.modules.iter().zip(&offsets).enumerate() {
            let entry = HEADER_SIZE + index * ENTRY_SIZE;
            out[entry..entry + name.len()].copy_from_slice(name.as_bytes());
            let fields = entry + NAME_CAPACITY;
            out[fields..fields + 8].copy_from_slice(&offset.to_le_bytes());
            out[fields + 8..fields + 16].copy_from_slice(&(data.len() as u64).to_le_bytes());
            out[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests;
