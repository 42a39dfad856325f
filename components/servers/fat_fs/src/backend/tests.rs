//! The FAT backend on an in-memory FAT32 volume, read back by lamfat on its
//! own (and by mtools, when the host has them).

extern crate std;

use super::*;
use crate::cache::MemoryDevice;
use arbor_sessions::file_system::{
    HEADER_SIZE, Handles, MAX_HANDLES, Policy, Request, encode_request, normalize, op, serve,
};
use std::vec::Vec;

fn path(text: &str) -> NormalPath {
    normalize(text.as_bytes()).unwrap()
}

/// 2025-06-01T12:00:00Z
fn june_2025() -> u64 {
    1_748_779_200
}

fn clock() -> Clock {
    Clock {
        now_seconds: june_2025,
    }
}

fn fresh_volume() -> FatBackend<MemoryDevice> {
    let device = MemoryDevice::new(512, MIN_FAT32_SECTORS);
    let cache = format_fat32(SectorCache::new(device, 32)).unwrap();
    FatBackend::mount(cache, clock()).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn fat32_with_long_names_round_trips_through_lamfat() {
    let mut fat = fresh_volume();
    assert!(fat.is_fat32());
    fat.mkdir(&path("/A directory with a long name")).unwrap();
    let file = fat
        .open(
            &path("/A directory with a long name/Ein langer Dateiname.txt"),
            true,
        )
        .unwrap();
    let data = pattern(300_000);
    assert_eq!(fat.write(&file, 0, &data), Ok(data.len()));
    let mut back = std::vec![0u8; 1000];
    assert_eq!(fat.read(&file, 299_500, &mut back), Ok(500));
    assert_eq!(&back[..500], &data[299_500..]);
    assert_eq!(fat.stat(&file).unwrap().size, 300_000);
    let entry = fat
        .entry(&path("/A directory with a long name"), 0)
        .unwrap()
        .unwrap();
    assert_eq!(entry.name, "Ein langer Dateiname.txt");
    assert_eq!(
        fat.entry(&path("/A directory with a long name"), 1),
        Ok(None)
    );
    assert_eq!(
        fat.mkdir(&path("/A directory with a long name")),
        Err(FsError::Exists)
    );
    assert_eq!(
        fat.remove(&path("/A directory with a long name")),
        Err(FsError::NotEmpty)
    );

    // lamfat alone, on the bytes the device holds after unmounting.
    let device = fat.unmount().unwrap().device().bytes.clone();
    let cache = Rc::new(RefCell::new(SectorCache::new(
        MemoryDevice {
            bytes: device.clone(),
            block_size: 512,
        },
        8,
    )));
    let volume = FileSystem::new(Disk::new(cache), FsOptions::new()).unwrap();
    let mut file = volume
        .root_dir()
        .open_file("A directory with a long name/Ein langer Dateiname.txt")
        .unwrap();
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        read.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(read, data);
    let entry = volume
        .root_dir()
        .iter()
        .map(Result::unwrap)
        .find(|e| e.file_name() == "A directory with a long name")
        .unwrap();
    // The timestamp came from the clock, not 1980.
    assert_eq!(entry.modified().date.year, 2025);
    drop(file);
    drop(volume);

    // mtools, when installed, sees the same bytes.
    let image = std::env::temp_dir().join(std::format!("fat_fs_test_{}.img", std::process::id()));
    std::fs::write(&image, &device).unwrap();
    let mtype = std::process::Command::new("mtype")
        .arg("-i")
        .arg(&image)
        .arg("::/A directory with a long name/Ein langer Dateiname.txt")
        .output();
    if let Ok(output) = mtype {
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout, data);
    }
    let fsck = std::process::Command::new("fsck.fat")
        .arg("-n")
        .arg(&image)
        .output();
    if let Ok(output) = fsck {
        assert!(
            output.status.success(),
            "{}",
            std::string::String::from_utf8_lossy(&output.stdout)
        );
    }
    let _ = std::fs::remove_file(&image);
}

#[test]
fn truncate_rename_remove_and_sparse_writes() {
    let mut fat = fresh_volume();
    let file = fat.open(&path("/f.bin"), true).unwrap();
    fat.write(&file, 10, b"x").unwrap();
    assert_eq!(fat.stat(&file).unwrap().size, 11);
    let mut out = [9u8; 11];
    fat.read(&file, 0, &mut out).unwrap();
    assert_eq!(&out[..10], &[0u8; 10]);
    fat.truncate(&file, 3).unwrap();
    assert_eq!(fat.stat(&file).unwrap().size, 3);
    fat.truncate(&file, 5000).unwrap();
    assert_eq!(fat.stat(&file).unwrap().size, 5000);
    fat.mkdir(&path("/d")).unwrap();
    fat.rename(&path("/f.bin"), &path("/d/g.bin")).unwrap();
    assert_eq!(fat.stat(&path("/f.bin")), Err(FsError::NotFound));
    assert_eq!(fat.stat(&path("/d/g.bin")).unwrap().size, 5000);
    assert_eq!(
        fat.rename(&path("/d"), &path("/d/inner")),
        Err(FsError::BadPath)
    );
    fat.remove(&path("/d/g.bin")).unwrap();
    fat.remove(&path("/d")).unwrap();
    assert_eq!(fat.entry(&NormalPath::root(), 0), Ok(None));
    assert_eq!(fat.open(&path("/nope"), false), Err(FsError::NotFound));
    fat.sync().unwrap();
    assert!(fat.open(&path("/after sync.txt"), true).is_ok());
}

/// The session loop over FAT with arbitrary requests: answers only.
#[test]
fn fuzz_requests_against_fat() {
    let mut fat = fresh_volume();
    let policy = Policy {
        root: NormalPath::root(),
        writable: true,
    };
    let mut handles = Handles::new(MAX_HANDLES);
    let mut state = 0x0123_4567_89ab_cdefu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const NAMES: [&str; 6] = [
        "/a",
        "/b.txt",
        "/a/c",
        "/a/long name d",
        "/..",
        "/a/../b.txt",
    ];
    for _ in 0..1500 {
        let name = NAMES[(next() % 6) as usize].as_bytes();
        let other = NAMES[(next() % 6) as usize].as_bytes();
        let handle = arbor_sessions::file_system::Handle((next() % 4) as u32);
        let data = std::vec![3u8; (next() % 2000) as usize];
        let position = if next().is_multiple_of(7) {
            next()
        } else {
            next() % 3000
        };
        let (opcode, request) = match next() % 10 {
            0 => (
                op::OPEN,
                Request::Open {
                    path: name,
                    create: true,
                    write: true,
                },
            ),
            1 => (op::CLOSE, Request::Close { handle }),
            2 => (
                op::READ,
                Request::Read {
                    handle,
                    position,
                    count: 200,
                },
            ),
            3 => (
                op::WRITE,
                Request::Write {
                    handle,
                    position,
                    data: &data,
                },
            ),
            4 => (
                op::TRUNCATE,
                Request::Truncate {
                    handle,
                    size: position % 10_000,
                },
            ),
            5 => (op::MKDIR, Request::Mkdir { path: name }),
            6 => (
                op::READDIR,
                Request::Readdir {
                    path: name,
                    index: next() % 3,
                },
            ),
            7 => (op::REMOVE, Request::Remove { path: name }),
            8 => (
                op::RENAME,
                Request::Rename {
                    from: name,
                    to: other,
                },
            ),
            _ => (op::SYNC, Request::Sync),
        };
        let mut packet = std::vec![0u8; HEADER_SIZE + 2200];
        encode_request(&request, &mut packet).unwrap();
        let _ = serve(&mut fat, &policy, &mut handles, opcode, &mut packet);
    }
    // Still a volume lamfat mounts.
    let cache = fat.unmount().unwrap();
    assert!(FatBackend::mount(cache, clock()).is_ok());
}

/// Reads through the kept layout (runs of clusters read straight from the
/// device) agree with the data at every position, including across two
/// fragments, and a write in between is seen by the next read.
#[test]
fn reads_by_layout_agree_with_the_data_and_see_later_writes() {
    let mut fat = fresh_volume();
    // Two files written in turns: each one's clusters come in fragments.
    let first = fat.open(&path("/first.bin"), true).unwrap();
    let second = fat.open(&path("/second.bin"), true).unwrap();
    let data = pattern(40_000);
    for at in (0..data.len()).step_by(10_000) {
        fat.write(&first, at as u64, &data[at..at + 10_000])
            .unwrap();
        fat.write(&second, at as u64, &data[at..at + 10_000])
            .unwrap();
    }
    for (position, len) in [
        (0, 40_000),
        (1, 513),
        (9_999, 2),
        (10_240, 20_000),
        (39_990, 100),
    ] {
        let mut out = std::vec![0u8; len];
        let read = fat.read(&first, position as u64, &mut out).unwrap();
        let expected = &data[position..(position + len).min(data.len())];
        assert_eq!(read, expected.len(), "at {position}");
        assert_eq!(&out[..read], expected, "at {position}");
    }
    let layout = fat.layout.as_ref().unwrap();
    assert!(layout.runs.len() >= 4, "{} runs", layout.runs.len());
    assert_eq!(fat.read(&first, 40_000, &mut [0u8; 8]), Ok(0));
    // A write drops the layout; the next read sees the new bytes.
    fat.write(&first, 20_000, b"changed").unwrap();
    assert!(fat.layout.is_none());
    let mut out = [0u8; 7];
    assert_eq!(fat.read(&first, 20_000, &mut out), Ok(7));
    assert_eq!(&out, b"changed");
    let mut other = std::vec![0u8; 40_000];
    assert_eq!(fat.read(&second, 0, &mut other), Ok(40_000));
    assert_eq!(other, data);
}

/// A file read in long chunks costs the device one request per chunk (the
/// most blocks it takes at once), after the first read learned the
/// layout: no per-sector requests, no walk of the cluster chain per read.
#[test]
fn long_reads_cost_one_device_request_per_chunk() {
    let mut fat = fresh_volume();
    let file = fat.open(&path("/big.bin"), true).unwrap();
    let data = pattern(1 << 20);
    for at in (0..data.len()).step_by(64 * 1024) {
        fat.write(&file, at as u64, &data[at..at + 64 * 1024])
            .unwrap();
    }
    fat.sync().unwrap();
    let mut chunk = std::vec![0u8; 32 * 1024];
    // The first read learns the layout (and reads the FAT).
    fat.read(&file, 0, &mut chunk).unwrap();
    let before = fat.cache.borrow().device_reads;
    for (index, at) in (32 * 1024..data.len()).step_by(32 * 1024).enumerate() {
        assert_eq!(fat.read(&file, at as u64, &mut chunk), Ok(chunk.len()));
        assert_eq!(&chunk[..], &data[at..at + chunk.len()]);
        assert_eq!(fat.cache.borrow().device_reads - before, index as u64 + 1);
    }
}
