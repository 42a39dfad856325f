//! A writer for the "newc" cpio format Linux unpacks as its initramfs: each
//! entry a 110-byte ASCII header (magic `070701`, thirteen 8-digit hex
//! fields), its NUL-terminated name and its data, each padded to four bytes;
//! the archive ends with the entry `TRAILER!!!`. Times and owners are zero,
//! so the same inputs always give the same bytes.
#![forbid(unsafe_code)]

/// File type bits of `mode`.
const DIRECTORY: u32 = 0o040_000;
const CHARACTER_DEVICE: u32 = 0o020_000;
const REGULAR_FILE: u32 = 0o100_000;

/// The name that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// An archive being written.
#[derive(Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory with permissions `permissions` (e.g. 0o755).
    pub fn directory(&mut self, name: &str, permissions: u32) -> Result<(), String> {
        self.entry(name, DIRECTORY | permissions, (0, 0), &[])
    }

    /// A character device node `major:minor`.
    pub fn character_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), String> {
        self.entry(name, CHARACTER_DEVICE | permissions, (major, minor), &[])
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> Result<(), String> {
        self.entry(name, REGULAR_FILE | permissions, (0, 0), data)
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer's name is short and its data empty: it always fits.
        let _ = self.entry(TRAILER, 0, (0, 0), &[]);
        self.bytes
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        device: (u32, u32),
        data: &[u8],
    ) -> Result<(), String> {
        if name.is_empty() || name.starts_with('/') || name.contains('\0') {
            return Err(format!(
                "cpio entry name {name:?} must be relative, non-empty and without NUL"
            ));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| format!("cpio entry {name} is larger than 4 GiB"))?;
        let name_size = u32::try_from(name.len() + 1)
            .map_err(|_| format!("cpio entry name {name} is too long"))?;
        self.next_inode += 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            if mode & DIRECTORY == DIRECTORY { 2 } else { 1 },
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            device.0,
            device.1,
            name_size,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header field `index` (0 = inode) of the entry at `offset`.
    fn field(archive: &[u8], offset: usize, index: usize) -> u32 {
        let start = offset + 6 + index * 8;
        let text = std::str::from_utf8(&archive[start..start + 8]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    }

    #[test]
    fn entries_are_newc_with_padding_and_a_trailer() {
        let mut cpio = Cpio::new();
        cpio.directory("dev", 0o755).unwrap();
        cpio.character_device("dev/console", 0o600, 5, 1).unwrap();
        cpio.file("init", 0o755, b"hello").unwrap();
        let archive = cpio.finish();
        assert!(archive.len().is_multiple_of(4));
        // "dev": header 110 + name 4 = 114, padded to 116; no data.
        assert_eq!(&archive[..6], b"070701");
        assert_eq!(field(&archive, 0, 1), 0o040_755);
        assert_eq!(&archive[110..114], b"dev\0");
        // "dev/console" at 116: name 12 bytes → 238, padded to 240.
        assert_eq!(field(&archive, 116, 1), 0o020_600);
        assert_eq!((field(&archive, 116, 9), field(&archive, 116, 10)), (5, 1));
        // "init" at 240: header to 350, name 5 → 355, pad 356, data 5 → 361, pad 364.
        assert_eq!(field(&archive, 240, 6), 5);
        assert_eq!(&archive[356..361], b"hello");
        assert_eq!(&archive[364..370], b"070701");
        assert_eq!(&archive[364 + 110..364 + 120], b"TRAILER!!!");
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let build = || {
            let mut cpio = Cpio::new();
            cpio.file("init", 0o755, &[1, 2, 3]).unwrap();
            cpio.finish()
        };
        assert_eq!(build(), build());
    }

    #[test]
    fn absolute_or_empty_names_are_refused() {
        let mut cpio = Cpio::new();
        assert!(
            cpio.file("/init", 0o755, b"")
                .unwrap_err()
                .contains("relative")
        );
        assert!(cpio.file("", 0o755, b"").is_err());
        assert!(cpio.file("a\0b", 0o755, b"").is_err());
    }
}
