//! files: runs its config's steps (list a directory, copy a file, append a
//! line to a log, ...) on a FileSystem session through the VFS
//! (`arbor_vfs`), logging each step's outcome. Exits 0 when every step
//! worked, 1 at the first failure (unless the config says to go on, for a
//! client that is meant to be refused).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use arbor_sessions::file_system::{FsError, Kind};
use arbor_sessions::{client, env, log};
use arbor_vfs::{Error, FileSystem, Read, Write};
use files::config::{Config, Step, pattern_byte};

arbor::entry!(run);

fn run(_argument: u64) {
    let config: Config = match env::config() {
        Ok(config) => config,
        Err(error) => {
            log!("config: {error}");
            return client::exit(1);
        }
    };
    let fs = match FileSystem::open("") {
        Ok(fs) => fs,
        Err(error) => {
            log!("FileSystem session: {error}");
            return client::exit(1);
        }
    };
    let mut failed = false;
    for step in &config.steps {
        if let Err(error) = perform(&fs, step) {
            log!("{step:?} failed: {error}");
            failed = true;
            if config.stop_on_error {
                break;
            }
        }
    }
    log!("done{}", if failed { " with failures" } else { "" });
    client::exit(i32::from(failed && config.stop_on_error));
}

fn perform(fs: &FileSystem, step: &Step) -> Result<(), Error> {
    match step {
        Step::Write { path, text } => {
            fs.write(path, text.as_bytes())?;
            log!("wrote {} bytes to {path}", text.len());
        }
        Step::Mkdir { path } => {
            fs.mkdir(path)?;
            log!("made directory {path}");
        }
        Step::List { path } => {
            log!("listing {path}:");
            for entry in fs.read_dir(path)? {
                let entry = entry?;
                match entry.stat.kind {
                    Kind::Directory => log!("  {}/", entry.name),
                    Kind::File => log!("  {} ({} bytes)", entry.name, entry.stat.size),
                }
            }
        }
        Step::Copy { from, to } => {
            let bytes = fs.copy(from, to)?;
            log!("copied {from} to {to} ({bytes} bytes)");
        }
        Step::Append { path, line } => {
            let mut file = fs.append(path)?;
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
            log!("appended to {path}: {line}");
        }
        Step::Read { path } => {
            let text = fs.read_to_string(path)?;
            log!("{path} holds {} bytes: {}", text.len(), text.trim_end());
        }
        Step::Fill { path, chunk } => {
            // Pieces of `chunk` bytes, then ever smaller ones, until not
            // even one byte fits: the file system is full to the byte.
            let mut piece = (*chunk).max(1) as usize;
            let bytes = vec![b'#'; piece];
            let mut file = fs.create(path)?;
            let mut total = 0u64;
            loop {
                match file.write_all(&bytes[..piece]) {
                    Ok(()) => total += piece as u64,
                    Err(Error::Fs(FsError::NoSpace)) if piece > 1 => piece /= 2,
                    Err(Error::Fs(FsError::NoSpace)) => {
                        log!("{path}: no space after {total} bytes");
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Step::Pattern { path, bytes } => {
            const PIECE: usize = 64 * 1024;
            let total = u64::from(*bytes);
            let mut piece = vec![0u8; PIECE];
            let mut file = fs.create(path)?;
            let mut done = 0u64;
            while done < total {
                let length = (total - done).min(PIECE as u64) as usize;
                for (offset, byte) in piece[..length].iter_mut().enumerate() {
                    *byte = pattern_byte(done + offset as u64);
                }
                file.write_all(&piece[..length])?;
                done += length as u64;
            }
            drop(file);
            let mut file = fs.open_file(path)?;
            let mut checked = 0u64;
            loop {
                let got = file.read(&mut piece)?;
                if got == 0 {
                    break;
                }
                if let Some(bad) = (0..got).find(|&i| piece[i] != pattern_byte(checked + i as u64))
                {
                    log!(
                        "{path}: byte {} differs from the pattern",
                        checked + bad as u64
                    );
                    return Err(Error::Fs(FsError::Io));
                }
                checked += got as u64;
            }
            if checked != total {
                log!("{path}: read back {checked} of {total} bytes");
                return Err(Error::Fs(FsError::Io));
            }
            log!("wrote {path}: {total} bytes of the pattern, read back and checked");
        }
        Step::Remove { path } => {
            fs.remove(path)?;
            log!("removed {path}");
        }
        Step::Rename { from, to } => {
            fs.rename(from, to)?;
            log!("renamed {from} to {to}");
        }
        Step::Sync => {
            fs.sync()?;
            log!("synced");
        }
    }
    Ok(())
}
