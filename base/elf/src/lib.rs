//! A validating reader for the executables Arbor loads: static, non-PIE
//! ELF64 little-endian x86_64 images (`ET_EXEC`).
//!
//! The kernel uses it to load core and the user runtime uses it to load
//! children, so an image is an untrusted claim on both sides: every header
//! field, table bound and segment range is checked before use, arithmetic
//! never overflows, and a bad image is an [`ElfError`] naming the field or
//! segment at fault — never a panic, whatever the bytes are.
//!
//! What a valid image guarantees to a loader:
//! - every loadable segment's file bytes lie inside the image and are no
//!   longer than its memory size;
//! - every segment's pages lie in `[abi::USER_MIN, abi::USER_END)`;
//! - no two segments touch the same page, so each page gets exactly one
//!   set of permissions;
//! - the entry point lies in an executable segment.
#![no_std]
#![forbid(unsafe_code)]

use arbor_abi::{PAGE_SIZE, USER_END, USER_MIN};
use core::fmt;

/// Most loadable segments an image may have; bounds a loader's work and lets
/// [`Image`] live without a heap.
pub const MAX_SEGMENTS: usize = 16;
/// Most program-header entries (of any type) read; bounds the parser's work.
pub const MAX_PROGRAM_HEADERS: usize = 64;

const HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
const PAGE: u64 = PAGE_SIZE as u64;

const CLASS_64: u8 = 2;
const DATA_LITTLE_ENDIAN: u8 = 1;
const VERSION_CURRENT: u8 = 1;
const TYPE_EXEC: u16 = 2;
const MACHINE_X86_64: u16 = 62;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// What is wrong with one loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentProblem {
    /// Its file bytes (offset + size) reach past the image's end.
    FileRangeOutOfBounds,
    /// It has more file bytes than memory.
    FileLargerThanMemory,
    /// Its address range wraps around the address space.
    AddressOverflow,
    /// Its pages reach below [`USER_MIN`] or to [`USER_END`] and above.
    OutsideUserRange,
    /// It shares a page with the loadable segment of this program-header index.
    Overlaps {
        /// The program-header index of the other segment.
        other: usize,
    },
}

/// Why an image was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Fewer bytes than an ELF header.
    TooShort {
        /// Bytes passed in.
        len: usize,
    },
    /// The first four bytes are not `\x7fELF`.
    BadMagic,
    /// Not a 64-bit image.
    NotElf64 {
        /// The `EI_CLASS` byte.
        class: u8,
    },
    /// Not little-endian.
    NotLittleEndian {
        /// The `EI_DATA` byte.
        data: u8,
    },
    /// An ELF version other than 1.
    BadVersion,
    /// Not an `ET_EXEC` image (a PIE or shared object needs relocation).
    NotExecutable {
        /// The `e_type` field.
        file_type: u16,
    },
    /// Not built for x86_64.
    WrongMachine {
        /// The `e_machine` field.
        machine: u16,
    },
    /// The ELF header's own size field is not 64.
    BadHeaderSize {
        /// The `e_ehsize` field.
        size: u16,
    },
    /// Program-header entries are not 56 bytes.
    BadProgramHeaderSize {
        /// The `e_phentsize` field.
        size: u16,
    },
    /// More program headers than [`MAX_PROGRAM_HEADERS`].
    TooManyProgramHeaders {
        /// The `e_phnum` field.
        count: u16,
    },
    /// The program-header table reaches past the image's end.
    ProgramHeadersOutOfBounds,
    /// More loadable segments than [`MAX_SEGMENTS`].
    TooManySegments,
    /// No loadable segment at all.
    NoSegments,
    /// A segment type that needs a dynamic linker or thread-local storage.
    UnsupportedSegment {
        /// Program-header index.
        index: usize,
        /// Its `p_type`.
        segment_type: u32,
    },
    /// A loadable segment failed a check.
    BadSegment {
        /// Program-header index.
        index: usize,
        /// What is wrong with it.
        problem: SegmentProblem,
    },
    /// The entry point lies in no executable segment.
    EntryOutsideCode {
        /// The `e_entry` field.
        entry: u64,
    },
}

impl fmt::Display for SegmentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FileRangeOutOfBounds => write!(f, "file bytes reach past the image's end"),
            Self::FileLargerThanMemory => write!(f, "file size exceeds memory size"),
            Self::AddressOverflow => write!(f, "address range wraps around"),
            Self::OutsideUserRange => write!(
                f,
                "pages lie outside user space [{USER_MIN:#x}, {USER_END:#x})"
            ),
            Self::Overlaps { other } => write!(f, "shares a page with segment {other}"),
        }
    }
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "{len} bytes is too short for an ELF header"),
            Self::BadMagic => write!(f, "not an ELF image (bad magic)"),
            Self::NotElf64 { class } => write!(f, "not ELF64 (class {class})"),
            Self::NotLittleEndian { data } => write!(f, "not little-endian (data {data})"),
            Self::BadVersion => write!(f, "unknown ELF version"),
            Self::NotExecutable { file_type } => {
                write!(f, "type {file_type} is not ET_EXEC (static, non-PIE)")
            }
            Self::WrongMachine { machine } => write!(f, "machine {machine} is not x86_64"),
            Self::BadHeaderSize { size } => write!(f, "ELF header size {size} is not 64"),
            Self::BadProgramHeaderSize { size } => {
                write!(f, "program header size {size} is not 56")
            }
            Self::TooManyProgramHeaders { count } => write!(
                f,
                "{count} program headers, at most {MAX_PROGRAM_HEADERS} allowed"
            ),
            Self::ProgramHeadersOutOfBounds => {
                write!(f, "program header table reaches past the image's end")
            }
            Self::TooManySegments => {
                write!(f, "more than {MAX_SEGMENTS} loadable segments")
            }
            Self::NoSegments => write!(f, "no loadable segment"),
            Self::UnsupportedSegment {
                index,
                segment_type,
            } => write!(
                f,
                "segment {index}: type {segment_type:#x} needs dynamic linking or TLS"
            ),
            Self::BadSegment { index, problem } => write!(f, "segment {index}: {problem}"),
            Self::EntryOutsideCode { entry } => {
                write!(f, "entry point {entry:#x} lies in no executable segment")
            }
        }
    }
}

/// Access a segment's pages need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// One loadable segment of a validated image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment<'a> {
    /// Program-header index, for error messages.
    pub index: usize,
    /// Virtual address of the first byte (not necessarily page aligned).
    pub vaddr: u64,
    /// Bytes in memory; the ones past `data.len()` are zero.
    pub mem_size: u64,
    /// The bytes the image provides for the start of the segment.
    pub data: &'a [u8],
    /// Access the segment's pages need.
    pub permissions: Permissions,
}

impl Segment<'_> {
    /// The first page's address.
    pub fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE - 1)
    }

    /// One past the last page's end. Never overflows on a validated segment.
    pub fn page_end(&self) -> u64 {
        // Validation proved vaddr + mem_size rounded up stays below USER_END.
        (self.vaddr + self.mem_size).div_ceil(PAGE) * PAGE
    }

    /// Bytes covered by the segment's pages.
    pub fn page_span(&self) -> u64 {
        self.page_end() - self.page_start()
    }

    /// Where `data` starts inside the first page.
    pub fn offset_in_first_page(&self) -> u64 {
        self.vaddr - self.page_start()
    }
}

/// A validated executable image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    entry: u64,
    segments: [Segment<'a>; MAX_SEGMENTS],
    count: usize,
}

impl<'a> Image<'a> {
    /// Checks every field of `bytes` and collects its loadable segments.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let header = bytes
            .get(..HEADER_SIZE)
            .ok_or(ElfError::TooShort { len: bytes.len() })?;
        if header[..4] != [0x7F, b'E', b'L', b'F'] {
            return Err(ElfError::BadMagic);
        }
        if header[4] != CLASS_64 {
            return Err(ElfError::NotElf64 { class: header[4] });
        }
        if header[5] != DATA_LITTLE_ENDIAN {
            return Err(ElfError::NotLittleEndian { data: header[5] });
        }
        if header[6] != VERSION_CURRENT || read_u32(header, 20) != u32::from(VERSION_CURRENT) {
            return Err(ElfError::BadVersion);
        }
        let file_type = read_u16(header, 16);
        if file_type != TYPE_EXEC {
            return Err(ElfError::NotExecutable { file_type });
        }
        let machine = read_u16(header, 18);
        if machine != MACHINE_X86_64 {
            return Err(ElfError::WrongMachine { machine });
        }
        let header_size = read_u16(header, 52);
        if usize::from(header_size) != HEADER_SIZE {
            return Err(ElfError::BadHeaderSize { size: header_size });
        }
        let entry = read_u64(header, 24);
        let table_offset = read_u64(header, 32);
        let entry_size = read_u16(header, 54);
        let entry_count = read_u16(header, 56);
        if usize::from(entry_size) != PROGRAM_HEADER_SIZE {
            return Err(ElfError::BadProgramHeaderSize { size: entry_size });
        }
        if usize::from(entry_count) > MAX_PROGRAM_HEADERS {
            return Err(ElfError::TooManyProgramHeaders { count: entry_count });
        }
        let table = usize::try_from(table_offset)
            .ok()
            .and_then(|start| {
                let end = start.checked_add(usize::from(entry_count) * PROGRAM_HEADER_SIZE)?;
                bytes.get(start..end)
            })
            .ok_or(ElfError::ProgramHeadersOutOfBounds)?;

        let mut image = Image {
            entry,
            segments: [Segment::default(); MAX_SEGMENTS],
            count: 0,
        };
        for (index, raw) in table.chunks_exact(PROGRAM_HEADER_SIZE).enumerate() {
            let segment_type = read_u32(raw, 0);
            match segment_type {
                PT_LOAD => {}
                PT_DYNAMIC | PT_INTERP | PT_TLS => {
                    return Err(ElfError::UnsupportedSegment {
                        index,
                        segment_type,
                    });
                }
                // Notes, GNU_STACK, RELRO markers and the like need no loading.
                _ => continue,
            }
            let segment = parse_load_segment(bytes, index, raw)?;
            // An empty segment maps nothing; skipping it keeps the overlap
            // check from tripping over a zero-sized page range.
            if segment.mem_size == 0 {
                continue;
            }
            for other in image.segments() {
                if segment.page_start() < other.page_end()
                    && other.page_start() < segment.page_end()
                {
                    return Err(ElfError::BadSegment {
                        index,
                        problem: SegmentProblem::Overlaps { other: other.index },
                    });
                }
            }
            let slot = image
                .segments
                .get_mut(image.count)
                .ok_or(ElfError::TooManySegments)?;
            *slot = segment;
            image.count += 1;
        }
        if image.count == 0 {
            return Err(ElfError::NoSegments);
        }
        let entry_in_code = image.segments().iter().any(|segment| {
            segment.permissions.execute
                && entry >= segment.vaddr
                && entry - segment.vaddr < segment.mem_size
        });
        if !entry_in_code {
            return Err(ElfError::EntryOutsideCode { entry });
        }
        Ok(image)
    }

    /// The address execution starts at.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, in program-header order, none empty.
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments[..self.count]
    }
}

/// Checks one `PT_LOAD` entry against the image and user space.
fn parse_load_segment<'a>(
    bytes: &'a [u8],
    index: usize,
    raw: &[u8],
) -> Result<Segment<'a>, ElfError> {
    let bad = |problem| ElfError::BadSegment { index, problem };
    let flags = read_u32(raw, 4);
    let file_offset = read_u64(raw, 8);
    let vaddr = read_u64(raw, 16);
    let file_size = read_u64(raw, 32);
    let mem_size = read_u64(raw, 40);

    if file_size > mem_size {
        return Err(bad(SegmentProblem::FileLargerThanMemory));
    }
    let data = usize::try_from(file_offset)
        .ok()
        .zip(usize::try_from(file_size).ok())
        .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
        .ok_or(bad(SegmentProblem::FileRangeOutOfBounds))?;
    let end = vaddr
        .checked_add(mem_size)
        .and_then(|end| end.checked_add(PAGE - 1))
        .ok_or(bad(SegmentProblem::AddressOverflow))?;
    let page_end = end & !(PAGE - 1);
    if vaddr < USER_MIN || page_end > USER_END {
        return Err(bad(SegmentProblem::OutsideUserRange));
    }
    Ok(Segment {
        index,
        vaddr,
        mem_size,
        data,
        permissions: Permissions {
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            execute: flags & PF_X != 0,
        },
    })
}

// The readers take slices whose length the caller has already checked; the
// `get` keeps them panic-free even if a caller got that wrong (a short read
// yields zero bytes, which every later check treats as invalid or harmless).
fn read_u16(bytes: &[u8], at: usize) -> u16 {
    let mut word = [0; 2];
    if let Some(src) = bytes.get(at..at + 2) {
        word.copy_from_slice(src);
    }
    u16::from_le_bytes(word)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        word.copy_from_slice(src);
    }
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests;
