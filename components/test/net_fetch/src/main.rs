//! net_fetch: a Socket session client for tests. With `forbidden_port` it
//! first tries to listen there and expects the stack's policy to refuse;
//! then it connects to `server`, and over one keep-alive connection fetches
//! `/`, a generated file whose checksum it recomputes
//! ([`web::files::pattern_byte`]) and `/status`, logging each result. Exit
//! 0 when everything matched, 1 with the reason otherwise.
//!
//! With `udp` it tests UDP instead: `Echo` answers every datagram on a port
//! to its sender; `Probe` first makes the stack refuse a bind its policy
//! does not allow, an oversized datagram and a receive buffer too short for
//! the waiting datagram (which must stay queued), then sends datagrams of
//! many sizes to an echo server and checks every echoed byte.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::client;
use arbor_sessions::socket::{
    Endpoint, Ipv4, MAX_DATAGRAM_LEN, SocketClient, SocketError, SocketHandle, SocketRequest,
    WindowRange,
};
use arbor_sessions::{env, log};
use serde::Deserialize;
use web::files::{CHECKSUM_START, checksum, pattern_byte};

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The server to fetch from; without one, only the policy check runs.
    #[serde(default)]
    server: Option<(u8, u8, u8, u8)>,
    #[serde(default = "default_port")]
    port: u16,
    /// A generated file to fetch and check: path and size.
    #[serde(default)]
    pattern: (String, u64),
    /// A port policy does not let this client listen on.
    #[serde(default)]
    forbidden_port: Option<u16>,
    /// Milliseconds to wait before anything else (to let a server start).
    #[serde(default)]
    delay_ms: u64,
    /// A UDP test instead of the HTTP fetch.
    #[serde(default)]
    udp: Option<Udp>,
}

/// What to do over UDP.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum Udp {
    /// Answer every datagram on `port` to its sender, for good.
    Echo { port: u16 },
    /// Check refusals, then send `count` datagrams to the echo server at
    /// `server:port` and check every echoed byte.
    Probe {
        server: (u8, u8, u8, u8),
        port: u16,
        count: u32,
        /// A port policy does not let this client bind.
        forbidden_port: u16,
    },
}

fn default_port() -> u16 {
    80
}

fn run(_argument: u64) {
    let code = match fetch() {
        Ok(()) => 0,
        Err(reason) => {
            log!("{reason}");
            1
        }
    };
    client::exit(code);
}

fn fetch() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("config: {error}"))?;
    let net =
        SocketClient::open("", 4).map_err(|error| alloc::format!("Socket session: {error}"))?;
    // Nothing signals a session without sockets: this waits the full time.
    // (A timeout of 0 would mean no timeout at all.)
    if config.delay_ms > 0 {
        net.wait(config.delay_ms);
    }
    if let Some(port) = config.forbidden_port {
        match net.listen(port, 1) {
            Err(error @ SocketError::PortNotAllowed { .. }) => {
                log!("listen on port {port} refused: {error}")
            }
            Ok(_) => return Err(alloc::format!("listen on port {port} was allowed")),
            Err(error) => return Err(alloc::format!("listen on port {port}: {error}")),
        }
    }
    match config.udp {
        Some(Udp::Echo { port }) => return udp_echo(&net, port),
        Some(Udp::Probe {
            server: (a, b, c, d),
            port,
            count,
            forbidden_port,
        }) => {
            let remote = Endpoint {
                address: Ipv4([a, b, c, d]),
                port,
            };
            return udp_probe(&net, remote, count, forbidden_port);
        }
        None => {}
    }
    let Some((a, b, c, d)) = config.server else {
        return Ok(());
    };
    let remote = Endpoint {
        address: Ipv4([a, b, c, d]),
        port: config.port,
    };
    let socket = connect(&net, remote)?;
    log!("connected to {remote}");
    let mut reader = Reader {
        net: &net,
        socket,
        pending: Vec::new(),
    };
    let (status, body) = reader.get("/", true, |_| {})?;
    log!("GET / -> {status}, {} bytes", body);
    let (path, size) = &config.pattern;
    let mut hash = CHECKSUM_START;
    let (status, length) = reader.get(path, true, |bytes| hash = checksum(hash, bytes))?;
    let mut expected = CHECKSUM_START;
    let mut chunk = [0u8; 1024];
    let mut offset = 0;
    while offset < *size {
        let count = chunk.len().min((size - offset) as usize);
        for (at, byte) in chunk[..count].iter_mut().enumerate() {
            *byte = pattern_byte(offset + at as u64);
        }
        expected = checksum(expected, &chunk[..count]);
        offset += count as u64;
    }
    if status != 200 || length != *size || hash != expected {
        return Err(alloc::format!(
            "GET {path} -> {status}, {length} bytes, checksum {hash:016x} (expected {size} bytes, {expected:016x})"
        ));
    }
    log!("GET {path} -> {status}, {length} bytes, checksum {hash:016x} ok");
    let mut text = Vec::new();
    let (status, _) = reader.get("/status", false, |bytes| text.extend_from_slice(bytes))?;
    let text = String::from_utf8_lossy(&text);
    log!(
        "GET /status -> {status}: {}",
        text.lines().next().unwrap_or("")
    );
    let _ = net.close(socket);
    Ok(())
}

fn connect(net: &SocketClient, remote: Endpoint) -> Result<SocketHandle, String> {
    net.connect_established(remote)
        .map_err(|error| alloc::format!("connect to {remote}: {error}"))
}

struct Reader<'a> {
    net: &'a SocketClient,
    socket: SocketHandle,
    pending: Vec<u8>,
}

impl Reader<'_> {
    fn more(&mut self) -> Result<(), String> {
        let mut buffer = [0u8; 4096];
        for _ in 0..400 {
            match self.net.recv(self.socket, &mut buffer) {
                Ok(0) => return Err(String::from("connection closed early")),
                Ok(length) => {
                    self.pending.extend_from_slice(&buffer[..length]);
                    return Ok(());
                }
                Err(SocketError::WouldBlock) => self.net.wait(50),
                Err(error) => return Err(alloc::format!("recv: {error}")),
            }
        }
        Err(String::from("recv: timed out"))
    }

    /// One GET; the status and body length, the body going to `sink`.
    fn get(
        &mut self,
        path: &str,
        keep_alive: bool,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(u16, u64), String> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let request = alloc::format!(
            "GET {path} HTTP/1.1\r\nHost: arbor\r\nConnection: {connection}\r\n\r\n"
        );
        let mut bytes = request.as_bytes();
        while !bytes.is_empty() {
            match self.net.send(self.socket, bytes) {
                Ok(sent) => bytes = &bytes[sent..],
                Err(SocketError::WouldBlock) => self.net.wait(20),
                Err(error) => return Err(alloc::format!("send: {error}")),
            }
        }
        let head_end = loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.more()?;
        };
        let head = String::from_utf8_lossy(&self.pending[..head_end]).into_owned();
        self.pending.drain(..head_end);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| alloc::format!("bad status line in {head:?}"))?;
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .ok_or_else(|| alloc::format!("no Content-Length in {head:?}"))?;
        let mut remaining = length;
        while remaining > 0 {
            if self.pending.is_empty() {
                self.more()?;
            }
            let take = (remaining as usize).min(self.pending.len());
            sink(&self.pending[..take]);
            self.pending.drain(..take);
            remaining -= take as u64;
        }
        Ok((status, length))
    }
}

fn udp_echo(net: &SocketClient, port: u16) -> Result<(), String> {
    let socket = net
        .bind(port)
        .map_err(|error| alloc::format!("bind to UDP port {port}: {error}"))?;
    log!("UDP echo on port {port}");
    let mut buffer = [0u8; MAX_DATAGRAM_LEN];
    let mut echoed: u64 = 0;
    loop {
        match net.recv_from(socket, &mut buffer) {
            Ok((length, remote)) => {
                send_datagram(net, socket, remote, &buffer[..length])?;
                echoed += 1;
                if echoed == 1 {
                    log!("first datagram from {remote}, {length} bytes, echoed");
                }
            }
            Err(SocketError::WouldBlock) => net.wait(100),
            Err(error) => return Err(alloc::format!("recv_from: {error}")),
        }
    }
}

fn send_datagram(
    net: &SocketClient,
    socket: SocketHandle,
    remote: Endpoint,
    bytes: &[u8],
) -> Result<(), String> {
    for _ in 0..100 {
        match net.send_to(socket, remote, bytes) {
            Ok(()) => return Ok(()),
            Err(SocketError::WouldBlock) => net.wait(20),
            Err(error) => return Err(alloc::format!("send_to {remote}: {error}")),
        }
    }
    Err(alloc::format!(
        "send_to {remote}: the send buffer stayed full"
    ))
}

/// The `index`-th probe datagram: sizes over the whole allowed range.
fn probe_datagram(index: u32) -> Vec<u8> {
    let length = 1 + (index as usize * 173) % MAX_DATAGRAM_LEN;
    (0..length)
        .map(|at| (index as usize).wrapping_mul(31).wrapping_add(at) as u8)
        .collect()
}

fn udp_probe(
    net: &SocketClient,
    remote: Endpoint,
    count: u32,
    forbidden_port: u16,
) -> Result<(), String> {
    match net.bind(forbidden_port) {
        Err(error @ SocketError::PortNotAllowed { .. }) => {
            log!("bind to UDP port {forbidden_port} refused: {error}")
        }
        Ok(_) => return Err(alloc::format!("bind to {forbidden_port} was allowed")),
        Err(error) => return Err(alloc::format!("bind to {forbidden_port}: {error}")),
    }
    let socket = net
        .bind(0)
        .map_err(|error| alloc::format!("bind to an ephemeral port: {error}"))?;
    // Past the client library's own check, straight to the stack.
    let oversized = SocketRequest::SendTo {
        socket,
        remote,
        data: WindowRange {
            offset: 0,
            length: MAX_DATAGRAM_LEN as u32 + 1,
        },
    };
    match net.request(oversized) {
        Err(error @ SocketError::DatagramLength { .. }) => {
            log!("oversized datagram refused: {error}")
        }
        other => return Err(alloc::format!("oversized datagram: {other:?}")),
    }
    let mut buffer = [0u8; MAX_DATAGRAM_LEN];
    for index in 0..count {
        let datagram = probe_datagram(index);
        let mut answered = false;
        // Each try waits up to a second (the first waits on ARP, and the
        // wire may drop).
        'tries: for _ in 0..5 {
            send_datagram(net, socket, remote, &datagram)?;
            for _ in 0..20 {
                match net.recv_from(socket, &mut buffer) {
                    Ok((length, from)) => {
                        if from != remote || buffer[..length] != datagram[..] {
                            return Err(alloc::format!(
                                "datagram {index}: {length} bytes from {from} differ from the {} sent",
                                datagram.len()
                            ));
                        }
                        answered = true;
                        break 'tries;
                    }
                    Err(SocketError::WouldBlock) => net.wait(50),
                    Err(error) => return Err(alloc::format!("recv_from: {error}")),
                }
            }
        }
        if !answered {
            return Err(alloc::format!("datagram {index}: no echo"));
        }
    }
    log!(
        "UDP: {count} datagrams of 1..={MAX_DATAGRAM_LEN} bytes echoed by {remote}, every byte checked"
    );
    // A receive buffer too short for the waiting datagram: refused, and
    // the datagram stays for a big enough one.
    let long = probe_datagram(5);
    send_datagram(net, socket, remote, &long)?;
    let mut short = [0u8; 100];
    let mut refused = false;
    for _ in 0..40 {
        match net.recv_from(socket, &mut short) {
            Err(error @ SocketError::DatagramLength { .. }) => {
                log!("short receive buffer refused: {error}");
                refused = true;
                break;
            }
            Err(SocketError::WouldBlock) => net.wait(50),
            other => return Err(alloc::format!("short receive buffer: {other:?}")),
        }
    }
    let kept = refused
        && matches!(net.recv_from(socket, &mut buffer), Ok((length, _)) if buffer[..length] == long[..]);
    if !kept {
        return Err(String::from(
            "the datagram a short buffer was refused for is gone",
        ));
    }
    log!(
        "the datagram stayed queued and arrived whole ({} bytes)",
        long.len()
    );
    net.close(socket)
        .map_err(|error| alloc::format!("close: {error}"))?;
    Ok(())
}
