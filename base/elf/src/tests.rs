//! Host tests: a real linker-made image, hand-built images for each rule,
//! and corruption sweeps that must never panic.

use super::*;

extern crate std;
use std::vec;
use std::vec::Vec;

/// A real image: `testdata/tiny.rs.txt` built with
/// `rustc --target x86_64-unknown-none -C relocation-model=static -C opt-level=s
/// -C panic=abort -C strip=symbols`; three PT_LOAD segments (R, RX, RW) plus
/// PHDR, GNU_EH_FRAME and GNU_STACK entries.
const TINY: &[u8] = include_bytes!("../testdata/tiny.elf");

/// One program-header entry for [`build`].
#[derive(Clone, Copy)]
struct Header {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    file_size: u64,
    mem_size: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, file_size: u64, mem_size: u64) -> Header {
    Header {
        kind: PT_LOAD,
        flags,
        offset,
        vaddr,
        file_size,
        mem_size,
    }
}

/// Builds an image: ELF header, program headers at 64, then `body` at 0x1000.
fn build(entry: u64, headers: &[Header], body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 0x1000];
    bytes[..4].copy_from_slice(&[0x7F, b'E', b'L', b'F']);
    bytes[4] = CLASS_64;
    bytes[5] = DATA_LITTLE_ENDIAN;
    bytes[6] = VERSION_CURRENT;
    bytes[16..18].copy_from_slice(&TYPE_EXEC.to_le_bytes());
    bytes[18..20].copy_from_slice(&MACHINE_X86_64.to_le_bytes());
    bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
    bytes[24..32].copy_from_slice(&entry.to_le_bytes());
    bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
    bytes[52..54].copy_from_slice(&64u16.to_le_bytes());
    bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
    bytes[56..58].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    for (i, h) in headers.iter().enumerate() {
        let at = 64 + i * 56;
        bytes[at..at + 4].copy_from_slice(&h.kind.to_le_bytes());
        bytes[at + 4..at + 8].copy_from_slice(&h.flags.to_le_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&h.offset.to_le_bytes());
        bytes[at + 16..at + 24].copy_from_slice(&h.vaddr.to_le_bytes());
        bytes[at + 24..at + 32].copy_from_slice(&h.vaddr.to_le_bytes());
        bytes[at + 32..at + 40].copy_from_slice(&h.file_size.to_le_bytes());
        bytes[at + 40..at + 48].copy_from_slice(&h.mem_size.to_le_bytes());
    }
    bytes.extend_from_slice(body);
    bytes
}

/// Code at 0x40_0000 (RX, 16 bytes from the file), data at 0x40_1000 (RW,
/// 8 bytes from the file, 0x2000 in memory).
fn simple() -> Vec<u8> {
    let body: Vec<u8> = (0..24u8).collect();
    build(
        0x40_0004,
        &[
            load(PF_R | PF_X, 0x1000, 0x40_0000, 16, 16),
            load(PF_R | PF_W, 0x1010, 0x40_1000, 8, 0x2000),
        ],
        &body,
    )
}

fn segment_error(bytes: &[u8]) -> Option<(usize, SegmentProblem)> {
    match Image::parse(bytes) {
        Err(ElfError::BadSegment { index, problem }) => Some((index, problem)),
        _ => None,
    }
}

#[test]
fn real_linker_output_parses() {
    let image = Image::parse(TINY).expect("tiny.elf is valid");
    assert_eq!(image.entry(), 0x2011bc);
    let segments = image.segments();
    assert_eq!(segments.len(), 3);
    let rights: Vec<(bool, bool, bool)> = segments
        .iter()
        .map(|s| {
            (
                s.permissions.read,
                s.permissions.write,
                s.permissions.execute,
            )
        })
        .collect();
    assert_eq!(
        rights,
        [
            (true, false, false),
            (true, false, true),
            (true, true, false)
        ]
    );
    assert_eq!(segments[1].vaddr, 0x2011bc);
    assert_eq!(segments[1].page_start(), 0x201000);
    assert_eq!(segments[1].offset_in_first_page(), 0x1bc);
    assert_eq!(segments[1].data.len(), 10);
    // The RW segment holds `COUNTER = 7`.
    assert_eq!(segments[2].data, &7u64.to_le_bytes());
    // Program-header indices count the PHDR entry too.
    assert_eq!(segments[0].index, 1);
}

#[test]
fn hand_built_image_parses_with_zero_fill() {
    let bytes = simple();
    let image = Image::parse(&bytes).expect("valid");
    assert_eq!(image.entry(), 0x40_0004);
    let [code, data] = image.segments() else {
        panic!("two segments expected");
    };
    assert_eq!(code.data, &(0..16u8).collect::<Vec<_>>()[..]);
    assert_eq!(data.data, &(16..24u8).collect::<Vec<_>>()[..]);
    assert_eq!(data.mem_size, 0x2000);
    assert_eq!(data.page_span(), 0x2000);
    assert!(data.permissions.write && !data.permissions.execute);
}

#[test]
fn header_fields_are_checked() {
    let good = simple();
    let mut bytes = good.clone();
    bytes[0] = 0;
    assert_eq!(Image::parse(&bytes), Err(ElfError::BadMagic));
    let mut bytes = good.clone();
    bytes[4] = 1;
    assert_eq!(Image::parse(&bytes), Err(ElfError::NotElf64 { class: 1 }));
    let mut bytes = good.clone();
    bytes[5] = 2;
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::NotLittleEndian { data: 2 })
    );
    let mut bytes = good.clone();
    bytes[16] = 3; // ET_DYN: a PIE
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::NotExecutable { file_type: 3 })
    );
    let mut bytes = good.clone();
    bytes[18] = 3; // i386
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::WrongMachine { machine: 3 })
    );
    let mut bytes = good.clone();
    bytes[54] = 32;
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::BadProgramHeaderSize { size: 32 })
    );
    let mut bytes = good.clone();
    bytes[56..58].copy_from_slice(&65u16.to_le_bytes());
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::TooManyProgramHeaders { count: 65 })
    );
    let mut bytes = good.clone();
    bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::ProgramHeadersOutOfBounds)
    );
    assert_eq!(
        Image::parse(&good[..40]),
        Err(ElfError::TooShort { len: 40 })
    );
}

#[test]
fn entry_must_be_in_code() {
    let mut bytes = simple();
    bytes[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::EntryOutsideCode { entry: 0x40_1000 })
    );
}

#[test]
fn segment_rules_name_the_segment() {
    let code = load(PF_R | PF_X, 0x1000, 0x40_0000, 16, 16);
    let cases: [(Header, SegmentProblem); 7] = [
        (
            load(PF_R, 0x1000, 0x50_0000, 0x100, 0x10),
            SegmentProblem::FileLargerThanMemory,
        ),
        (
            load(PF_R, 0x1000, 0x50_0000, 0x10_0000, 0x10_0000),
            SegmentProblem::FileRangeOutOfBounds,
        ),
        (
            load(PF_R, u64::MAX, 0x50_0000, 2, 2),
            SegmentProblem::FileRangeOutOfBounds,
        ),
        (
            load(PF_R, 0x1000, u64::MAX - 4, 0, 0x10),
            SegmentProblem::AddressOverflow,
        ),
        (
            load(PF_R, 0x1000, 0, 0, 0x10),
            SegmentProblem::OutsideUserRange,
        ),
        (
            load(PF_R, 0x1000, USER_END - 0x10, 0, 0x20),
            SegmentProblem::OutsideUserRange,
        ),
        (
            // Ends in the code segment's page although it starts below it.
            load(PF_R, 0x1000, 0x3F_F800, 0, 0x900),
            SegmentProblem::Overlaps { other: 0 },
        ),
    ];
    for (bad, problem) in cases {
        let bytes = build(0x40_0000, &[code, bad], &[0; 32]);
        assert_eq!(segment_error(&bytes), Some((1, problem)), "{problem:?}");
    }
    // Kernel-half addresses are outside user space too.
    let bytes = build(
        0xFFFF_8000_0000_0000,
        &[load(PF_R | PF_X, 0x1000, 0xFFFF_8000_0000_0000, 16, 16)],
        &[0; 16],
    );
    assert_eq!(
        segment_error(&bytes),
        Some((0, SegmentProblem::OutsideUserRange))
    );
}

#[test]
fn adjacent_pages_are_fine_and_empty_segments_skipped() {
    let bytes = build(
        0x40_0000,
        &[
            load(PF_R | PF_X, 0x1000, 0x40_0000, 16, 0x1000),
            load(PF_R, 0x1000, 0x40_0000, 0, 0), // empty: ignored
            load(PF_R | PF_W, 0x1000, 0x40_1000, 0, 8),
        ],
        &[0; 16],
    );
    let image = Image::parse(&bytes).expect("valid");
    assert_eq!(image.segments().len(), 2);
    assert_eq!(image.segments()[1].index, 2);
}

#[test]
fn segment_count_is_bounded_and_dynamic_images_refused() {
    let headers: Vec<Header> = (0..=MAX_SEGMENTS as u64)
        .map(|i| load(PF_R | PF_X, 0x1000, 0x40_0000 + i * 0x1000, 0, 1))
        .collect();
    let bytes = build(0x40_0000, &headers, &[]);
    assert_eq!(Image::parse(&bytes), Err(ElfError::TooManySegments));

    let mut interp = load(PF_R, 0x1000, 0x50_0000, 0, 0);
    interp.kind = PT_INTERP;
    let bytes = build(
        0x40_0000,
        &[load(PF_R | PF_X, 0x1000, 0x40_0000, 0, 16), interp],
        &[],
    );
    assert_eq!(
        Image::parse(&bytes),
        Err(ElfError::UnsupportedSegment {
            index: 1,
            segment_type: PT_INTERP
        })
    );
    let bytes = build(0x40_0000, &[], &[]);
    assert_eq!(Image::parse(&bytes), Err(ElfError::NoSegments));
}

/// Every accepted image must keep the guarantees the crate documents.
fn check_invariants(bytes: &[u8]) {
    if let Ok(image) = Image::parse(bytes) {
        for (i, s) in image.segments().iter().enumerate() {
            assert!(s.data.len() as u64 <= s.mem_size);
            assert!(s.page_start() >= USER_MIN && s.page_end() <= USER_END);
            for t in &image.segments()[i + 1..] {
                assert!(s.page_end() <= t.page_start() || t.page_end() <= s.page_start());
            }
        }
    }
}

#[test]
fn every_header_byte_flipped_never_panics() {
    for original in [TINY.to_vec(), simple()] {
        // The ELF header and the whole program-header table.
        let span = 64 + 56 * 6;
        for at in 0..span.min(original.len()) {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bytes = original.clone();
                bytes[at] ^= mask;
                check_invariants(&bytes);
            }
        }
    }
}

#[test]
fn truncations_and_pseudo_random_words_never_panic() {
    for len in 0..TINY.len() {
        check_invariants(&TINY[..len]);
    }
    // xorshift: overwrite random 8-byte words of the headers with random values.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = TINY.to_vec();
        let at = (next() % (64 + 56 * 6 - 8)) as usize;
        bytes[at..at + 8].copy_from_slice(&next().to_le_bytes());
        check_invariants(&bytes);
    }
}

#[test]
fn errors_display_their_subject() {
    let error = ElfError::BadSegment {
        index: 3,
        problem: SegmentProblem::Overlaps { other: 1 },
    };
    assert_eq!(
        std::format!("{error}"),
        "segment 3: shares a page with segment 1"
    );
}
