//! bench_partner: bench_core's partner Pd, doing as little as possible per
//! round trip so that the figures measure the kernel. Its role comes with
//! the start argument (see `lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::{CapSlot, MsgInfo};
use arbor::println;
use arbor::sys::{self, Message};
use bench_partner::*;

arbor::entry!(serve);

fn serve(role: u64) {
    match role {
        ROLE_ECHO => echo(),
        ROLE_NOTIFY => notify(),
        other => println!("bench_partner: unknown role {other}"),
    }
}

fn echo() {
    let endpoint = CapSlot(ENDPOINT_SLOT);
    let mut reply = Message::default();
    loop {
        let message = match sys::reply_recv(endpoint, reply) {
            Ok((_badge, message)) => message,
            Err(error) => {
                println!("bench_partner: receive failed: {error}");
                return;
            }
        };
        let label = message.label();
        let len = if label == ECHO {
            message.info.payload_len() as u16
        } else {
            0
        };
        reply = Message {
            info: MsgInfo::new(label, len, 0),
            words: message.words,
        };
    }
}

fn notify() {
    let (ping, pong) = (CapSlot(PING_SLOT), CapSlot(PONG_SLOT));
    loop {
        if let Err(error) = sys::wait(ping) {
            println!("bench_partner: wait failed: {error}");
            return;
        }
        if let Err(error) = sys::signal(pong) {
            println!("bench_partner: signal failed: {error}");
            return;
        }
    }
}
