//! The disk in memory as a [`BlockBackend`], made (and formatted) with a
//! checked size.

use arbor_sessions::block::BlockError;
use arbor_sessions::block_service::BlockBackend;
use arbor_sessions::file_system::{Backend, FsError, NormalPath, normalize};
use fat_fs::backend::{Clock, FatBackend, MIN_FAT32_SECTORS, format_fat32};
use fat_fs::cache::{BlockDevice, MemoryDevice, SectorCache};

/// Bytes per sector.
pub const SECTOR: usize = 512;
/// Largest disk ram_block makes (its quota bounds it further).
pub const MAX_SECTORS: u64 = 1 << 18;

/// Why the disk could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The size is zero, beyond [`MAX_SECTORS`], or too small for FAT32.
    BadSize,
    /// The heap could not hold it.
    OutOfMemory,
    /// Formatting failed.
    Format,
}

/// The disk.
pub struct RamDisk {
    device: MemoryDevice,
}

impl RamDisk {
    /// A zeroed disk of `sectors` sectors, formatted FAT32 if asked.
    pub fn new(sectors: u64, fat32: bool) -> Result<RamDisk, DiskError> {
        if sectors == 0 || sectors > MAX_SECTORS || (fat32 && sectors < MIN_FAT32_SECTORS) {
            return Err(DiskError::BadSize);
        }
        let len = sectors as usize * SECTOR;
        let mut bytes = alloc::vec::Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| DiskError::OutOfMemory)?;
        bytes.resize(len, 0);
        let device = MemoryDevice {
            bytes,
            block_size: SECTOR,
        };
        if !fat32 {
            return Ok(RamDisk { device });
        }
        let cache = format_fat32(SectorCache::new(device, 16)).map_err(|_| DiskError::Format)?;
        Ok(RamDisk {
            device: cache.into_device(),
        })
    }

    /// Writes `files` (path, content) onto the FAT volume, making their
    /// directories; timestamps from `clock`.
    pub fn put_files<'a>(
        &mut self,
        files: impl Iterator<Item = (&'a str, &'a [u8])>,
        clock: Clock,
    ) -> Result<(), FsError> {
        let device = core::mem::replace(
            &mut self.device,
            MemoryDevice {
                bytes: alloc::vec::Vec::new(),
                block_size: SECTOR,
            },
        );
        let mut fat = FatBackend::mount(SectorCache::new(device, 64), clock)?;
        let mut result = Ok(());
        for (path, content) in files {
            result = put_file(&mut fat, path, content);
            if result.is_err() {
                break;
            }
        }
        // The volume comes back even when a file failed.
        match fat.unmount() {
            Ok(cache) => self.device = cache.into_device(),
            Err(error) => return Err(error),
        }
        result
    }
}

fn put_file<D: BlockDevice>(
    fat: &mut FatBackend<D>,
    path: &str,
    content: &[u8],
) -> Result<(), FsError> {
    let path = normalize(path.as_bytes())?;
    let mut directory = NormalPath::root();
    let components: alloc::vec::Vec<&str> = path.components().collect();
    if let Some((_, directories)) = components.split_last() {
        for name in directories {
            let text = alloc::format!("{}/{name}", directory.as_str().trim_end_matches('/'));
            directory = normalize(text.as_bytes())?;
            match fat.mkdir(&directory) {
                Ok(()) | Err(FsError::Exists) => {}
                Err(error) => return Err(error),
            }
        }
    }
    let file = fat.open(&path, true)?;
    fat.truncate(&file, 0)?;
    fat.write(&file, 0, content).map(drop)
}

impl BlockBackend for RamDisk {
    fn block_size(&self) -> u32 {
        SECTOR as u32
    }

    fn block_count(&self) -> u64 {
        self.device.block_count()
    }

    fn read(&mut self, first: u64, out: &mut [u8]) -> Result<(), BlockError> {
        for (index, block) in out.chunks_mut(SECTOR).enumerate() {
            self.device
                .read_block(first + index as u64, block)
                .map_err(|_| BlockError::OutOfRange)?;
        }
        Ok(())
    }

    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), BlockError> {
        for (index, block) in data.chunks(SECTOR).enumerate() {
            self.device
                .write_block(first + index as u64, block)
                .map_err(|_| BlockError::OutOfRange)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_and_blocks_move() {
        assert!(matches!(RamDisk::new(0, false), Err(DiskError::BadSize)));
        assert!(matches!(RamDisk::new(100, true), Err(DiskError::BadSize)));
        assert!(matches!(
            RamDisk::new(MAX_SECTORS + 1, false),
            Err(DiskError::BadSize)
        ));
        let mut disk = RamDisk::new(8, false).unwrap();
        disk.write(6, &[7u8; 1024]).unwrap();
        let mut out = [0u8; 512];
        disk.read(7, &mut out).unwrap();
        assert_eq!(out, [7u8; 512]);
        assert_eq!(disk.read(8, &mut out), Err(BlockError::OutOfRange));
    }

    fn no_clock() -> u64 {
        0
    }

    #[test]
    fn files_are_put_on_the_volume() {
        let mut disk = RamDisk::new(MIN_FAT32_SECTORS, true).unwrap();
        let clock = Clock {
            now_seconds: no_clock,
        };
        let files = [("/logs/app.log", &b"started"[..]), ("/top.txt", &b"x"[..])];
        disk.put_files(files.into_iter(), clock).unwrap();
        assert_eq!(
            disk.put_files([("/top.txt/x", &b""[..])].into_iter(), clock),
            Err(FsError::NotDirectory)
        );
        let device = core::mem::replace(&mut disk.device, MemoryDevice::new(SECTOR, 1));
        let mut fat = FatBackend::mount(SectorCache::new(device, 8), clock).unwrap();
        let log = normalize(b"/logs/app.log").unwrap();
        let mut out = [0u8; 16];
        assert_eq!(fat.read(&log, 0, &mut out), Ok(7));
        assert_eq!(&out[..7], b"started");
    }

    #[test]
    fn a_formatted_disk_is_fat32() {
        let disk = RamDisk::new(MIN_FAT32_SECTORS, true).unwrap();
        // The boot sector's signature and the FAT32 file-system type.
        assert_eq!(&disk.device.bytes[510..512], &[0x55, 0xaa]);
        assert_eq!(&disk.device.bytes[82..90], b"FAT32   ");
    }
}
