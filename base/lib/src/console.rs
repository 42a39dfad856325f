//! Text output through the console capability ([`crate::abi::slot::CONSOLE`]):
//! [`print!`](crate::print) and [`println!`](crate::println). Output is
//! gathered in a small buffer and written with `ConsoleWrite`, so a short
//! line costs one system call. Without a console capability output is
//! dropped silently: printing is never a reason to fail.

use crate::abi::{CapSlot, slot};
use crate::{ipc, sys};
use core::fmt;

/// Bytes gathered before a console write.
pub const CHUNK: usize = 256;

/// Gathers bytes and hands them to a sink in chunks of at most [`CHUNK`].
pub struct ChunkBuffer<F: FnMut(&[u8])> {
    bytes: [u8; CHUNK],
    len: usize,
    sink: F,
}

impl<F: FnMut(&[u8])> ChunkBuffer<F> {
    /// An empty buffer that flushes into `sink`.
    pub fn new(sink: F) -> Self {
        ChunkBuffer {
            bytes: [0; CHUNK],
            len: 0,
            sink,
        }
    }

    /// Appends `data`, flushing each time the buffer fills.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = CHUNK - self.len;
            let take = room.min(data.len());
            self.bytes[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == CHUNK {
                self.flush();
            }
        }
    }

    /// Hands what is gathered to the sink.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8])> fmt::Write for ChunkBuffer<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Writes `bytes` to the console named by `console` (chunked to the payload size).
pub fn write_bytes(console: CapSlot, bytes: &[u8]) {
    for chunk in bytes.chunks(crate::abi::PAYLOAD_MAX) {
        let len = ipc::write_payload(chunk);
        if len > 0 {
            // Output is best effort; see the module comment.
            let _ = sys::console_write(console, len);
        }
    }
}

/// Formats `args` to the console. Used by [`print!`](crate::print).
pub fn print_args(args: fmt::Arguments<'_>) {
    let mut buffer = ChunkBuffer::new(|bytes: &[u8]| write_bytes(slot::CONSOLE, bytes));
    // Formatting into the buffer cannot fail.
    let _ = fmt::write(&mut buffer, args);
    buffer.flush();
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_args(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {
        $crate::console::print_args(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn chunks_never_exceed_the_limit_and_keep_every_byte() {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        {
            let mut buffer = ChunkBuffer::new(|bytes: &[u8]| chunks.push(bytes.to_vec()));
            buffer.push(&data[..10]);
            buffer.push(&data[10..]);
            buffer.flush();
            buffer.flush();
        }
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
        assert_eq!(chunks.concat(), data);
        assert_eq!(chunks.len(), 4);
    }
}
