//! The FileSystem [`Backend`] on a FAT volume through lamfat, over the
//! [`SectorCache`].
//!
//! An open handle is its path: every operation reopens the file through
//! lamfat (whose `File` borrows the file system, so none can be kept), which
//! costs a directory walk and keeps no state a client could leave behind.
//! `sync` unmounts (lamfat then writes its FSInfo and clears the volume's
//! dirty flag), writes the cache back and flushes the device, and mounts
//! again, so after a sync the medium is a clean FAT volume that `fsck.fat`
//! accepts. Timestamps come from [`Clock`].

use crate::cache::{BlockDevice, Disk, SectorCache};
use crate::clock::calendar;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use arbor_sessions::file_system::{Backend, DirEntry, FsError, Kind, NormalPath, ReadTarget, Stat};
use core::cell::RefCell;
use lamfat::{
    Date, DateTime, Error, FileSystem, FsOptions, LossyOemCpConverter, Read, Seek, SeekFrom, Time,
    TimeProvider, Write,
};

/// Wall-clock time for timestamps: a function that says how many seconds
/// have passed since 1970 (the CMOS RTC on the target; 0, i.e. 1980 on
/// the volume, when there is no clock).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Seconds since 1970, now.
    pub now_seconds: fn() -> u64,
}

impl Clock {
    /// Seconds since 1970 now.
    pub fn now(&self) -> u64 {
        (self.now_seconds)()
    }

    fn date_time(&self) -> DateTime {
        let now = calendar(self.now());
        // FAT dates span 1980..=2107; outside it, the nearest end.
        let (year, month, day, hour, minute, second) = if now.year < 1980 {
            (1980, 1, 1, 0, 0, 0)
        } else if now.year > 2107 {
            (2107, 12, 31, 23, 59, 58)
        } else {
            (
                now.year, now.month, now.day, now.hour, now.minute, now.second,
            )
        };
        DateTime::new(
            Date::new(year, month, day),
            Time::new(hour, minute, second, 0),
        )
    }
}

impl TimeProvider for Clock {
    fn get_current_date(&self) -> Date {
        self.date_time().date
    }

    fn get_current_date_time(&self) -> DateTime {
        self.date_time()
    }
}

type Volume<D> = FileSystem<Disk<D>, Clock, LossyOemCpConverter>;

/// A FAT volume as a FileSystem backend.
pub struct FatBackend<D: BlockDevice> {
    volume: Option<Volume<D>>,
    cache: Rc<RefCell<SectorCache<D>>>,
    clock: Clock,
    /// Where the file read last lies on the volume, kept for the next read
    /// (a stream of reads would otherwise walk its cluster chain from the
    /// start each time); dropped by every change to the volume.
    layout: Option<Layout>,
}

/// Most runs of clusters a kept [`Layout`] holds; a more fragmented file
/// is read through lamfat.
pub const MAX_RUNS: usize = 1024;

/// A file's bytes on the volume: its length and its runs of consecutive
/// clusters, in file order.
struct Layout {
    path: NormalPath,
    len: u64,
    runs: alloc::vec::Vec<Run>,
}

/// Consecutive bytes of a file that are consecutive on the volume too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    file_start: u64,
    volume_offset: u64,
    len: u64,
}

fn fs_error(error: Error<()>) -> FsError {
    match error {
        Error::NotFound => FsError::NotFound,
        Error::AlreadyExists => FsError::Exists,
        Error::DirectoryIsNotEmpty => FsError::NotEmpty,
        Error::NotEnoughSpace => FsError::NoSpace,
        Error::InvalidFileNameLength | Error::UnsupportedFileNameCharacter => FsError::BadPath,
        Error::InvalidInput => FsError::BadRequest,
        _ => FsError::Io,
    }
}

/// lamfat's path for a normalized one: relative to the root.
fn relative(path: &NormalPath) -> &str {
    path.as_str().trim_start_matches('/')
}

impl<D: BlockDevice> FatBackend<D> {
    /// Mounts the FAT volume on `cache`.
    pub fn mount(cache: SectorCache<D>, clock: Clock) -> Result<Self, FsError> {
        let cache = Rc::new(RefCell::new(cache));
        let volume = Self::mount_volume(&cache, clock)?;
        Ok(FatBackend {
            volume: Some(volume),
            cache,
            clock,
            layout: None,
        })
    }

    fn mount_volume(
        cache: &Rc<RefCell<SectorCache<D>>>,
        clock: Clock,
    ) -> Result<Volume<D>, FsError> {
        FileSystem::new(
            Disk::new(cache.clone()),
            FsOptions::new().time_provider(clock),
        )
        .map_err(fs_error)
    }

    fn volume(&self) -> Result<&Volume<D>, FsError> {
        self.volume.as_ref().ok_or(FsError::Io)
    }

    /// Whether the mounted volume is FAT32.
    pub fn is_fat32(&self) -> bool {
        self.volume
            .as_ref()
            .is_some_and(|v| v.fat_type() == lamfat::FatType::Fat32)
    }

    /// Syncs and gives the cache (and its device) back.
    pub fn unmount(mut self) -> Result<SectorCache<D>, FsError> {
        self.sync()?;
        let volume = self.volume.take().ok_or(FsError::Io)?;
        volume.unmount().map_err(fs_error)?;
        let cache = Rc::try_unwrap(self.cache).map_err(|_| FsError::Io)?;
        let mut cache = cache.into_inner();
        cache.flush().map_err(|_| FsError::Io)?;
        Ok(cache)
    }

    fn file_len(&self, path: &NormalPath) -> Result<u64, FsError> {
        match self.stat_of(path)? {
            Stat {
                kind: Kind::File,
                size,
            } => Ok(size),
            _ => Err(FsError::IsDirectory),
        }
    }

    fn stat_of(&self, path: &NormalPath) -> Result<Stat, FsError> {
        let Some((parent, name)) = path.split_last() else {
            return Ok(Stat {
                kind: Kind::Directory,
                size: 0,
            });
        };
        let volume = self.volume()?;
        let root = volume.root_dir();
        let directory = if parent.is_root() {
            root
        } else {
            // lamfat says InvalidInput when a component on the way is a file.
            root.open_dir(relative(&parent))
                .map_err(|error| match error {
                    Error::InvalidInput => FsError::NotDirectory,
                    other => fs_error(other),
                })?
        };
        for entry in directory.iter() {
            let entry = entry.map_err(fs_error)?;
            if entry.file_name().eq_ignore_ascii_case(name) {
                return Ok(if entry.is_dir() {
                    Stat {
                        kind: Kind::Directory,
                        size: 0,
                    }
                } else {
                    Stat {
                        kind: Kind::File,
                        size: entry.len(),
                    }
                });
            }
        }
        Err(FsError::NotFound)
    }

    /// `NotDirectory` (or `NotFound`) unless the parent of `path` is a directory.
    fn parent_is_directory(&self, path: &NormalPath) -> Result<(), FsError> {
        let (parent, _) = path.split_last().ok_or(FsError::Exists)?;
        match self.stat_of(&parent)?.kind {
            Kind::Directory => Ok(()),
            Kind::File => Err(FsError::NotDirectory),
        }
    }

    /// The layout of the file at `path`, from the one kept or freshly
    /// from its cluster chain; `None` for a file too fragmented to keep.
    fn layout_of(&mut self, path: &NormalPath) -> Result<Option<&Layout>, FsError> {
        if self.layout.as_ref().is_none_or(|kept| kept.path != *path) {
            self.layout = None;
            let len = self.file_len(path)?;
            let mut runs: alloc::vec::Vec<Run> = alloc::vec::Vec::new();
            let mut file_start = 0u64;
            {
                let volume = self.volume()?;
                let mut file = volume
                    .root_dir()
                    .open_file(relative(path))
                    .map_err(fs_error)?;
                for extent in file.extents() {
                    let extent = extent.map_err(fs_error)?;
                    let size = u64::from(extent.size);
                    let continues = runs
                        .last()
                        .is_some_and(|last| last.volume_offset + last.len == extent.offset);
                    if let (true, Some(last)) = (continues, runs.last_mut()) {
                        last.len += size;
                    } else if runs.len() == MAX_RUNS {
                        return Ok(None);
                    } else {
                        runs.try_reserve(1).map_err(|_| FsError::NoSpace)?;
                        runs.push(Run {
                            file_start,
                            volume_offset: extent.offset,
                            len: size,
                        });
                    }
                    file_start += size;
                }
            }
            if file_start < len {
                // A chain shorter than the file: let lamfat say what it thinks.
                return Ok(None);
            }
            self.layout = Some(Layout {
                path: path.clone(),
                len,
                runs,
            });
        }
        Ok(self.layout.as_ref())
    }

    /// Reads through a kept layout: each run's bytes straight from the
    /// cache (which reads whole uncached blocks straight from the device
    /// into `out`); `None` when the file has no layout to keep.
    fn read_by_layout<T: ReadTarget + ?Sized>(
        &mut self,
        path: &NormalPath,
        position: u64,
        len: usize,
        target: &mut T,
    ) -> Result<Option<usize>, FsError> {
        let cache = self.cache.clone();
        let Some(layout) = self.layout_of(path)? else {
            return Ok(None);
        };
        let end = layout.len.min(position.saturating_add(len as u64));
        let mut at = position;
        let first = layout
            .runs
            .partition_point(|run| run.file_start + run.len <= position);
        for run in &layout.runs[first..] {
            if at >= end {
                break;
            }
            let skip = at - run.file_start;
            let take = (run.len - skip).min(end - at) as usize;
            let done = (at - position) as usize;
            let read = cache
                .try_borrow_mut()
                .map_err(|_| FsError::Io)?
                .read_to(
                    run.volume_offset + skip,
                    take,
                    target,
                    done,
                    run.volume_offset + run.len,
                )
                .map_err(|_| FsError::Io)?;
            if read != take {
                return Err(FsError::Io);
            }
            at += take as u64;
        }
        Ok(Some((at.max(position) - position) as usize))
    }

    /// Reads through lamfat, following the cluster chain (for a file
    /// without a kept layout).
    fn read_by_chain(
        &self,
        node: &NormalPath,
        position: u64,
        out: &mut [u8],
    ) -> Result<usize, FsError> {
        let len = self.file_len(node)?;
        if position >= len {
            return Ok(0);
        }
        let volume = self.volume()?;
        let mut file = volume
            .root_dir()
            .open_file(relative(node))
            .map_err(fs_error)?;
        file.seek(SeekFrom::Start(position)).map_err(fs_error)?;
        let mut done = 0;
        while done < out.len() {
            match file.read(&mut out[done..]).map_err(fs_error)? {
                0 => break,
                read => done += read,
            }
        }
        Ok(done)
    }

    /// Writes zeros from the file's end up to `size`.
    fn extend(&self, path: &NormalPath, from: u64, size: u64) -> Result<(), FsError> {
        let volume = self.volume()?;
        let mut file = volume
            .root_dir()
            .open_file(relative(path))
            .map_err(fs_error)?;
        file.seek(SeekFrom::Start(from)).map_err(fs_error)?;
        let zeros = vec![0u8; 4096];
        let mut at = from;
        while at < size {
            let take = (size - at).min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..take]).map_err(fs_error)?;
            at += take as u64;
        }
        file.flush().map_err(fs_error)
    }
}

impl<D: BlockDevice> Backend for FatBackend<D> {
    type Node = NormalPath;

    fn open(&mut self, path: &NormalPath, create: bool) -> Result<NormalPath, FsError> {
        match self.stat_of(path) {
            Ok(Stat {
                kind: Kind::File, ..
            }) => Ok(path.clone()),
            Ok(_) => Err(FsError::IsDirectory),
            Err(FsError::NotFound) if create => {
                self.layout = None;
                self.parent_is_directory(path)?;
                let volume = self.volume()?;
                let mut file = volume
                    .root_dir()
                    .create_file(relative(path))
                    .map_err(fs_error)?;
                file.flush().map_err(fs_error)?;
                Ok(path.clone())
            }
            Err(error) => Err(error),
        }
    }

    fn read(&mut self, node: &NormalPath, position: u64, out: &mut [u8]) -> Result<usize, FsError> {
        let len = out.len();
        match self.read_by_layout(node, position, len, out)? {
            Some(read) => Ok(read),
            None => self.read_by_chain(node, position, out),
        }
    }

    /// Through a kept layout the bytes go from the Block session's packet
    /// to `target` (the client's packet) directly; otherwise through
    /// `buffer`, as [`Backend::read`] reads them.
    fn read_to<T: ReadTarget + ?Sized>(
        &mut self,
        node: &NormalPath,
        position: u64,
        buffer: &mut [u8],
        target: &mut T,
    ) -> Result<usize, FsError> {
        if let Some(read) = self.read_by_layout(node, position, buffer.len(), target)? {
            return Ok(read);
        }
        let read = self
            .read_by_chain(node, position, buffer)?
            .min(buffer.len());
        target.put(0, &buffer[..read])?;
        Ok(read)
    }

    fn write(&mut self, node: &NormalPath, position: u64, data: &[u8]) -> Result<usize, FsError> {
        self.layout = None;
        let len = self.file_len(node)?;
        // FAT files end below 4 GiB.
        position
            .checked_add(data.len() as u64)
            .filter(|end| *end <= u64::from(u32::MAX))
            .ok_or(FsError::NoSpace)?;
        if position > len {
            self.extend(node, len, position)?;
        }
        let volume = self.volume()?;
        let mut file = volume
            .root_dir()
            .open_file(relative(node))
            .map_err(fs_error)?;
        file.seek(SeekFrom::Start(position)).map_err(fs_error)?;
        file.write_all(data).map_err(fs_error)?;
        file.flush().map_err(fs_error)?;
        Ok(data.len())
    }

    fn truncate(&mut self, node: &NormalPath, size: u64) -> Result<(), FsError> {
        self.layout = None;
        let len = self.file_len(node)?;
        if size > u64::from(u32::MAX) {
            return Err(FsError::NoSpace);
        }
        if size > len {
            return self.extend(node, len, size);
        }
        let volume = self.volume()?;
        let mut file = volume
            .root_dir()
            .open_file(relative(node))
            .map_err(fs_error)?;
        file.seek(SeekFrom::Start(size)).map_err(fs_error)?;
        file.truncate().map_err(fs_error)?;
        file.flush().map_err(fs_error)
    }

    fn mkdir(&mut self, path: &NormalPath) -> Result<(), FsError> {
        self.layout = None;
        match self.stat_of(path) {
            Ok(_) => return Err(FsError::Exists),
            Err(FsError::NotFound) => {}
            Err(error) => return Err(error),
        }
        self.parent_is_directory(path)?;
        let volume = self.volume()?;
        volume
            .root_dir()
            .create_dir(relative(path))
            .map(drop)
            .map_err(fs_error)
    }

    fn entry(&mut self, path: &NormalPath, index: u64) -> Result<Option<DirEntry>, FsError> {
        let volume = self.volume()?;
        let root = volume.root_dir();
        let directory = if path.is_root() {
            root
        } else {
            match self.stat_of(path)? {
                Stat {
                    kind: Kind::Directory,
                    ..
                } => {}
                _ => return Err(FsError::NotDirectory),
            }
            root.open_dir(relative(path)).map_err(fs_error)?
        };
        let mut seen = 0u64;
        for entry in directory.iter() {
            let entry = entry.map_err(fs_error)?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            if seen == index {
                let stat = if entry.is_dir() {
                    Stat {
                        kind: Kind::Directory,
                        size: 0,
                    }
                } else {
                    Stat {
                        kind: Kind::File,
                        size: entry.len(),
                    }
                };
                return Ok(Some(DirEntry {
                    name: String::from(name.as_str()),
                    stat,
                }));
            }
            seen += 1;
        }
        Ok(None)
    }

    fn stat(&mut self, path: &NormalPath) -> Result<Stat, FsError> {
        self.stat_of(path)
    }

    fn remove(&mut self, path: &NormalPath) -> Result<(), FsError> {
        self.layout = None;
        if path.is_root() {
            return Err(FsError::BadPath);
        }
        self.stat_of(path)?;
        let volume = self.volume()?;
        volume.root_dir().remove(relative(path)).map_err(fs_error)
    }

    fn rename(&mut self, from: &NormalPath, to: &NormalPath) -> Result<(), FsError> {
        self.layout = None;
        if from.is_root() || to.is_root() {
            return Err(FsError::BadPath);
        }
        let below_itself = to
            .as_str()
            .strip_prefix(from.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if below_itself {
            return Err(FsError::BadPath);
        }
        self.stat_of(from)?;
        match self.stat_of(to) {
            Ok(_) => return Err(FsError::Exists),
            Err(FsError::NotFound) => {}
            Err(error) => return Err(error),
        }
        let volume = self.volume()?;
        let root = volume.root_dir();
        root.rename(relative(from), &root, relative(to))
            .map_err(fs_error)
    }

    fn sync(&mut self) -> Result<(), FsError> {
        self.layout = None;
        if let Some(volume) = self.volume.take() {
            volume.unmount().map_err(fs_error)?;
        }
        self.cache.borrow_mut().flush().map_err(|_| FsError::Io)?;
        self.volume = Some(Self::mount_volume(&self.cache, self.clock)?);
        Ok(())
    }
}

/// Sectors of the smallest volume [`format_fat32`] makes: FAT32 needs at
/// least 65,525 clusters (one 512-byte sector each here) plus its FATs.
pub const MIN_FAT32_SECTORS: u64 = 69_632;

/// Formats the device under `cache` as FAT32 with one sector per cluster
/// (so the smallest FAT32 volume is [`MIN_FAT32_SECTORS`] sectors), then
/// writes it back.
pub fn format_fat32<D: BlockDevice>(cache: SectorCache<D>) -> Result<SectorCache<D>, FsError> {
    let cache = Rc::new(RefCell::new(cache));
    let mut disk = Disk::new(cache.clone());
    let options = lamfat::FormatVolumeOptions::new()
        .fat_type(lamfat::FatType::Fat32)
        .bytes_per_cluster(512)
        .volume_label(*b"ARBOR      ");
    lamfat::format_volume(&mut disk, options).map_err(fs_error)?;
    drop(disk);
    let mut cache = Rc::try_unwrap(cache).map_err(|_| FsError::Io)?.into_inner();
    cache.flush().map_err(|_| FsError::Io)?;
    Ok(cache)
}

#[cfg(test)]
mod tests;
