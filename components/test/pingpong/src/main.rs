//! pingpong: kernel_test's IPC partner. A server loop on the endpoint in
//! slot [`pingpong::ENDPOINT_SLOT`]; see the protocol in `lib.rs`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::{CapSlot, MsgInfo, NOTIFICATION_LABEL, ObjectKind, info};
use arbor::sys::{self, Message};
use arbor::{ipc, println};
use pingpong::*;

arbor::entry!(serve);

fn serve(_argument: u64) {
    let endpoint = CapSlot(ENDPOINT_SLOT);
    let receive_slot = CapSlot(RECEIVE_SLOT);
    let mut last_notification = 0;
    let mut reply = Message::default();
    // Offered for every receive: the buffer keeps it, and the slot is
    // emptied again after each TAKE_CAP.
    ipc::set_receive_slots(&[receive_slot]);
    loop {
        let message = match sys::reply_recv(endpoint, reply) {
            Ok((_badge, message)) => message,
            Err(error) => {
                println!("pingpong: receive failed: {error}");
                return;
            }
        };
        let words = message.words;
        reply = match message.label() {
            ECHO => Message::new(ECHO + 1, words.map(|w| w.wrapping_add(1))),
            UPPERCASE => {
                let mut bytes = [0u8; arbor::abi::PAYLOAD_MAX];
                let len = ipc::read_payload(message.info.payload_len(), &mut bytes);
                bytes[..len].make_ascii_uppercase();
                let len = ipc::write_payload(&bytes[..len]);
                Message {
                    info: MsgInfo::new(UPPERCASE, len as u16, 0),
                    words,
                }
            }
            TAKE_CAP => {
                let kind = sys::info(info::CAP_KIND, u64::from(RECEIVE_SLOT))
                    .map(|(kind, _)| kind)
                    .unwrap_or(0);
                if kind == ObjectKind::Notification as u64 {
                    let _ = sys::signal(receive_slot);
                }
                let _ = sys::delete(receive_slot);
                Message::new(TAKE_CAP, [kind, 0, 0, 0])
            }
            SEND_BACK => {
                if let Err(error) = sys::send(endpoint, Message::new(SENT_BACK, words)) {
                    println!("pingpong: send back failed: {error}");
                }
                // Nobody waits for a reply to a send; the empty reply is dropped.
                Message::default()
            }
            NOTIFICATION_LABEL => {
                last_notification |= words[0];
                Message::default()
            }
            LAST_NOTIFICATION => {
                let bits = core::mem::take(&mut last_notification);
                Message::new(LAST_NOTIFICATION, [bits, 0, 0, 0])
            }
            label => Message::new(label, [u64::MAX; 4]),
        };
    }
}
