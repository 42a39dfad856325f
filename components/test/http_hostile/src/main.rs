//! http_hostile: attacks the web server through a Socket session, the way
//! a broken or malicious client would, and checks each attack ends in a
//! refusal: binary garbage and a 64 KiB header line get 400, `..` paths get
//! 400, `half_open` connections that send nothing are opened and dropped;
//! then an honest `GET /` must still get 200. Logs each outcome; exit 0
//! when every one was as expected.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::client;
use arbor_sessions::socket::{Endpoint, Ipv4, SocketClient, SocketError, SocketHandle};
use arbor_sessions::{env, log};
use serde::Deserialize;

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    server: (u8, u8, u8, u8),
    port: u16,
    /// Connections to open and leave silent before dropping them.
    half_open: u32,
    /// How long they stay silent.
    #[serde(default)]
    silent_ms: u64,
}

fn run(_argument: u64) {
    let code = match attack() {
        Ok(()) => 0,
        Err(reason) => {
            log!("{reason}");
            1
        }
    };
    client::exit(code);
}

fn attack() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("config: {error}"))?;
    let net = SocketClient::open("", config.half_open + 2)
        .map_err(|error| alloc::format!("Socket session: {error}"))?;
    let (a, b, c, d) = config.server;
    let remote = Endpoint {
        address: Ipv4([a, b, c, d]),
        port: config.port,
    };
    let mut garbage = Vec::new();
    let mut state = 0x1234_5678_u32;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        garbage.push(state as u8);
    }
    garbage.extend_from_slice(b"\r\n\r\n");
    expect(&net, remote, &garbage, 400, "binary garbage")?;
    let mut long_header = Vec::from(&b"GET / HTTP/1.1\r\nX-Long: "[..]);
    long_header.resize(64 * 1024, b'a');
    long_header.extend_from_slice(b"\r\n\r\n");
    expect(&net, remote, &long_header, 400, "64 KiB header")?;
    expect(
        &net,
        remote,
        b"GET /../../secret HTTP/1.1\r\n\r\n",
        400,
        "path escape",
    )?;
    expect(
        &net,
        remote,
        b"GET /%2e%2e/x HTTP/1.1\r\n\r\n",
        400,
        "encoded path escape",
    )?;
    expect(
        &net,
        remote,
        b"GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n",
        404,
        "missing file",
    )?;
    let mut silent = Vec::new();
    for _ in 0..config.half_open {
        silent.push(connect(&net, remote)?);
        // The stack's listener holds one pending connection at a time (no
        // accept queue yet): give the server a moment to accept it.
        for _ in 0..4 {
            net.wait(50);
        }
    }
    log!("{} half-open connections made", silent.len());
    // Stay silent past the server's idle limit (nothing signals meanwhile,
    // so each wait takes its full time).
    for _ in 0..config.silent_ms / 50 {
        net.wait(50);
    }
    for socket in silent {
        let _ = net.close(socket);
    }
    expect(
        &net,
        remote,
        b"GET / HTTP/1.1\r\n\r\n",
        200,
        "honest request",
    )?;
    // Keep-alive above: the server closes its side only after this client
    // closed, so the stack's figures are logged before this client exits.
    for _ in 0..20 {
        net.wait(50);
    }
    Ok(())
}

fn connect(net: &SocketClient, remote: Endpoint) -> Result<SocketHandle, String> {
    net.connect_established(remote)
        .map_err(|error| alloc::format!("connect to {remote}: {error}"))
}

/// Sends `request` on a new connection (as much as the server takes before
/// it answers), reads the answer's status and checks it is `status`.
fn expect(
    net: &SocketClient,
    remote: Endpoint,
    request: &[u8],
    status: u16,
    what: &str,
) -> Result<(), String> {
    let socket = connect(net, remote)?;
    let mut rest = request;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 2048];
    for _ in 0..2000 {
        if !rest.is_empty() {
            match net.send(socket, rest) {
                Ok(sent) => rest = &rest[sent..],
                Err(SocketError::WouldBlock) => {}
                // The server may answer and close before taking it all.
                Err(_) => rest = &[],
            }
        }
        match net.recv(socket, &mut buffer) {
            Ok(0) => break,
            Ok(length) => answer.extend_from_slice(&buffer[..length]),
            Err(SocketError::WouldBlock) => net.wait(10),
            Err(_) => break,
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let got = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok());
    if got == Some(status) {
        // Logged before closing: what the server does on the close comes after.
        log!("{what}: answered {status}");
        let _ = net.close(socket);
        Ok(())
    } else {
        let _ = net.close(socket);
        Err(alloc::format!(
            "{what}: expected {status}, got {:?}",
            text.lines().next()
        ))
    }
}
