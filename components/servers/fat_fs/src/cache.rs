//! A write-back sector cache over a [`BlockDevice`], and [`Disk`], the
//! byte-addressed, seekable view of it that lamfat reads and writes.
//!
//! The cache holds at most a fixed number of sectors; the least recently
//! used one is evicted (written back first if dirty). [`SectorCache::flush`]
//! writes every dirty sector back and asks the device to make them durable:
//! that is what `sync` and an orderly shutdown call. A device error is
//! reported as lamfat's I/O error (`()`), never a panic; positions past the
//! device's end are refused.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use arbor_sessions::file_system::ReadTarget;
use core::cell::RefCell;
use lamfat::{IoBase, Read, Seek, SeekFrom, Write};

/// Why a device operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceError;

/// What the cache needs from a block device (a Block session on the
/// target, memory in host tests).
pub trait BlockDevice {
    /// Bytes per block.
    fn block_size(&self) -> usize;
    /// Blocks on the device.
    fn block_count(&self) -> u64;
    /// Reads block `index` into `out` (one block).
    fn read_block(&mut self, index: u64, out: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `data` (one block) to block `index`.
    fn write_block(&mut self, index: u64, data: &[u8]) -> Result<(), DeviceError>;
    /// Makes every write durable.
    fn flush(&mut self) -> Result<(), DeviceError>;
    /// Most blocks [`BlockDevice::read_blocks`] moves in one request.
    fn max_blocks_per_read(&self) -> u64 {
        1
    }
    /// Reads `out.len() / block_size` whole blocks from `first` into
    /// `out` (at most [`BlockDevice::max_blocks_per_read`]); by default
    /// one block at a time.
    fn read_blocks(&mut self, first: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let size = self.block_size();
        for (index, block) in out.chunks_exact_mut(size).enumerate() {
            self.read_block(first + index as u64, block)?;
        }
        Ok(())
    }
    /// Reads `len / block_size` whole blocks from `first` (at most
    /// [`BlockDevice::max_blocks_per_read`]) to byte `at` of `target`; by
    /// default through a buffer of `len` bytes. A Block session hands them
    /// from its packet straight to the target, and may read ahead, but
    /// not past block `first + ahead` (the end of what the reader reads
    /// on from there: the file's run of clusters).
    fn read_blocks_to<T: ReadTarget + ?Sized>(
        &mut self,
        first: u64,
        len: usize,
        target: &mut T,
        at: usize,
        _ahead: u64,
    ) -> Result<(), DeviceError> {
        let mut buffer = Vec::new();
        buffer.try_reserve_exact(len).map_err(|_| DeviceError)?;
        buffer.resize(len, 0);
        self.read_blocks(first, &mut buffer)?;
        target.put(at, &buffer).map_err(|_| DeviceError)
    }
}

struct Cached {
    index: u64,
    data: Vec<u8>,
    dirty: bool,
    last_used: u64,
}

/// The cache.
pub struct SectorCache<D: BlockDevice> {
    device: D,
    sectors: Vec<Cached>,
    capacity: usize,
    clock: u64,
    /// Device reads and writes so far (for tests and statistics).
    pub device_reads: u64,
    /// Device writes so far.
    pub device_writes: u64,
}

impl<D: BlockDevice> SectorCache<D> {
    /// A cache of at most `capacity` (≥ 1) sectors over `device`.
    pub fn new(device: D, capacity: usize) -> Self {
        SectorCache {
            device,
            sectors: Vec::new(),
            capacity: capacity.max(1),
            clock: 0,
            device_reads: 0,
            device_writes: 0,
        }
    }

    /// Bytes on the device.
    pub fn len(&self) -> u64 {
        self.device
            .block_count()
            .saturating_mul(self.device.block_size() as u64)
    }

    /// Whether the device holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device (after a flush, to look at it).
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, written back first; dirty sectors that cannot be written
    /// are lost, so flush (and check) before when that matters.
    pub fn into_device(mut self) -> D {
        let _ = self.flush();
        self.device
    }

    /// The cached sector `index`, loaded (and something evicted) if needed.
    fn sector(&mut self, index: u64) -> Result<&mut Cached, DeviceError> {
        self.clock += 1;
        let now = self.clock;
        if let Some(position) = self.sectors.iter().position(|s| s.index == index) {
            let sector = &mut self.sectors[position];
            sector.last_used = now;
            return Ok(sector);
        }
        if index >= self.device.block_count() {
            return Err(DeviceError);
        }
        let slot = if self.sectors.len() < self.capacity {
            self.sectors.try_reserve(1).map_err(|_| DeviceError)?;
            let mut data = Vec::new();
            data.try_reserve_exact(self.device.block_size())
                .map_err(|_| DeviceError)?;
            data.resize(self.device.block_size(), 0);
            self.sectors.push(Cached {
                index: u64::MAX,
                data,
                dirty: false,
                last_used: 0,
            });
            self.sectors.len() - 1
        } else {
            let victim = (0..self.sectors.len())
                .min_by_key(|&i| self.sectors[i].last_used)
                .ok_or(DeviceError)?;
            let sector = &mut self.sectors[victim];
            if sector.dirty {
                self.device.write_block(sector.index, &sector.data)?;
                self.device_writes += 1;
                sector.dirty = false;
            }
            victim
        };
        let sector = &mut self.sectors[slot];
        // Marked unusable until the read succeeded.
        sector.index = u64::MAX;
        self.device.read_block(index, &mut sector.data)?;
        self.device_reads += 1;
        sector.index = index;
        sector.last_used = now;
        Ok(sector)
    }

    /// How many whole blocks from `first` (at most `wanted`) can be read
    /// straight from the device: none of them is in the cache (a cached
    /// one may be newer than the device's copy).
    fn uncached_run(&self, first: u64, wanted: u64) -> u64 {
        let wanted = wanted
            .min(self.device.max_blocks_per_read())
            .min(self.device.block_count().saturating_sub(first));
        self.sectors
            .iter()
            .filter(|s| s.index >= first && s.index < first + wanted)
            .map(|s| s.index - first)
            .min()
            .unwrap_or(wanted)
    }

    /// Copies bytes from `position` into `out`; how many (short at the end).
    /// Whole blocks that are not cached go from the device straight into
    /// `out`, as many per device request as it takes; only partial blocks
    /// and cached ones pass through the cache.
    pub fn read_at(&mut self, position: u64, out: &mut [u8]) -> Result<usize, DeviceError> {
        let len = out.len();
        self.read_to(position, len, out, 0, position.saturating_add(len as u64))
    }

    /// [`SectorCache::read_at`] of `len` bytes into `target` from its byte
    /// `at`: whole uncached blocks go from the device to the target
    /// without passing through memory of the cache's own. The device may
    /// read ahead up to byte `extent_end` (where the reader's consecutive
    /// bytes end; at least `position + len`).
    pub fn read_to<T: ReadTarget + ?Sized>(
        &mut self,
        position: u64,
        len: usize,
        target: &mut T,
        at: usize,
        extent_end: u64,
    ) -> Result<usize, DeviceError> {
        let block_size = self.device.block_size() as u64;
        let end = self.len();
        let mut done = 0;
        while done < len {
            let from = position + done as u64;
            if from >= end {
                break;
            }
            let offset = (from % block_size) as usize;
            let whole = ((len - done) as u64 / block_size).min((end - from) / block_size);
            if offset == 0 && whole > 0 {
                let run = self.uncached_run(from / block_size, whole);
                if run > 0 {
                    let bytes = (run * block_size) as usize;
                    let ahead = extent_end.saturating_sub(from) / block_size;
                    self.device.read_blocks_to(
                        from / block_size,
                        bytes,
                        target,
                        at + done,
                        ahead,
                    )?;
                    self.device_reads += 1;
                    done += bytes;
                    continue;
                }
            }
            let sector = self.sector(from / block_size)?;
            let take = (len - done).min(sector.data.len() - offset);
            target
                .put(at + done, &sector.data[offset..offset + take])
                .map_err(|_| DeviceError)?;
            done += take;
        }
        Ok(done)
    }

    /// Copies `data` to `position`; how many bytes (short at the end).
    pub fn write_at(&mut self, position: u64, data: &[u8]) -> Result<usize, DeviceError> {
        let block_size = self.device.block_size() as u64;
        let end = self.len();
        let mut done = 0;
        while done < data.len() {
            let at = position + done as u64;
            if at >= end {
                break;
            }
            let offset = (at % block_size) as usize;
            let sector = self.sector(at / block_size)?;
            let take = (data.len() - done).min(sector.data.len() - offset);
            sector.data[offset..offset + take].copy_from_slice(&data[done..done + take]);
            sector.dirty = true;
            done += take;
        }
        Ok(done)
    }

    /// Writes every dirty sector back, then flushes the device.
    pub fn flush(&mut self) -> Result<(), DeviceError> {
        for sector in self.sectors.iter_mut().filter(|s| s.dirty) {
            self.device.write_block(sector.index, &sector.data)?;
            self.device_writes += 1;
            sector.dirty = false;
        }
        self.device.flush()
    }
}

/// The cache as lamfat's storage: shared (so the backend can flush it
/// after lamfat let go), with its own position.
pub struct Disk<D: BlockDevice> {
    cache: Rc<RefCell<SectorCache<D>>>,
    position: u64,
}

impl<D: BlockDevice> Disk<D> {
    /// A view of `cache` at position 0.
    pub fn new(cache: Rc<RefCell<SectorCache<D>>>) -> Self {
        Disk { cache, position: 0 }
    }
}

impl<D: BlockDevice> IoBase for Disk<D> {
    type Error = ();
}

impl<D: BlockDevice> Read for Disk<D> {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, ()> {
        let read = self
            .cache
            .try_borrow_mut()
            .map_err(drop)?
            .read_at(self.position, buffer)
            .map_err(drop)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl<D: BlockDevice> Write for Disk<D> {
    fn write(&mut self, data: &[u8]) -> Result<usize, ()> {
        let written = self
            .cache
            .try_borrow_mut()
            .map_err(drop)?
            .write_at(self.position, data)
            .map_err(drop)?;
        self.position += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> Result<(), ()> {
        // Durability is `sync`'s business (SectorCache::flush); lamfat
        // flushes after every metadata change, which must stay cheap.
        Ok(())
    }
}

impl<D: BlockDevice> Seek for Disk<D> {
    fn seek(&mut self, position: SeekFrom) -> Result<u64, ()> {
        let len = self.cache.try_borrow().map_err(drop)?.len();
        let target = match position {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        match target {
            Some(at) if at <= len => {
                self.position = at;
                Ok(at)
            }
            _ => Err(()),
        }
    }
}

/// A device in memory: what ram_block serves and what host tests format.
pub struct MemoryDevice {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Bytes per block.
    pub block_size: usize,
}

impl MemoryDevice {
    /// `blocks` zeroed blocks of `block_size` bytes.
    pub fn new(block_size: usize, blocks: u64) -> Self {
        MemoryDevice {
            bytes: vec![0u8; block_size * blocks as usize],
            block_size,
        }
    }
}

impl BlockDevice for MemoryDevice {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_count(&self) -> u64 {
        (self.bytes.len() / self.block_size) as u64
    }

    fn read_block(&mut self, index: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(self.block_size))
            .ok_or(DeviceError)?;
        let block = self
            .bytes
            .get(start..start + self.block_size)
            .ok_or(DeviceError)?;
        out.get_mut(..self.block_size)
            .ok_or(DeviceError)?
            .copy_from_slice(block);
        Ok(())
    }

    fn write_block(&mut self, index: u64, data: &[u8]) -> Result<(), DeviceError> {
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(self.block_size))
            .ok_or(DeviceError)?;
        let block_size = self.block_size;
        self.bytes
            .get_mut(start..start + block_size)
            .ok_or(DeviceError)?
            .copy_from_slice(data.get(..block_size).ok_or(DeviceError)?);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn max_blocks_per_read(&self) -> u64 {
        64
    }

    fn read_blocks(&mut self, first: u64, out: &mut [u8]) -> Result<(), DeviceError> {
        let start = usize::try_from(first)
            .ok()
            .and_then(|i| i.checked_mul(self.block_size))
            .ok_or(DeviceError)?;
        let blocks = out.len() / self.block_size;
        if blocks as u64 > self.max_blocks_per_read() || !out.len().is_multiple_of(self.block_size)
        {
            return Err(DeviceError);
        }
        let source = start
            .checked_add(out.len())
            .and_then(|end| self.bytes.get(start..end))
            .ok_or(DeviceError)?;
        out.copy_from_slice(source);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_writes_back_on_eviction_and_flush() {
        let mut cache = SectorCache::new(MemoryDevice::new(512, 8), 2);
        assert_eq!(cache.write_at(510, b"abcd"), Ok(4));
        // Nothing reached the device yet.
        assert_eq!(cache.device().bytes[510], 0);
        let mut out = [0u8; 4];
        assert_eq!(cache.read_at(510, &mut out), Ok(4));
        assert_eq!(&out, b"abcd");
        // A third sector evicts the least recently used one, written back.
        cache.read_at(4 * 512, &mut out).unwrap();
        cache.read_at(5 * 512, &mut out).unwrap();
        assert_eq!(&cache.device().bytes[510..514], b"abcd");
        cache.write_at(7 * 512, b"z").unwrap();
        cache.flush().unwrap();
        assert_eq!(cache.device().bytes[7 * 512], b'z');
        // The end of the device is the end.
        assert_eq!(cache.write_at(8 * 512 - 1, b"xy"), Ok(1));
        assert_eq!(cache.read_at(8 * 512, &mut out), Ok(0));
    }

    #[test]
    fn reads_to_a_target_give_what_read_at_gives_at_its_offset() {
        let mut device = MemoryDevice::new(512, 40);
        for (i, byte) in device.bytes.iter_mut().enumerate() {
            *byte = (i % 253) as u8;
        }
        let mut cache = SectorCache::new(device, 4);
        cache.write_at(3 * 512 + 1, b"dirty").unwrap();
        let mut expected = alloc::vec![0u8; 10 * 512 + 3];
        assert_eq!(
            cache.read_at(2 * 512 + 5, &mut expected),
            Ok(expected.len())
        );
        // Into a bigger buffer, from byte 100 of it.
        let mut target = alloc::vec![0u8; 100 + expected.len()];
        assert_eq!(
            cache.read_to(2 * 512 + 5, expected.len(), &mut target[..], 100, 0),
            Ok(expected.len())
        );
        assert_eq!(&target[100..], &expected[..]);
        assert!(target[..100].iter().all(|byte| *byte == 0));
        // A target too small refuses: an error, not a panic.
        let mut small = [0u8; 16];
        assert_eq!(
            cache.read_to(0, 4 * 512, &mut small[..], 0, 0),
            Err(DeviceError)
        );
    }

    #[test]
    fn long_reads_go_around_the_cache_but_see_its_dirty_sectors() {
        let mut device = MemoryDevice::new(512, 300);
        for (i, byte) in device.bytes.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let mut cache = SectorCache::new(device, 4);
        // A dirty sector in the middle of a long read wins over the device.
        cache.write_at(100 * 512 + 7, b"new").unwrap();
        let mut out = alloc::vec![0u8; 200 * 512];
        assert_eq!(cache.read_at(10 * 512, &mut out), Ok(200 * 512));
        for (i, byte) in out.iter().enumerate() {
            let on_disk = 10 * 512 + i;
            let expected = match on_disk.checked_sub(100 * 512) {
                Some(7) => b'n',
                Some(8) => b'e',
                Some(9) => b'w',
                _ => (on_disk % 251) as u8,
            };
            assert_eq!(*byte, expected, "byte {on_disk}");
        }
        // 90 + 100 blocks around the cached one, in runs of at most 64,
        // plus the one through the cache: far fewer than 200 requests.
        assert!(
            cache.device_reads < 10,
            "{} device reads",
            cache.device_reads
        );
        // Unaligned and short reads, and the device's end.
        let mut odd = [0u8; 700];
        assert_eq!(cache.read_at(299 * 512 + 1, &mut odd), Ok(511));
        assert_eq!(odd[0], ((299 * 512 + 1) % 251) as u8);
    }

    #[test]
    fn seeking_stays_on_the_device() {
        let cache = Rc::new(RefCell::new(SectorCache::new(MemoryDevice::new(512, 2), 2)));
        let mut disk = Disk::new(cache);
        assert_eq!(disk.seek(SeekFrom::End(0)), Ok(1024));
        assert_eq!(disk.seek(SeekFrom::End(1)), Err(()));
        assert_eq!(disk.seek(SeekFrom::Current(-2000)), Err(()));
        assert_eq!(disk.seek(SeekFrom::Start(3)), Ok(3));
    }
}
