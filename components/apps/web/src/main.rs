//! web: an HTTP/1.1 server over a Socket session. It listens on its
//! configured port, serves GET and HEAD with keep-alive from a FileSystem
//! session (`source: FileSystem`) or the files in its config ROM, and
//! `/status` (its own figures and init's state report of the running
//! components, when InitState is routed to it), one connection at a time
//! in turn. Everything a client sends goes through the host-tested parser
//! in [`web::http`]; a bad request gets its 4xx and the connection closes,
//! and nothing a client sends ends the server.
//!
//! Whenever the last connection has gone, web logs whether its own quota
//! use (heap bytes in use, capability slots) is back to what it was when
//! it started serving: what clients cost must leave with them.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor::abi::{info, slot};
use arbor_sessions::client::{self, Timer};
use arbor_sessions::init_state::{InitState, render};
use arbor_sessions::socket::{SocketClient, SocketError, SocketHandle};
use arbor_sessions::{env, log};
use web::config::{Config, Source};
use web::connection::{Body, Connection};
use web::files::{ConfigFiles, FileSource};

mod fs_files;

arbor::entry!(run);

/// Sockets this server asks quota for: the listener and a few connections.
const SOCKETS: u32 = 8;
/// Bytes moved per send, receive or file read: the VFS session's largest
/// read ([`arbor_vfs::CHUNK`]), so a file goes out in as few FileSystem
/// requests as the session allows (each costs a round trip through the
/// file system whatever its size).
const CHUNK: usize = arbor_vfs::CHUNK;
/// Most connections served in turn.
const MAX_CONNECTIONS: usize = 6;

fn run(_argument: u64) {
    if let Err(reason) = serve() {
        log!("{reason}");
        client::exit(1);
    }
}

struct Open {
    socket: SocketHandle,
    connection: Connection,
    /// When it last moved a byte (ms since the timer started).
    active_ms: u64,
}

/// Where the files come from, as the config says.
enum Files {
    Config(ConfigFiles),
    FileSystem(fs_files::FsFiles),
}

impl Files {
    fn source(&mut self) -> &mut dyn FileSource {
        match self {
            Files::Config(files) => files,
            Files::FileSystem(files) => files,
        }
    }

    /// Releases what serving held (the open file).
    fn idle(&mut self) {
        if let Files::FileSystem(files) = self {
            files.close();
        }
    }
}

/// What web's own quota use is: heap bytes in live allocations and
/// capability slots used.
#[derive(Clone, Copy, PartialEq, Eq)]
struct QuotaUse {
    heap: u64,
    caps: u64,
}

impl QuotaUse {
    fn now() -> QuotaUse {
        QuotaUse {
            heap: arbor::heap::stats().map_or(0, |stats| stats.in_use),
            caps: arbor::sys::info(info::PD_CAPS, u64::from(slot::OWN_PD.0))
                .map_or(0, |(_, used)| used),
        }
    }
}

impl core::fmt::Display for QuotaUse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "heap {} bytes in use, {} caps", self.heap, self.caps)
    }
}

fn serve() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("config: {error}"))?;
    if let Some(problem) = config.problem() {
        return Err(alloc::format!("config: {problem}"));
    }
    let timer = Timer::open("").map_err(|error| alloc::format!("Timer session: {error}"))?;
    let started = timer.elapsed_ms().unwrap_or(0);
    let net = SocketClient::open("", SOCKETS)
        .map_err(|error| alloc::format!("Socket session: {error}"))?;
    let listener = net
        .listen(config.port, 4)
        .map_err(|error| alloc::format!("listen on port {}: {error}", config.port))?;
    let mut files = match config.source {
        Source::Config => {
            log!(
                "serving {} files from its config on port {}",
                config.files.len(),
                config.port
            );
            Files::Config(ConfigFiles::new(config.files))
        }
        Source::FileSystem => {
            let fs = arbor_vfs::FileSystem::open("")
                .map_err(|error| alloc::format!("FileSystem session: {error}"))?;
            log!(
                "serving files from a FileSystem session on port {}",
                config.port
            );
            // Held for the rest of the component's life.
            Files::FileSystem(fs_files::FsFiles::new(alloc::boxed::Box::leak(
                alloc::boxed::Box::new(fs),
            )))
        }
    };
    // The component list comes from init's state report, when the
    // scenario routes InitState to web; without the route /status shows
    // web's own figures only.
    let state = match InitState::open() {
        Ok(state) => Some(state),
        Err(error) => {
            log!("no InitState session ({error}): /status lists no components");
            None
        }
    };
    let idle_ms = config.idle_ms;
    // Room for every connection now, so that serving allocates nothing that outlives it.
    let mut open: Vec<Open> = Vec::with_capacity(MAX_CONNECTIONS);
    let mut buffer = alloc::vec![0u8; CHUNK];
    // One lookup and one read before the start value is taken: the first
    // request on a FileSystem stream sets up what every later one reuses.
    let mut probe = [0u8; 1];
    let _ = files.source().size("/index.html");
    let _ = files.source().read("/index.html", 0, &mut probe);
    files.idle();
    let start_use = QuotaUse::now();
    log!("quota at start: {start_use}");
    let mut served = 0u64;
    loop {
        let busy = !open.is_empty();
        let mut progress = false;
        if open.len() < MAX_CONNECTIONS {
            match net.accept(listener) {
                Ok((socket, remote)) => {
                    log!("connection from {remote}");
                    open.push(Open {
                        socket,
                        connection: Connection::new(),
                        active_ms: timer.elapsed_ms().unwrap_or(0),
                    });
                    progress = true;
                }
                Err(SocketError::WouldBlock) => {}
                Err(error) => log!("accept: {error}"),
            }
        }
        let mut index = 0;
        while index < open.len() {
            let keep = match step(
                &net,
                &mut open[index],
                files.source(),
                &mut buffer,
                &mut || {
                    let uptime = timer.elapsed_ms().unwrap_or(0).saturating_sub(started);
                    status_page(uptime, served, state.as_ref())
                },
            ) {
                Ok((moved, responses)) => {
                    progress |= moved;
                    served += responses;
                    let now = timer.elapsed_ms().unwrap_or(0);
                    if moved {
                        open[index].active_ms = now;
                    }
                    // Silent clients must not hold every slot.
                    let idle = now.saturating_sub(open[index].active_ms) > idle_ms;
                    if idle {
                        log!("idle connection dropped after {idle_ms} ms");
                    }
                    (!open[index].connection.is_closed() || moved) && !idle
                }
                Err(error) => {
                    if !matches!(error, SocketError::NotConnected) {
                        log!("connection dropped: {error}");
                    }
                    false
                }
            };
            if keep {
                index += 1;
            } else {
                let _ = net.close(open[index].socket);
                open.swap_remove(index);
            }
        }
        if busy && open.is_empty() {
            files.idle();
            let now = QuotaUse::now();
            if now == start_use {
                log!("quota back to its start value: {now}");
            } else {
                log!("quota differs from its start value: {now} (at start: {start_use})");
            }
        }
        if !progress {
            net.wait(50);
        }
    }
}

/// One turn of one connection: read what waits, answer complete requests.
/// Whether anything moved, and how many responses went out.
fn step(
    net: &SocketClient,
    open: &mut Open,
    files: &mut dyn FileSource,
    buffer: &mut [u8],
    status_page: &mut dyn FnMut() -> String,
) -> Result<(bool, u64), SocketError> {
    let mut moved = false;
    let room = open.connection.receive_room().min(buffer.len());
    if room > 0 {
        match net.recv(open.socket, &mut buffer[..room]) {
            Ok(0) => return Err(SocketError::NotConnected),
            Ok(length) => {
                open.connection.received(&buffer[..length]);
                moved = true;
            }
            Err(SocketError::WouldBlock) => {}
            Err(error) => return Err(error),
        }
    }
    let mut responses = 0;
    while let Some(response) = open.connection.next_response(files, status_page) {
        if response.status >= 400 {
            log!("answered {}", response.status);
        }
        send_all(net, open.socket, response.head.as_bytes())?;
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => send_all(net, open.socket, &bytes)?,
            Body::File { path, length } => {
                let mut offset = 0;
                while offset < length {
                    let want = buffer.len().min((length - offset) as usize);
                    let count = files
                        .read(&path, offset, &mut buffer[..want])
                        .map_err(|_| SocketError::NotConnected)?;
                    if count == 0 {
                        return Err(SocketError::NotConnected);
                    }
                    send_all(net, open.socket, &buffer[..count])?;
                    offset += count as u64;
                }
            }
        }
        responses += 1;
        moved = true;
    }
    Ok((moved, responses))
}

fn send_all(net: &SocketClient, socket: SocketHandle, mut bytes: &[u8]) -> Result<(), SocketError> {
    while !bytes.is_empty() {
        match net.send(socket, bytes) {
            Ok(sent) => bytes = &bytes[sent..],
            Err(SocketError::WouldBlock) => net.wait(20),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The `/status` body: web's own figures, then init's report of the
/// components it runs (names, states, quotas, use, uptime).
fn status_page(uptime_ms: u64, served: u64, state: Option<&InitState>) -> String {
    let components = match state.map(InitState::report) {
        Some(Ok(report)) => render(&report),
        Some(Err(error)) => {
            alloc::format!("components: init's report could not be read ({error})\n")
        }
        None => String::from("components: not shown (no InitState route to web)\n"),
    };
    alloc::format!("web: up {uptime_ms} ms, {served} responses served\n{components}")
}
