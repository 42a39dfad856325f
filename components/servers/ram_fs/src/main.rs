//! ram_fs: the FileSystem service in memory.
//!
//! It reads its config (capacity, per-label policies), announces
//! "FileSystem" and serves every session through the generic file-system
//! service (`arbor_sessions::fs_service`) over [`ram_fs::memory::MemoryFs`].
//! It never trusts a client: every packet is decoded and checked before it
//! reaches the file system, a session exists only for a label with a
//! policy, and each session's stream is paid from its donation. Out of
//! space is an error reply, never a crash.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use arbor_sessions::file_system::normalize;
use arbor_sessions::fs_service::{FsService, WAKE_BIT};
use arbor_sessions::server::Server;
use arbor_sessions::{client, env, log};
use ram_fs::config::Config;
use ram_fs::memory::MemoryFs;

arbor::entry!(run);

fn run(_argument: u64) {
    let config: Config = match env::config() {
        Ok(config) => config,
        Err(error) => {
            log!("config: {error}");
            return client::exit(1);
        }
    };
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
    log!(
        "{} bytes of capacity, {} policies",
        config.capacity,
        config.policies.len()
    );
    let mut memory = MemoryFs::new(config.capacity);
    for file in &config.preload {
        let loaded = normalize(file.path.as_bytes())
            .and_then(|path| memory.preload(&path, file.text.as_bytes()));
        if let Err(error) = loaded {
            log!("preloading {}: {error}", file.path);
            return client::exit(1);
        }
    }
    let service = FsService::new(memory, config.policies, wake);
    let error = server.serve(&["FileSystem"], service);
    log!("stopped: {error}");
    client::exit(1);
}
