//! web's files from a FileSystem session, through the VFS.
//!
//! Paths reach here normalised by `web::http` (absolute, no `..`, no NUL),
//! and the file system checks them again against the session's root. One
//! file stays open between reads, so a large file costs one open and a
//! read per chunk, not an open per chunk; [`FsFiles::close`] drops it when
//! the server goes idle.

use alloc::string::String;
use arbor_sessions::file_system::{FsError, Kind};
use arbor_vfs::{Error, File, FileSystem, Read};
use web::files::{FileError, FileSource};

/// Files from a FileSystem session.
pub struct FsFiles {
    fs: &'static FileSystem,
    open: Option<(String, File<'static>)>,
}

impl FsFiles {
    /// Files from `fs` (held for the rest of the component's life).
    pub fn new(fs: &'static FileSystem) -> FsFiles {
        FsFiles { fs, open: None }
    }

    /// Closes the file kept open, if any.
    pub fn close(&mut self) {
        self.open = None;
    }
}

fn file_error(error: Error) -> FileError {
    match error {
        Error::Fs(
            FsError::NotFound | FsError::IsDirectory | FsError::NotDirectory | FsError::BadPath,
        ) => FileError::NotFound,
        _ => FileError::Io,
    }
}

impl FileSource for FsFiles {
    fn size(&mut self, path: &str) -> Result<u64, FileError> {
        let stat = self.fs.stat(path).map_err(file_error)?;
        match stat.kind {
            Kind::File => Ok(stat.size),
            // A directory is not served (no listings).
            Kind::Directory => Err(FileError::NotFound),
        }
    }

    fn read(&mut self, path: &str, offset: u64, out: &mut [u8]) -> Result<usize, FileError> {
        if self.open.as_ref().is_none_or(|(open, _)| open != path) {
            // The old handle closes before the new one opens.
            self.open = None;
            let file = self.fs.open_file(path).map_err(file_error)?;
            self.open = Some((String::from(path), file));
        }
        let Some((_, file)) = self.open.as_mut() else {
            return Err(FileError::Io);
        };
        file.seek(offset);
        let result = file.read(out).map_err(file_error);
        if result.is_err() {
            self.open = None;
        }
        result
    }
}
