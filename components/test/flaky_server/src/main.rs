//! flaky_server: provides the "Flaky" service — a request carrying a number
//! is answered with that number plus one — and dereferences null after
//! `crash_after` requests, so scenarios can show a server dying, init
//! restarting it, and its clients reconnecting.
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::{ObjectKind, Rights, slot};
use arbor::{slots, sys};
use arbor_sessions::client::{self, Endpoint};
use arbor_sessions::parent::{ROOT_BADGE, RootReply, RootRequest};
use arbor_sessions::{Interface, SessionError, decode, env, log};
use serde::Deserialize;

arbor::entry!(run);

/// The service's name.
pub const SERVICE: &str = "Flaky";
/// RAM one session costs.
const SESSION_RAM: u64 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Requests answered before the crash (0 = never crash).
    crash_after: u64,
}

fn run(_argument: u64) {
    let crash_after = env::config::<Config>().map_or(0, |c| c.crash_after);
    // Every session this server needs (here: its Log) must be open before it
    // announces: init calls a server's root synchronously, so a server that
    // asks init for something after announcing can deadlock with it.
    log!("serving {SERVICE}, crashing after {crash_after} requests");
    let (Ok(endpoint), Ok(root)) = (slots::allocate(), slots::allocate()) else {
        return;
    };
    if sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0).is_err()
        || sys::derive(
            endpoint,
            root,
            Rights::WRITE.union(Rights::GRANT),
            ROOT_BADGE,
        )
        .is_err()
        || client::announce(SERVICE, root).is_err()
    {
        log!("cannot announce {SERVICE}");
        return;
    }
    let mut server = Endpoint::new(endpoint);
    let mut next_badge = 1;
    let mut answered = 0;
    loop {
        let Ok(incoming) = server.next(None) else {
            return;
        };
        if incoming.badge.0 == ROOT_BADGE {
            let reply = match decode::<RootRequest<'_>>(incoming.bytes()) {
                Ok(RootRequest::Create { label, ram, .. }) if ram >= SESSION_RAM => {
                    match slots::allocate() {
                        Ok(cap)
                            if sys::derive(
                                endpoint,
                                cap,
                                Rights::WRITE.union(Rights::GRANT),
                                next_badge,
                            )
                            .is_ok() =>
                        {
                            log!("session {next_badge} for \"{label}\"");
                            server.set_reply(&RootReply::Created { badge: next_badge }, Some(cap));
                            next_badge += 1;
                            continue;
                        }
                        _ => RootReply::Error(SessionError::Unavailable),
                    }
                }
                Ok(RootRequest::Create { ram, .. }) => {
                    RootReply::Error(SessionError::InsufficientQuota {
                        needed: SESSION_RAM - ram,
                    })
                }
                Ok(RootRequest::Upgrade { .. }) => RootReply::Done { ram: 0 },
                Ok(RootRequest::Close { .. }) => RootReply::Done { ram: SESSION_RAM },
                Err(error) => RootReply::Error(error),
            };
            server.set_reply(&reply, None);
            continue;
        }
        match (incoming.interface, decode::<u64>(incoming.bytes())) {
            (Some(Interface::Session), Ok(number)) => {
                answered += 1;
                if crash_after != 0 && answered > crash_after {
                    log!("crashing on request {answered}, as configured");
                    // SAFETY: none needed for soundness: page 0 is never mapped,
                    // so the read faults and the thread never resumes.
                    let _ = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
                }
                server.set_reply(&number.wrapping_add(1), None);
            }
            _ => server.set_reply(&u64::MAX, None),
        }
    }
}
