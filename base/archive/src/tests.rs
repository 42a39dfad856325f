//! Round trips and hostile inputs for the archive reader.

extern crate std;

use super::*;
use std::vec::Vec;

fn sample() -> Vec<u8> {
    let mut builder = ArchiveBuilder::new();
    builder.add("core", b"\x7fELF core").unwrap();
    builder.add("config", b"Scenario()").unwrap();
    builder.add("empty", b"").unwrap();
    builder.finish()
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn entry_field(index: usize, field: usize) -> usize {
    HEADER_SIZE + index * ENTRY_SIZE + NAME_CAPACITY + field * 8
}

#[test]
fn round_trip_keeps_names_data_and_order() {
    let bytes = sample();
    let archive = Archive::parse(&bytes).unwrap();
    let names: Vec<_> = archive.modules().map(|m| m.name).collect();
    assert_eq!(names, ["core", "config", "empty"]);
    assert_eq!(archive.find("config").unwrap().data, b"Scenario()");
    assert_eq!(archive.find("empty").unwrap().data, b"");
    assert!(archive.find("init").is_none());
    assert!(
        archive
            .modules()
            .all(|m| m.offset.is_multiple_of(MODULE_ALIGN))
    );
}

#[test]
fn empty_archive_is_valid() {
    let bytes = ArchiveBuilder::new().finish();
    let archive = Archive::parse(&bytes).unwrap();
    assert!(archive.is_empty());
}

#[test]
fn trailing_padding_is_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0xAA; 4096]);
    let archive = Archive::parse(&bytes).unwrap();
    assert_eq!(archive.size(), sample().len());
}

#[test]
fn short_input_is_refused() {
    assert_eq!(
        Archive::parse(b"ARBOR"),
        Err(ArchiveError::TooShort { len: 5 })
    );
}

#[test]
fn bad_magic_is_refused() {
    let mut bytes = sample();
    bytes[0] = b'X';
    assert!(matches!(
        Archive::parse(&bytes),
        Err(ArchiveError::BadMagic { .. })
    ));
}

#[test]
fn unknown_version_is_refused() {
    let mut bytes = sample();
    bytes[8] = 9;
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::UnsupportedVersion { found: 9 })
    );
}

#[test]
fn truncated_archive_is_refused() {
    let bytes = sample();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Archive::parse(cut),
        Err(ArchiveError::Truncated { .. })
    ));
}

#[test]
fn absurd_module_count_is_refused() {
    let mut bytes = sample();
    bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::TooManyModules { count: u32::MAX })
    );
}

#[test]
fn table_past_the_end_is_refused() {
    let mut bytes = sample();
    bytes[12..16].copy_from_slice(&200u32.to_le_bytes());
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::TableOutOfBounds { count: 200 })
    );
}

#[test]
fn module_beyond_the_end_is_refused() {
    let mut bytes = sample();
    put_u64(&mut bytes, entry_field(1, 1), 1 << 20);
    assert!(matches!(
        Archive::parse(&bytes),
        Err(ArchiveError::ModuleOutOfBounds { index: 1, .. })
    ));
}

#[test]
fn overflowing_size_is_refused_not_wrapped() {
    let mut bytes = sample();
    put_u64(&mut bytes, entry_field(0, 1), u64::MAX);
    assert!(matches!(
        Archive::parse(&bytes),
        Err(ArchiveError::ModuleOutOfBounds { index: 0, .. })
    ));
}

#[test]
fn overlapping_modules_are_refused() {
    let mut bytes = sample();
    let first = Archive::parse(&bytes).unwrap().module(0).unwrap().offset;
    put_u64(&mut bytes, entry_field(1, 0), first);
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::Overlap { index: 1 })
    );
}

#[test]
fn module_inside_the_table_is_refused() {
    let mut bytes = sample();
    put_u64(&mut bytes, entry_field(0, 0), 0);
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::Overlap { index: 0 })
    );
}

#[test]
fn misaligned_module_is_refused() {
    let mut bytes = sample();
    put_u64(&mut bytes, entry_field(2, 0), 4097);
    assert!(matches!(
        Archive::parse(&bytes),
        Err(ArchiveError::Misaligned {
            index: 2,
            offset: 4097
        })
    ));
}

#[test]
fn bad_names_are_refused() {
    let mut bytes = sample();
    let name = HEADER_SIZE + ENTRY_SIZE;
    bytes[name] = 0xFF; // not UTF-8
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::BadName { index: 1 })
    );

    let mut bytes = sample();
    bytes[name] = 0; // empty, with garbage after the NUL
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::BadName { index: 1 })
    );
}

#[test]
fn duplicate_names_are_refused() {
    let mut bytes = sample();
    let second = HEADER_SIZE + ENTRY_SIZE;
    bytes[second..second + NAME_CAPACITY].fill(0);
    bytes[second..second + 4].copy_from_slice(b"core");
    assert_eq!(
        Archive::parse(&bytes),
        Err(ArchiveError::DuplicateName { index: 1 })
    );
}

#[test]
fn builder_refuses_bad_names_and_duplicates() {
    let mut builder = ArchiveBuilder::new();
    assert_eq!(builder.add("", b"").err(), Some(BuildError::BadName));
    assert_eq!(
        builder.add(&"x".repeat(49), b"").err(),
        Some(BuildError::BadName)
    );
    builder.add("a", b"1").unwrap();
    assert_eq!(
        builder.add("a", b"2").err(),
        Some(BuildError::DuplicateName)
    );
}

#[test]
fn every_single_byte_corruption_is_caught_or_harmless() {
    // Flip each header and table byte: parsing must never panic, and any
    // archive it accepts must still only hand out in-bounds slices.
    let bytes = sample();
    let table_end = HEADER_SIZE + 3 * ENTRY_SIZE;
    for at in 0..table_end {
        for flip in [0x01, 0x80, 0xFF] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= flip;
            if let Ok(archive) = Archive::parse(&corrupt) {
                for module in archive.modules() {
                    assert!(module.offset as usize + module.data.len() <= corrupt.len());
                }
            }
        }
    }
}
