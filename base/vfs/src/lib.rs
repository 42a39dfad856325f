//! Files for applications: [`FileSystem`] opens a FileSystem session, and
//! [`File`] and [`Dir`] read, write and list through it with the familiar
//! shapes ([`Read`], [`Write`]), so reading a file takes three lines:
//!
//! ```ignore
//! let fs = FileSystem::open("")?;
//! let text = fs.read_to_string("/notes/todo.txt")?;
//! log!("{text}");
//! ```
//!
//! Every call is one packet on the session's stream (see
//! `arbor_sessions::file_system`), at most [`CHUNK`] bytes of data each
//! (or the chunk given to [`FileSystem::open_with_chunk`]); longer reads
//! and writes are split. A read moves its header into the packet and its
//! data from the packet straight into the caller's buffer. Nothing the server answers is
//! trusted: a response whose lengths do not fit the packet is
//! [`Error::Protocol`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use arbor::packet_stream::{Opcode, Status};
use arbor_sessions::bulk::{BulkError, ClientStream, StreamArgs};
use arbor_sessions::file_system::{
    FsError, HEADER_SIZE, Handle, Header, Kind, Request, Response, Stat, encode_request, op,
};
use core::cell::RefCell;

/// The service name file-system servers announce.
pub const SERVICE: &str = "FileSystem";
/// Most data bytes one request moves by default.
pub const CHUNK: usize = 8 * 1024;
/// Largest chunk [`FileSystem::open_with_chunk`] accepts.
pub const MAX_CHUNK: usize = 256 * 1024;
/// Payload bytes a session needs beside one chunk: its header and a path.
const PAYLOAD_EXTRA: usize = 8 * 1024;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server refused the request.
    Fs(FsError),
    /// The session or its stream failed.
    Session(BulkError),
    /// The server answered something no honest server would.
    Protocol,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Fs(error) => write!(f, "{error}"),
            Error::Session(error) => write!(f, "session: {error}"),
            Error::Protocol => write!(f, "the server broke the protocol"),
        }
    }
}

impl From<BulkError> for Error {
    fn from(error: BulkError) -> Self {
        Error::Session(error)
    }
}

impl From<FsError> for Error {
    fn from(error: FsError) -> Self {
        Error::Fs(error)
    }
}

/// Reading bytes.
pub trait Read {
    /// Reads up to `buffer.len()` bytes; 0 at the end.
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Error>;

    /// Reads everything that is left onto `out`; the bytes read.
    fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<usize, Error> {
        let mut chunk = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            let read = self.read(&mut chunk)?;
            if read == 0 {
                return Ok(total);
            }
            out.extend_from_slice(&chunk[..read]);
            total += read;
        }
    }
}

/// Writing bytes.
pub trait Write {
    /// Writes some of `bytes`; how many.
    fn write(&mut self, bytes: &[u8]) -> Result<usize, Error>;

    /// Writes all of `bytes`.
    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let written = self.write(bytes)?;
            if written == 0 {
                return Err(Error::Protocol);
            }
            bytes = &bytes[written..];
        }
        Ok(())
    }
}

/// A FileSystem session.
pub struct FileSystem {
    stream: RefCell<ClientStream>,
    chunk: usize,
}

/// What came back for one request.
struct Answer {
    response: Response,
    data: Vec<u8>,
}

impl FileSystem {
    /// Opens a FileSystem session labelled `label` (routed by the scenario).
    pub fn open(label: &str) -> Result<FileSystem, Error> {
        Self::open_with_chunk(label, CHUNK)
    }

    /// Opens a FileSystem session whose requests move up to `chunk` bytes
    /// (1..=[`MAX_CHUNK`]; fewer, larger requests for streaming, at the
    /// price of a larger session donation).
    pub fn open_with_chunk(label: &str, chunk: usize) -> Result<FileSystem, Error> {
        if chunk == 0 || chunk > MAX_CHUNK {
            return Err(Error::Fs(FsError::BadRequest));
        }
        let stream = ClientStream::open(
            SERVICE,
            label,
            StreamArgs {
                payload_len: (chunk + PAYLOAD_EXTRA) as u32,
                entries: 4,
            },
        )?;
        Ok(FileSystem {
            stream: RefCell::new(stream),
            chunk,
        })
    }

    /// Most data bytes one request of this session moves.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// One read request: `count` bytes from `position` of `handle`, the
    /// data copied from the packet straight into `out`; the bytes read.
    fn read_into(&self, handle: Handle, position: u64, out: &mut [u8]) -> Result<usize, Error> {
        let count = out.len().min(self.chunk);
        // The request is its header; the packet's rest is room for the data.
        let mut header = Header {
            handle: handle.0,
            flags: 0,
            position,
            count: count as u32,
            path_len: 0,
            second_len: 0,
        }
        .to_bytes();
        let mut stream = self.stream.borrow_mut();
        let packet = stream
            .stream
            .alloc_packet(HEADER_SIZE + count)
            .map_err(BulkError::Stream)?;
        if let Err(error) = stream.stream.write(&packet, 0, &header) {
            let _ = stream.stream.free_packet(packet);
            return Err(BulkError::Stream(error).into());
        }
        let ack = stream.exchange(packet, op::READ, 0)?;
        let result = (|| {
            stream
                .stream
                .read(&ack.packet, 0, &mut header)
                .map_err(BulkError::Stream)?;
            if ack.status != Status::OK {
                return Err(FsError::from_status(ack.status)
                    .map(Error::Fs)
                    .unwrap_or(Error::Protocol));
            }
            let response = Response::from_header(&header);
            let read = response.data_len as usize;
            if read > count || response.value != read as u64 {
                return Err(Error::Protocol);
            }
            stream
                .stream
                .read(&ack.packet, HEADER_SIZE, &mut out[..read])
                .map_err(BulkError::Stream)?;
            Ok(read)
        })();
        let _ = stream.stream.free_packet(ack.packet);
        result
    }

    /// Sends one request; `room` extra bytes after the header for the answer.
    fn request(&self, opcode: Opcode, request: &Request<'_>, room: usize) -> Result<Answer, Error> {
        let body = match request {
            Request::Write { data, .. } => data.len(),
            Request::Rename { from, to } => from.len() + to.len(),
            Request::Open { path, .. }
            | Request::Mkdir { path }
            | Request::Readdir { path, .. }
            | Request::Stat { path }
            | Request::Remove { path } => path.len(),
            _ => 0,
        };
        let length = HEADER_SIZE + body.max(room);
        let mut bytes = vec![0u8; length];
        encode_request(request, &mut bytes)?;
        let mut stream = self.stream.borrow_mut();
        let packet = stream
            .stream
            .alloc_packet(length)
            .map_err(BulkError::Stream)?;
        if let Err(error) = stream.stream.write(&packet, 0, &bytes) {
            let _ = stream.stream.free_packet(packet);
            return Err(BulkError::Stream(error).into());
        }
        let ack = stream.exchange(packet, opcode, 0)?;
        let copied = stream.stream.read(&ack.packet, 0, &mut bytes);
        let _ = stream.stream.free_packet(ack.packet);
        copied.map_err(BulkError::Stream)?;
        if ack.status != Status::OK {
            return Err(FsError::from_status(ack.status)
                .map(Error::Fs)
                .unwrap_or(Error::Protocol));
        }
        let response = Response::from_bytes(&bytes).ok_or(Error::Protocol)?;
        let data = bytes[HEADER_SIZE..HEADER_SIZE + response.data_len as usize].to_vec();
        Ok(Answer { response, data })
    }

    fn open_handle(&self, path: &str, create: bool, write: bool) -> Result<Handle, Error> {
        let answer = self.request(
            op::OPEN,
            &Request::Open {
                path: path.as_bytes(),
                create,
                write,
            },
            0,
        )?;
        let handle = u32::try_from(answer.response.value).map_err(|_| Error::Protocol)?;
        Ok(Handle(handle))
    }

    /// Opens an existing file for reading.
    pub fn open_file(&self, path: &str) -> Result<File<'_>, Error> {
        Ok(File {
            fs: self,
            handle: self.open_handle(path, false, false)?,
            position: 0,
        })
    }

    /// Creates a file (or empties an existing one) for writing.
    pub fn create(&self, path: &str) -> Result<File<'_>, Error> {
        let file = File {
            fs: self,
            handle: self.open_handle(path, true, true)?,
            position: 0,
        };
        file.set_len(0)?;
        Ok(file)
    }

    /// Opens (creating if missing) a file for writing at its end.
    pub fn append(&self, path: &str) -> Result<File<'_>, Error> {
        let size = match self.stat(path) {
            Ok(stat) => stat.size,
            Err(Error::Fs(FsError::NotFound)) => 0,
            Err(error) => return Err(error),
        };
        Ok(File {
            fs: self,
            handle: self.open_handle(path, true, true)?,
            position: size,
        })
    }

    /// The whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.open_file(path)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The whole file as text (`Protocol` if it is not UTF-8).
    pub fn read_to_string(&self, path: &str) -> Result<String, Error> {
        String::from_utf8(self.read(path)?).map_err(|_| Error::Protocol)
    }

    /// Writes `bytes` as the file's whole content.
    pub fn write(&self, path: &str, bytes: &[u8]) -> Result<(), Error> {
        self.create(path)?.write_all(bytes)
    }

    /// Makes a directory.
    pub fn mkdir(&self, path: &str) -> Result<(), Error> {
        self.request(
            op::MKDIR,
            &Request::Mkdir {
                path: path.as_bytes(),
            },
            0,
        )
        .map(drop)
    }

    /// Kind and size of a node.
    pub fn stat(&self, path: &str) -> Result<Stat, Error> {
        let answer = self.request(
            op::STAT,
            &Request::Stat {
                path: path.as_bytes(),
            },
            0,
        )?;
        let kind = Kind::from_word(answer.response.kind).ok_or(Error::Protocol)?;
        Ok(Stat {
            kind,
            size: answer.response.value,
        })
    }

    /// Removes a file or an empty directory.
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        self.request(
            op::REMOVE,
            &Request::Remove {
                path: path.as_bytes(),
            },
            0,
        )
        .map(drop)
    }

    /// Moves a node.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        self.request(
            op::RENAME,
            &Request::Rename {
                from: from.as_bytes(),
                to: to.as_bytes(),
            },
            0,
        )
        .map(drop)
    }

    /// Asks the server to write everything to its medium.
    pub fn sync(&self) -> Result<(), Error> {
        self.request(op::SYNC, &Request::Sync, 0).map(drop)
    }

    /// The entries of a directory (`NotDirectory` for a file).
    pub fn read_dir(&self, path: &str) -> Result<Dir<'_>, Error> {
        if self.stat(path)?.kind != Kind::Directory {
            return Err(Error::Fs(FsError::NotDirectory));
        }
        Ok(Dir {
            fs: self,
            path: String::from(path),
            index: 0,
            done: false,
        })
    }

    /// Copies `from` to `to` chunk by chunk; the bytes copied.
    pub fn copy(&self, from: &str, to: &str) -> Result<u64, Error> {
        let mut source = self.open_file(from)?;
        let mut target = self.create(to)?;
        let mut chunk = vec![0u8; self.chunk];
        let mut total = 0u64;
        loop {
            let read = source.read(&mut chunk)?;
            if read == 0 {
                return Ok(total);
            }
            target.write_all(&chunk[..read])?;
            total += read as u64;
        }
    }
}

/// An open file; closed when dropped.
pub struct File<'a> {
    fs: &'a FileSystem,
    handle: Handle,
    position: u64,
}

impl File<'_> {
    /// Sets the file's size.
    pub fn set_len(&self, size: u64) -> Result<(), Error> {
        self.fs
            .request(
                op::TRUNCATE,
                &Request::Truncate {
                    handle: self.handle,
                    size,
                },
                0,
            )
            .map(drop)
    }

    /// Moves the position reads and writes start at.
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

impl Read for File<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        let read = self.fs.read_into(self.handle, self.position, buffer)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Write for File<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let data = &bytes[..bytes.len().min(self.fs.chunk)];
        let answer = self.fs.request(
            op::WRITE,
            &Request::Write {
                handle: self.handle,
                position: self.position,
                data,
            },
            0,
        )?;
        let written = usize::try_from(answer.response.value).map_err(|_| Error::Protocol)?;
        if written > data.len() {
            return Err(Error::Protocol);
        }
        self.position += written as u64;
        Ok(written)
    }
}

impl Drop for File<'_> {
    fn drop(&mut self) {
        // A close that fails leaves the handle to the session's end.
        let _ = self.fs.request(
            op::CLOSE,
            &Request::Close {
                handle: self.handle,
            },
            0,
        );
    }
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: String,
    /// Kind and size.
    pub stat: Stat,
}

/// The entries of a directory, one request each.
pub struct Dir<'a> {
    fs: &'a FileSystem,
    path: String,
    index: u64,
    done: bool,
}

impl Iterator for Dir<'_> {
    type Item = Result<DirEntry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let answer = self.fs.request(
            op::READDIR,
            &Request::Readdir {
                path: self.path.as_bytes(),
                index: self.index,
            },
            arbor_sessions::file_system::MAX_NAME,
        );
        self.index += 1;
        let entry = match answer {
            // Past the last entry (the directory was there when listing began).
            Err(Error::Fs(FsError::NotFound)) => {
                self.done = true;
                return None;
            }
            Err(error) => Err(error),
            Ok(answer) => match (
                Kind::from_word(answer.response.kind),
                String::from_utf8(answer.data),
            ) {
                (Some(kind), Ok(name)) => Ok(DirEntry {
                    name,
                    stat: Stat {
                        kind,
                        size: answer.response.value,
                    },
                }),
                _ => Err(Error::Protocol),
            },
        };
        if entry.is_err() {
            self.done = true;
        }
        Some(entry)
    }
}
