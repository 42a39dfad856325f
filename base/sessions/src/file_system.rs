//! The FileSystem session: files and directories over a packet stream.
//!
//! Every operation is one packet (see [`crate::bulk`] for how the stream is
//! set up). The packet's opcode names the operation; its payload starts
//! with a fixed [`HEADER_SIZE`]-byte header and continues with a body
//! (paths, or the bytes of a write). The server answers in the same packet:
//! the acknowledgement's status is [`Status::OK`] or a [`FsError`] code, and
//! the header is overwritten with a [`Response`] (a new handle, a byte
//! count, a size), followed by read data or a directory entry's name.
//!
//! Request header (little endian):
//! ```text
//!  0  handle       u32   open file (read, write, truncate, close)
//!  4  flags        u32   open: CREATE | WRITE
//!  8  position     u64   read/write offset, truncate size, readdir index
//! 16  count        u32   bytes to read or to write
//! 20  path_len     u32   bytes of the first path in the body
//! 24  second_len   u32   bytes of the second path (rename's target)
//! 28  reserved     u32   zero
//! ```
//!
//! Nothing here trusts the client: [`decode_request`] checks the header
//! against the packet (lengths, sums, the flags it knows, zero reserved
//! bits), and [`normalize`] checks every path (UTF-8, absolute, bounded, no
//! NUL, no `..` above the session root). [`serve`] then runs a decoded
//! request against any [`Backend`] under the session's [`Policy`] with the
//! session's bounded [`Handles`]; garbage of any kind ends in an error
//! status, never a panic or an out-of-bounds access (the fuzz test in this
//! module's tests throws arbitrary packets at it).

use alloc::string::String;
use alloc::vec::Vec;
use arbor::packet_stream::{Client, Opcode, Packet, Status};

/// Bytes of the header at the start of every packet.
pub const HEADER_SIZE: usize = 32;
/// Most bytes of one path.
pub const MAX_PATH: usize = 255;
/// Most bytes of one path component (FAT's long-name limit).
pub const MAX_NAME: usize = 255;
/// Most files one session may hold open.
pub const MAX_HANDLES: usize = 32;

/// Open flag: create the file if it does not exist.
pub const CREATE: u32 = 1;
/// Open flag: open for writing (refused under a read-only policy).
pub const WRITE: u32 = 2;
const KNOWN_FLAGS: u32 = CREATE | WRITE;

/// The operations, as packet opcodes (16 and up: the packet stream's own
/// statuses and opcodes stay clear).
pub mod op {
    use arbor::packet_stream::Opcode;
    /// Open a file: body = path; response value = handle.
    pub const OPEN: Opcode = Opcode(16);
    /// Close a handle.
    pub const CLOSE: Opcode = Opcode(17);
    /// Read `count` bytes at `position`: response value = bytes read, data after the header.
    pub const READ: Opcode = Opcode(18);
    /// Write the body at `position`: response value = bytes written.
    pub const WRITE: Opcode = Opcode(19);
    /// Set the file's size to `position`.
    pub const TRUNCATE: Opcode = Opcode(20);
    /// Make a directory: body = path.
    pub const MKDIR: Opcode = Opcode(21);
    /// Entry number `position` of the directory at path: response kind,
    /// size, and name after the header; `NotFound` past the last.
    pub const READDIR: Opcode = Opcode(22);
    /// Kind and size of the node at path.
    pub const STAT: Opcode = Opcode(23);
    /// Remove a file or an empty directory.
    pub const REMOVE: Opcode = Opcode(24);
    /// Rename: body = from, then to.
    pub const RENAME: Opcode = Opcode(25);
    /// Write everything cached to the medium.
    pub const SYNC: Opcode = Opcode(26);
}

/// Why a file-system request failed; travels as the acknowledgement status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FsError {
    /// The header or body does not make sense (lengths, flags, opcode).
    BadRequest = 32,
    /// A path is not valid UTF-8, not absolute, too long, holds NUL or an
    /// empty component, or climbs above the session root.
    BadPath = 33,
    /// No such file or directory.
    NotFound = 34,
    /// The name exists already.
    Exists = 35,
    /// A directory was named where a file must be.
    IsDirectory = 36,
    /// A file was named where a directory must be.
    NotDirectory = 37,
    /// The directory is not empty.
    NotEmpty = 38,
    /// The file system (or its quota) is full.
    NoSpace = 39,
    /// The handle names no open file of this session.
    BadHandle = 40,
    /// The session may not write (its policy is read-only, or the file was
    /// opened without [`WRITE`]).
    ReadOnly = 41,
    /// The session already holds [`MAX_HANDLES`] (or its quota's worth) of open files.
    TooManyOpen = 42,
    /// The medium failed.
    Io = 43,
    /// The payload is too small for the answer.
    TooSmall = 44,
}

impl FsError {
    const ALL: [FsError; 13] = [
        FsError::BadRequest,
        FsError::BadPath,
        FsError::NotFound,
        FsError::Exists,
        FsError::IsDirectory,
        FsError::NotDirectory,
        FsError::NotEmpty,
        FsError::NoSpace,
        FsError::BadHandle,
        FsError::ReadOnly,
        FsError::TooManyOpen,
        FsError::Io,
        FsError::TooSmall,
    ];

    /// The acknowledgement status carrying this error.
    pub fn status(self) -> Status {
        Status(self as u16)
    }

    /// The error a status names (`None` for OK and for statuses no server sends).
    pub fn from_status(status: Status) -> Option<FsError> {
        FsError::ALL
            .into_iter()
            .find(|error| *error as u16 == status.0)
    }

    /// What went wrong, in words for a log line.
    pub fn describe(self) -> &'static str {
        match self {
            FsError::BadRequest => "bad request",
            FsError::BadPath => "bad path",
            FsError::NotFound => "not found",
            FsError::Exists => "exists",
            FsError::IsDirectory => "is a directory",
            FsError::NotDirectory => "not a directory",
            FsError::NotEmpty => "directory not empty",
            FsError::NoSpace => "no space",
            FsError::BadHandle => "bad handle",
            FsError::ReadOnly => "read-only",
            FsError::TooManyOpen => "too many open files",
            FsError::Io => "I/O error",
            FsError::TooSmall => "packet too small",
        }
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// A session's number for an open file (an index into its [`Handles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(pub u32);

/// A decoded request. Paths are still the client's bytes; [`serve`]
/// normalizes them against the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Open (and maybe create) a file.
    Open {
        /// Where.
        path: &'a [u8],
        /// Create if missing.
        create: bool,
        /// For writing.
        write: bool,
    },
    /// Close a handle.
    Close {
        /// Which.
        handle: Handle,
    },
    /// Read up to `count` bytes at `position`.
    Read {
        /// Which file.
        handle: Handle,
        /// From where.
        position: u64,
        /// How many bytes (fits the packet: checked).
        count: u32,
    },
    /// Write `data` at `position`.
    Write {
        /// Which file.
        handle: Handle,
        /// Where.
        position: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// Set a file's size.
    Truncate {
        /// Which file.
        handle: Handle,
        /// The new size.
        size: u64,
    },
    /// Make a directory.
    Mkdir {
        /// Where.
        path: &'a [u8],
    },
    /// One entry of a directory.
    Readdir {
        /// The directory.
        path: &'a [u8],
        /// The entry's number.
        index: u64,
    },
    /// Kind and size.
    Stat {
        /// Of what.
        path: &'a [u8],
    },
    /// Remove a file or empty directory.
    Remove {
        /// What.
        path: &'a [u8],
    },
    /// Move a node.
    Rename {
        /// From.
        from: &'a [u8],
        /// To.
        to: &'a [u8],
    },
    /// Flush to the medium.
    Sync,
}

impl Request<'_> {
    /// Whether the request changes the file system (refused under a
    /// read-only policy before it reaches the backend).
    pub fn writes(&self) -> bool {
        match self {
            Request::Open { create, write, .. } => *create || *write,
            Request::Write { .. }
            | Request::Truncate { .. }
            | Request::Mkdir { .. }
            | Request::Remove { .. }
            | Request::Rename { .. } => true,
            Request::Close { .. }
            | Request::Read { .. }
            | Request::Readdir { .. }
            | Request::Stat { .. }
            | Request::Sync => false,
        }
    }
}

/// The request header's fields, as the client writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Open file.
    pub handle: u32,
    /// Open flags.
    pub flags: u32,
    /// Offset, size or index.
    pub position: u64,
    /// Bytes to read or write.
    pub count: u32,
    /// Bytes of the first path.
    pub path_len: u32,
    /// Bytes of the second path.
    pub second_len: u32,
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0..4].copy_from_slice(&self.handle.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.position.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.count.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.path_len.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.second_len.to_le_bytes());
        bytes
    }

    /// Reads a header; `None` if the bytes are too few or the reserved word is set.
    pub fn from_bytes(bytes: &[u8]) -> Option<Header> {
        let header = bytes.get(..HEADER_SIZE)?;
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&header[at..at + 4]);
            u32::from_le_bytes(word)
        };
        let mut position = [0u8; 8];
        position.copy_from_slice(&header[8..16]);
        if u32_at(28) != 0 {
            return None;
        }
        Some(Header {
            handle: u32_at(0),
            flags: u32_at(4),
            position: u64::from_le_bytes(position),
            count: u32_at(16),
            path_len: u32_at(20),
            second_len: u32_at(24),
        })
    }
}

/// Decodes one packet: `opcode` from the descriptor, `packet` the payload
/// bytes as copied out of the shared memory. Every length is checked
/// against the packet; nothing is trusted.
pub fn decode_request(opcode: Opcode, packet: &[u8]) -> Result<Request<'_>, FsError> {
    let header = Header::from_bytes(packet).ok_or(FsError::BadRequest)?;
    let body = &packet[HEADER_SIZE..];
    let path_len = header.path_len as usize;
    let second_len = header.second_len as usize;
    let paths_len = path_len
        .checked_add(second_len)
        .ok_or(FsError::BadRequest)?;
    let first = body.get(..path_len).ok_or(FsError::BadRequest)?;
    let second = body.get(path_len..paths_len).ok_or(FsError::BadRequest)?;
    let handle = Handle(header.handle);
    // Which header fields each operation may use; the rest must be zero, so
    // a confused client hears about it instead of being half understood.
    let unused_zero = |flags: bool, paths: bool, second_path: bool, count: bool| {
        (flags || header.flags == 0)
            && (paths || path_len == 0)
            && (second_path || second_len == 0)
            && (count || header.count == 0)
    };
    let request = match opcode {
        op::OPEN if unused_zero(true, true, false, false) => {
            if header.flags & !KNOWN_FLAGS != 0 {
                return Err(FsError::BadRequest);
            }
            Request::Open {
                path: first,
                create: header.flags & CREATE != 0,
                write: header.flags & WRITE != 0,
            }
        }
        op::CLOSE if unused_zero(false, false, false, false) => Request::Close { handle },
        op::READ if unused_zero(false, false, false, true) => {
            if header.count as usize > body.len() {
                return Err(FsError::TooSmall);
            }
            Request::Read {
                handle,
                position: header.position,
                count: header.count,
            }
        }
        op::WRITE if unused_zero(false, false, false, true) => Request::Write {
            handle,
            position: header.position,
            data: body
                .get(..header.count as usize)
                .ok_or(FsError::BadRequest)?,
        },
        op::TRUNCATE if unused_zero(false, false, false, false) => Request::Truncate {
            handle,
            size: header.position,
        },
        op::MKDIR if unused_zero(false, true, false, false) => Request::Mkdir { path: first },
        op::READDIR if unused_zero(false, true, false, false) => Request::Readdir {
            path: first,
            index: header.position,
        },
        op::STAT if unused_zero(false, true, false, false) => Request::Stat { path: first },
        op::REMOVE if unused_zero(false, true, false, false) => Request::Remove { path: first },
        op::RENAME if unused_zero(false, true, true, false) => Request::Rename {
            from: first,
            to: second,
        },
        op::SYNC if unused_zero(false, false, false, false) => Request::Sync,
        _ => return Err(FsError::BadRequest),
    };
    Ok(request)
}

/// Encodes a request into `packet` (the client's half of
/// [`decode_request`]); the bytes used, or `TooSmall`.
pub fn encode_request(request: &Request<'_>, packet: &mut [u8]) -> Result<usize, FsError> {
    let mut header = Header::default();
    let (first, second, data): (&[u8], &[u8], &[u8]) = match *request {
        Request::Open {
            path,
            create,
            write,
        } => {
            header.flags = if create { CREATE } else { 0 } | if write { WRITE } else { 0 };
            (path, &[], &[])
        }
        Request::Close { handle } => {
            header.handle = handle.0;
            (&[], &[], &[])
        }
        Request::Read {
            handle,
            position,
            count,
        } => {
            header.handle = handle.0;
            header.position = position;
            header.count = count;
            if HEADER_SIZE + count as usize > packet.len() {
                return Err(FsError::TooSmall);
            }
            (&[], &[], &[])
        }
        Request::Write {
            handle,
            position,
            data,
        } => {
            header.handle = handle.0;
            header.position = position;
            header.count = u32::try_from(data.len()).map_err(|_| FsError::TooSmall)?;
            (&[], &[], data)
        }
        Request::Truncate { handle, size } => {
            header.handle = handle.0;
            header.position = size;
            (&[], &[], &[])
        }
        Request::Mkdir { path } | Request::Stat { path } | Request::Remove { path } => {
            (path, &[], &[])
        }
        Request::Readdir { path, index } => {
            header.position = index;
            (path, &[], &[])
        }
        Request::Rename { from, to } => (from, to, &[]),
        Request::Sync => (&[], &[], &[]),
    };
    header.path_len = u32::try_from(first.len()).map_err(|_| FsError::BadPath)?;
    header.second_len = u32::try_from(second.len()).map_err(|_| FsError::BadPath)?;
    let total = HEADER_SIZE + first.len() + second.len() + data.len();
    let out = packet.get_mut(..total).ok_or(FsError::TooSmall)?;
    out[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    let mut at = HEADER_SIZE;
    for part in [first, second, data] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(total)
}

/// A path, checked and normalized: absolute, `/`-separated, no empty, `.`
/// or `..` components left, at most [`MAX_PATH`] bytes. `/` is the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalPath(String);

impl NormalPath {
    /// The root directory.
    pub fn root() -> NormalPath {
        NormalPath(String::from("/"))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components, root first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|part| !part.is_empty())
    }

    /// The parent directory and the last component (`None` for the root).
    pub fn split_last(&self) -> Option<(NormalPath, &str)> {
        let cut = self.0.rfind('/')?;
        let name = &self.0[cut + 1..];
        if name.is_empty() {
            return None;
        }
        let parent = if cut == 0 { "/" } else { &self.0[..cut] };
        Some((NormalPath(String::from(parent)), name))
    }

    /// `self` (a policy root) with `inner` (a client's normalized path) below
    /// it; cannot leave `self`, since `inner` has no `..`.
    pub fn join(&self, inner: &NormalPath) -> Result<NormalPath, FsError> {
        if inner.is_root() {
            return Ok(self.clone());
        }
        if self.is_root() {
            return Ok(inner.clone());
        }
        let mut joined = String::new();
        joined
            .try_reserve(self.0.len() + inner.0.len())
            .map_err(|_| FsError::NoSpace)?;
        joined.push_str(&self.0);
        joined.push_str(&inner.0);
        if joined.len() > MAX_PATH {
            return Err(FsError::BadPath);
        }
        Ok(NormalPath(joined))
    }
}

/// Checks and normalizes a client's path: UTF-8, starts with `/`, at most
/// [`MAX_PATH`] bytes, no NUL or control characters, `\`, `:`, `*`, `?`,
/// `"`, `<`, `>`, `|` (names FAT cannot hold); `.` components are dropped
/// and `..` goes up one, but never above the root: that is `BadPath`.
pub fn normalize(bytes: &[u8]) -> Result<NormalPath, FsError> {
    if bytes.is_empty() || bytes.len() > MAX_PATH || bytes[0] != b'/' {
        return Err(FsError::BadPath);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| FsError::BadPath)?;
    let forbidden = |c: char| c.is_control() || "\\:*?\"<>|".contains(c);
    if text.chars().any(forbidden) {
        return Err(FsError::BadPath);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(FsError::BadPath);
                }
            }
            name => {
                if name.len() > MAX_NAME || name.ends_with(' ') || name.ends_with('.') {
                    return Err(FsError::BadPath);
                }
                parts.try_reserve(1).map_err(|_| FsError::NoSpace)?;
                parts.push(name);
            }
        }
    }
    let mut normal = String::new();
    normal
        .try_reserve(bytes.len() + 1)
        .map_err(|_| FsError::NoSpace)?;
    for part in &parts {
        normal.push('/');
        normal.push_str(part);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    Ok(NormalPath(normal))
}

/// What a session may do: its root (the client sees nothing above it) and
/// whether it may write. Chosen by the server from the session's label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The directory the session sees as `/`.
    pub root: NormalPath,
    /// Whether it may change anything.
    pub writable: bool,
}

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// A file.
    File = 1,
    /// A directory.
    Directory = 2,
}

impl Kind {
    /// The kind a response's kind word names.
    pub fn from_word(word: u32) -> Option<Kind> {
        match word {
            1 => Some(Kind::File),
            2 => Some(Kind::Directory),
            _ => None,
        }
    }
}

/// Kind and size of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// File or directory.
    pub kind: Kind,
    /// Bytes (0 for directories).
    pub size: u64,
}

/// What the server writes over the header of an answered packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The handle (open), bytes done (read, write), or size (stat, readdir).
    pub value: u64,
    /// A [`Kind`] word (stat, readdir), else 0.
    pub kind: u32,
    /// Bytes of data or name after the header.
    pub data_len: u32,
}

impl Response {
    /// The response's header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0..8].copy_from_slice(&self.value.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.kind.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.data_len.to_le_bytes());
        bytes
    }

    /// Reads a response (the client's check: `data_len` must fit the packet).
    pub fn from_bytes(bytes: &[u8]) -> Option<Response> {
        let header = bytes.get(..HEADER_SIZE)?;
        let mut value = [0u8; 8];
        value.copy_from_slice(&header[0..8]);
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&header[8..12]);
        let mut data_len = [0u8; 4];
        data_len.copy_from_slice(&header[12..16]);
        let response = Response {
            value: u64::from_le_bytes(value),
            kind: u32::from_le_bytes(kind),
            data_len: u32::from_le_bytes(data_len),
        };
        (HEADER_SIZE + response.data_len as usize <= bytes.len()).then_some(response)
    }

    /// Reads a response from its header alone, for a client that fetches
    /// the data after it separately: the caller checks `data_len` against
    /// the packet and what it asked for.
    pub fn from_header(header: &[u8; HEADER_SIZE]) -> Response {
        let mut value = [0u8; 8];
        value.copy_from_slice(&header[0..8]);
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&header[8..12]);
        let mut data_len = [0u8; 4];
        data_len.copy_from_slice(&header[12..16]);
        Response {
            value: u64::from_le_bytes(value),
            kind: u32::from_le_bytes(kind),
            data_len: u32::from_le_bytes(data_len),
        }
    }
}

/// A directory entry as a backend reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (one component).
    pub name: String,
    /// Kind and size.
    pub stat: Stat,
}

/// Where a read's bytes go: a buffer of the server's own, or the client's
/// packet itself, so that bytes a backend gets from a packet stream of its
/// own (a Block session) go to the client without a copy in between.
/// Positions are from the start of the read's data; a target refuses
/// bytes past its end.
pub trait ReadTarget {
    /// Copies `bytes` to byte `at`.
    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<(), FsError>;
    /// Copies `len` bytes of `packet` (of `from`, a stream this server is
    /// the client of) from its byte `from_at` to byte `at`.
    fn put_from(
        &mut self,
        at: usize,
        from: &Client,
        packet: &Packet,
        from_at: usize,
        len: usize,
    ) -> Result<(), FsError>;
}

impl ReadTarget for [u8] {
    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<(), FsError> {
        at.checked_add(bytes.len())
            .and_then(|end| self.get_mut(at..end))
            .ok_or(FsError::Io)?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn put_from(
        &mut self,
        at: usize,
        from: &Client,
        packet: &Packet,
        from_at: usize,
        len: usize,
    ) -> Result<(), FsError> {
        let out = at
            .checked_add(len)
            .and_then(|end| self.get_mut(at..end))
            .ok_or(FsError::Io)?;
        from.read(packet, from_at, out).map_err(|_| FsError::Io)
    }
}

/// A file system a server serves: paths are normalized and already under
/// the session's root; write operations reach it only under a writable
/// policy. Errors are values; nothing a client says may make it panic.
pub trait Backend {
    /// What an open file is to the backend.
    type Node: Clone;

    /// Opens the file at `path`, creating it (empty) if `create` and missing.
    fn open(&mut self, path: &NormalPath, create: bool) -> Result<Self::Node, FsError>;
    /// Reads at `position` into `out`; bytes read (0 at the end).
    fn read(&mut self, node: &Self::Node, position: u64, out: &mut [u8]) -> Result<usize, FsError>;
    /// Reads like [`Backend::read`] (at most `buffer.len()` bytes), but
    /// hands the bytes to `target` (from its byte 0). By default they are
    /// read into `buffer` and copied from there; a backend that gets them
    /// from a packet stream of its own passes them on without `buffer`.
    fn read_to<T: ReadTarget + ?Sized>(
        &mut self,
        node: &Self::Node,
        position: u64,
        buffer: &mut [u8],
        target: &mut T,
    ) -> Result<usize, FsError> {
        let read = self.read(node, position, buffer)?.min(buffer.len());
        target.put(0, &buffer[..read])?;
        Ok(read)
    }
    /// Writes `data` at `position` (growing the file); bytes written.
    fn write(&mut self, node: &Self::Node, position: u64, data: &[u8]) -> Result<usize, FsError>;
    /// Sets the file's size (zero-filling when it grows).
    fn truncate(&mut self, node: &Self::Node, size: u64) -> Result<(), FsError>;
    /// A handle to the node is closed.
    fn close(&mut self, _node: Self::Node) {}
    /// Makes a directory (its parent must exist).
    fn mkdir(&mut self, path: &NormalPath) -> Result<(), FsError>;
    /// Entry `index` of the directory at `path`, `None` past the last.
    fn entry(&mut self, path: &NormalPath, index: u64) -> Result<Option<DirEntry>, FsError>;
    /// Kind and size of the node at `path`.
    fn stat(&mut self, path: &NormalPath) -> Result<Stat, FsError>;
    /// Removes a file or an empty directory.
    fn remove(&mut self, path: &NormalPath) -> Result<(), FsError>;
    /// Moves a node (the target must not exist).
    fn rename(&mut self, from: &NormalPath, to: &NormalPath) -> Result<(), FsError>;
    /// Writes everything cached to the medium.
    fn sync(&mut self) -> Result<(), FsError>;
}

/// One session's open files: at most `limit` (≤ [`MAX_HANDLES`]) at once.
#[derive(Debug)]
pub struct Handles<N> {
    slots: Vec<Option<(N, bool)>>,
    limit: usize,
}

impl<N> Handles<N> {
    /// Room for `limit` open files (clamped to [`MAX_HANDLES`]).
    pub fn new(limit: usize) -> Self {
        Handles {
            slots: Vec::new(),
            limit: limit.min(MAX_HANDLES),
        }
    }

    fn insert(&mut self, node: N, writable: bool) -> Result<Handle, (N, FsError)> {
        if let Some(index) = self.slots.iter().position(Option::is_none) {
            self.slots[index] = Some((node, writable));
            return Ok(Handle(index as u32));
        }
        if self.slots.len() >= self.limit || self.slots.try_reserve(1).is_err() {
            return Err((node, FsError::TooManyOpen));
        }
        self.slots.push(Some((node, writable)));
        Ok(Handle(self.slots.len() as u32 - 1))
    }

    fn get(&self, handle: Handle) -> Result<&(N, bool), FsError> {
        self.slots
            .get(handle.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(FsError::BadHandle)
    }

    fn remove(&mut self, handle: Handle) -> Result<N, FsError> {
        self.slots
            .get_mut(handle.0 as usize)
            .and_then(Option::take)
            .map(|(node, _)| node)
            .ok_or(FsError::BadHandle)
    }

    /// Every open node, taken out (the session closes).
    pub fn drain(&mut self) -> impl Iterator<Item = N> + '_ {
        self.slots.drain(..).flatten().map(|(node, _)| node)
    }

    /// How many files are open.
    pub fn open_count(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }
}

fn client_path(policy: &Policy, bytes: &[u8]) -> Result<NormalPath, FsError> {
    policy.root.join(&normalize(bytes)?)
}

/// Answers one packet: decodes it, checks it against `policy`, runs it on
/// `backend` with the session's `handles`, and writes the answer into
/// `packet` (header and data, within its length). Returns the status for
/// the acknowledgement.
pub fn serve<B: Backend>(
    backend: &mut B,
    policy: &Policy,
    handles: &mut Handles<B::Node>,
    opcode: Opcode,
    packet: &mut [u8],
) -> Status {
    serve_into::<B, [u8]>(backend, policy, handles, opcode, packet, None)
}

/// [`serve`], but a read's data goes to `read_target` (if given) instead
/// of after the header in `packet`, which then only needs the header
/// copied in and out (its length still bounds the read).
pub fn serve_into<B: Backend, T: ReadTarget + ?Sized>(
    backend: &mut B,
    policy: &Policy,
    handles: &mut Handles<B::Node>,
    opcode: Opcode,
    packet: &mut [u8],
    read_target: Option<&mut T>,
) -> Status {
    match serve_checked(backend, policy, handles, opcode, packet, read_target) {
        Ok(response) => {
            packet[..HEADER_SIZE].copy_from_slice(&response.to_bytes());
            Status::OK
        }
        Err(error) => error.status(),
    }
}

fn serve_checked<B: Backend, T: ReadTarget + ?Sized>(
    backend: &mut B,
    policy: &Policy,
    handles: &mut Handles<B::Node>,
    opcode: Opcode,
    packet: &mut [u8],
    read_target: Option<&mut T>,
) -> Result<Response, FsError> {
    let request = decode_request(opcode, packet)?;
    if request.writes() && !policy.writable {
        return Err(FsError::ReadOnly);
    }
    let done = |value: u64| Response {
        value,
        ..Response::default()
    };
    match request {
        Request::Open {
            path,
            create,
            write,
        } => {
            let path = client_path(policy, path)?;
            let node = backend.open(&path, create)?;
            match handles.insert(node, write) {
                Ok(handle) => Ok(done(u64::from(handle.0))),
                Err((node, error)) => {
                    backend.close(node);
                    Err(error)
                }
            }
        }
        Request::Close { handle } => {
            let node = handles.remove(handle)?;
            backend.close(node);
            Ok(done(0))
        }
        Request::Read {
            handle,
            position,
            count,
        } => {
            let (node, _) = handles.get(handle)?;
            // `decode_request` checked that `count` bytes fit after the header.
            let out = packet
                .get_mut(HEADER_SIZE..HEADER_SIZE + count as usize)
                .ok_or(FsError::TooSmall)?;
            let read = match read_target {
                Some(target) => backend.read_to(node, position, out, target)?,
                None => backend.read(node, position, out)?,
            }
            .min(count as usize);
            Ok(Response {
                value: read as u64,
                kind: 0,
                data_len: read as u32,
            })
        }
        Request::Write {
            handle,
            position,
            data,
        } => {
            let (node, writable) = handles.get(handle)?;
            if !writable {
                return Err(FsError::ReadOnly);
            }
            position
                .checked_add(data.len() as u64)
                .ok_or(FsError::BadRequest)?;
            let written = backend.write(node, position, data)?;
            Ok(done(written as u64))
        }
        Request::Truncate { handle, size } => {
            let (node, writable) = handles.get(handle)?;
            if !writable {
                return Err(FsError::ReadOnly);
            }
            backend.truncate(node, size)?;
            Ok(done(size))
        }
        Request::Mkdir { path } => {
            backend.mkdir(&client_path(policy, path)?)?;
            Ok(done(0))
        }
        Request::Readdir { path, index } => {
            let path = client_path(policy, path)?;
            let entry = backend.entry(&path, index)?.ok_or(FsError::NotFound)?;
            let name = entry.name.as_bytes();
            let out = packet
                .get_mut(HEADER_SIZE..HEADER_SIZE + name.len())
                .ok_or(FsError::TooSmall)?;
            out.copy_from_slice(name);
            Ok(Response {
                value: entry.stat.size,
                kind: entry.stat.kind as u32,
                data_len: name.len() as u32,
            })
        }
        Request::Stat { path } => {
            let stat = backend.stat(&client_path(policy, path)?)?;
            Ok(Response {
                value: stat.size,
                kind: stat.kind as u32,
                data_len: 0,
            })
        }
        Request::Remove { path } => {
            let path = client_path(policy, path)?;
            // The session's root is what it sees as `/`: not its to remove.
            if path == policy.root {
                return Err(FsError::BadPath);
            }
            backend.remove(&path)?;
            Ok(done(0))
        }
        Request::Rename { from, to } => {
            let from = client_path(policy, from)?;
            let to = client_path(policy, to)?;
            if from == policy.root || to == policy.root {
                return Err(FsError::BadPath);
            }
            backend.rename(&from, &to)?;
            Ok(done(0))
        }
        Request::Sync => {
            backend.sync()?;
            Ok(done(0))
        }
    }
}

#[cfg(test)]
mod tests;
