//! web: an HTTP/1.1 server over a Socket session. It listens on its
//! configured port, serves GET and HEAD with keep-alive from its file
//! source (the files in its config ROM, until a FileSystem session exists)
//! and `/status`, one connection at a time in turn. Everything a client
//! sends goes through the host-tested parser in [`web::http`]; a bad
//! request gets its 4xx and the connection closes, and nothing a client
//! sends ends the server.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::client::{self, Timer};
use arbor_sessions::socket::{SocketClient, SocketError, SocketHandle};
use arbor_sessions::{env, log};
use web::config::Config;
use web::connection::{Body, Connection};
use web::files::{ConfigFiles, FileSource};

arbor::entry!(run);

/// Sockets this server asks quota for: the listener and a few connections.
const SOCKETS: u32 = 8;
/// Bytes moved per send or receive.
const CHUNK: usize = 4096;
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

fn serve() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("config: {error}"))?;
    let timer = Timer::open("").map_err(|error| alloc::format!("Timer session: {error}"))?;
    let started = timer.elapsed_ms().unwrap_or(0);
    let net = SocketClient::open("", SOCKETS)
        .map_err(|error| alloc::format!("Socket session: {error}"))?;
    let listener = net
        .listen(config.port, 4)
        .map_err(|error| alloc::format!("listen on port {}: {error}", config.port))?;
    log!(
        "serving {} files on port {}",
        config.files.len(),
        config.port
    );
    let idle_ms = config.idle_ms;
    let mut files = ConfigFiles::new(config.files);
    let mut open: Vec<Open> = Vec::new();
    let mut served = 0u64;
    let mut buffer = alloc::vec![0u8; CHUNK];
    loop {
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
            let keep = match step(&net, &mut open[index], &mut files, &mut buffer, &mut || {
                let uptime = timer.elapsed_ms().unwrap_or(0).saturating_sub(started);
                status_page(uptime, served)
            }) {
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

fn status_page(uptime_ms: u64, served: u64) -> String {
    alloc::format!(
        "web: up {uptime_ms} ms, {served} responses served\n\
         components: not available yet (init writes no state report; see issue 13)\n"
    )
}
