//! fat_fs: the FileSystem service on a FAT32 volume behind a Block session.
//!
//! At start it reads its config, opens the Block session (geometry from
//! the server's checked Info answer), claims the CMOS RTC's ports for
//! timestamps, mounts the volume through a sector cache, and serves every
//! FileSystem session through the generic file-system service
//! (`arbor_sessions::fs_service`) with per-label roots and rights. `sync`
//! requests unmount, write back and remount, leaving a clean volume.
//!
//! It never trusts a client (every packet is decoded and confined before
//! lamfat sees a path) nor its block server (its geometry is checked, and
//! a failing device is an I/O error, not a crash).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod block_client;
mod rtc;

use arbor_sessions::client::{self, open_session};
use arbor_sessions::fs_service::{FsService, WAKE_BIT};
use arbor_sessions::server::Server;
use arbor_sessions::services::{IoPortArgs, name};
use arbor_sessions::{env, log};
use block_client::BlockClient;
use fat_fs::backend::{Clock, FatBackend};
use fat_fs::cache::SectorCache;
use fat_fs::clock::calendar;
use fat_fs::config::Config;

arbor::entry!(run);

/// RAM donated for the IoPort session (core's price for the object).
const RESOURCE_SESSION_RAM: u64 = 4096;

fn run(_argument: u64) {
    if let Err(reason) = serve() {
        log!("stopped: {reason}");
    }
    client::exit(1);
}

fn serve() -> Result<(), alloc::string::String> {
    use alloc::format;
    let config: Config = env::config().map_err(|error| format!("config: {error}"))?;
    if config.rtc {
        let ports = open_session(
            name::IO_PORT,
            "rtc",
            &IoPortArgs {
                first: rtc::FIRST_PORT,
                count: rtc::PORT_COUNT,
            },
            RESOURCE_SESSION_RAM,
            None,
        )
        .map_err(|error| format!("IoPort session for the RTC: {error}"))?;
        rtc::enable(ports.cap).map_err(|error| format!("enabling the RTC ports: {error:?}"))?;
        let now = calendar(rtc::now_seconds());
        log!(
            "RTC says {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            now.year,
            now.month,
            now.day,
            now.hour,
            now.minute,
            now.second
        );
    }
    let block = BlockClient::open().map_err(|error| format!("Block session: {error}"))?;
    let info = block.info();
    let cache = SectorCache::new(block, config.cache_sectors as usize);
    let clock = Clock {
        now_seconds: rtc::now_seconds,
    };
    let backend = FatBackend::mount(cache, clock).map_err(|error| format!("mounting: {error}"))?;
    log!(
        "mounted {} on {} blocks of {} bytes ({}), cache of {} sectors",
        if backend.is_fat32() {
            "FAT32"
        } else {
            "a FAT volume"
        },
        info.block_count,
        info.block_size,
        if info.writable {
            "writable"
        } else {
            "read-only"
        },
        config.cache_sectors
    );
    let server = Server::new().map_err(|error| format!("server endpoint: {error}"))?;
    let wake = server
        .signal_cap(WAKE_BIT)
        .map_err(|error| format!("wake-up capability: {error}"))?;
    // A read-only device makes every session read-only, whatever the
    // policy says: a write must be refused when it is made, not accepted
    // into the cache and lost at the next sync.
    let mut policies = config.policies;
    if !info.writable {
        for rule in &mut policies {
            rule.writable = false;
        }
    }
    let service = FsService::new(backend, policies, wake);
    let error = server.serve(&["FileSystem"], service);
    Err(format!("serving: {error}"))
}
