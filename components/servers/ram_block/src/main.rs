//! ram_block: the Block service on a disk in its own RAM, formatted FAT32
//! at start, so that fat_fs runs without a PCI block device. Every request
//! is checked against the disk by the Block service before it is served
//! (`arbor_sessions::block_service`); the disk's size comes from the config
//! and is bounded by its quota.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use arbor_sessions::block_service::{BlockService, WAKE_BIT};
use arbor_sessions::server::Server;
use arbor_sessions::{client, env, log};
use fat_fs::backend::Clock;
use ram_block::config::Config;
use ram_block::disk::RamDisk;

arbor::entry!(run);

/// The initial files carry 1980-01-01: ram_block has no clock of its own.
fn no_clock() -> u64 {
    0
}

fn run(_argument: u64) {
    let config: Config = match env::config() {
        Ok(config) => config,
        Err(error) => {
            log!("config: {error}");
            return client::exit(1);
        }
    };
    let mut disk = match RamDisk::new(config.sectors, config.format_fat32) {
        Ok(disk) => disk,
        Err(error) => {
            log!("making a disk of {} sectors: {error:?}", config.sectors);
            return client::exit(1);
        }
    };
    if !config.format_fat32 && !config.files.is_empty() {
        log!("files can only be put on a FAT32 volume (format_fat32: true)");
        return client::exit(1);
    }
    let files = config
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.text.as_bytes()));
    if let Err(error) = disk.put_files(
        files,
        Clock {
            now_seconds: no_clock,
        },
    ) {
        log!("putting the configured files on the volume: {error}");
        return client::exit(1);
    }
    log!(
        "{} sectors of 512 bytes{}",
        config.sectors,
        if config.format_fat32 {
            ", formatted FAT32"
        } else {
            ""
        }
    );
    let server = match Server::new() {
        Ok(server) => server,
        Err(error) => {
            log!("server endpoint: {error}");
            return client::exit(1);
        }
    };
    let wake = match server.signal_cap(WAKE_BIT) {
        Ok(cap) => cap,
        Err(error) => {
            log!("wake-up capability: {error}");
            return client::exit(1);
        }
    };
    let error = server.serve(&["Block"], BlockService::new(disk, config.writable, wake));
    log!("stopped: {error}");
    client::exit(1);
}
