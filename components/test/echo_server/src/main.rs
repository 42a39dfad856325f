//! echo_server: announces one service (config `service`, "Echo" by
//! default), charges `session_ram` per session (default "4K"), logs the
//! label of every session it creates, and echoes text back. It never exits.
//!
//! Config: `(service: "Mirror", session_ram: "16K")`, both optional.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use arbor::abi::{CapSlot, ObjectKind, Rights, info, slot};
use arbor::{slots, sys};
use arbor_sessions::client::{self, Endpoint, Incoming};
use arbor_sessions::parent::{ROOT_BADGE, RootReply, RootRequest};
use arbor_sessions::{Interface, SessionError, decode, log};
use echo_server::config::Config;
use echo_server::protocol::{EchoReply, EchoRequest};
use echo_server::sessions::SessionTable;

arbor::entry!(run);

fn run(_argument: u64) {
    if let Err(reason) = serve() {
        log!("echo_server: {reason}");
        client::exit(1);
    }
}

fn serve() -> Result<(), String> {
    let config: Config = echo_server::config::read().map_err(|e| format!("{e}"))?;
    let endpoint = slots::allocate().map_err(|e| format!("no slot: {e}"))?;
    sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0)
        .map_err(|e| format!("endpoint: {e}"))?;
    let root = slots::allocate().map_err(|e| format!("no slot: {e}"))?;
    sys::derive(
        endpoint,
        root,
        Rights::WRITE.union(Rights::GRANT),
        ROOT_BADGE,
    )
    .map_err(|e| format!("root capability: {e}"))?;
    // The first line opens the Log session, and that must happen before
    // announcing: once announced, init may call our root and wait for the
    // answer, and a session request to init then would wait for init.
    log!(
        "echo_server: serving {}, {} bytes per session",
        config.service,
        config.session_ram.0
    );
    client::announce(&config.service, root)
        .map_err(|e| format!("announcing {}: {e}", config.service))?;
    let mut table = SessionTable::new(config.session_ram.0);
    let mut server = Endpoint::new(endpoint);
    loop {
        let incoming = server.next(None).map_err(|e| format!("receive: {e}"))?;
        if incoming.badge.0 == ROOT_BADGE {
            root_request(endpoint, &mut table, &incoming, &mut server);
        } else {
            session_request(&table, &incoming, &mut server);
        }
    }
}

/// Create, upgrade or close a session, as the parent asks.
fn root_request(
    endpoint: CapSlot,
    table: &mut SessionTable,
    incoming: &Incoming,
    server: &mut Endpoint,
) {
    let request = match (
        incoming.interface,
        decode::<RootRequest<'_>>(incoming.bytes()),
    ) {
        (Some(Interface::Root), Ok(request)) => request,
        _ => {
            server.set_reply(&RootReply::Error(SessionError::BadRequest), None);
            return;
        }
    };
    match request {
        RootRequest::Create { label, ram, .. } => match create(endpoint, table, label, ram) {
            Ok((badge, cap)) => {
                log!(
                    "echo_server: session {badge} for \"{label}\" ({ram} bytes), RAM limit now {} KiB",
                    ram_limit() / 1024
                );
                server.set_reply(&RootReply::Created { badge }, Some(cap));
            }
            Err(error) => {
                log!("echo_server: refused \"{label}\" ({ram} bytes): {error}");
                server.set_reply(&RootReply::Error(error), None);
            }
        },
        RootRequest::Upgrade { badge, ram } => match table.upgrade(badge, ram) {
            Ok(total) => {
                log!(
                    "echo_server: session {badge} upgraded to {total} bytes, RAM limit now {} KiB",
                    ram_limit() / 1024
                );
                server.set_reply(&RootReply::Done { ram: 0 }, None);
            }
            Err(error) => server.set_reply(&RootReply::Error(error), None),
        },
        RootRequest::Close { badge } => match table.close(badge) {
            Ok(record) => {
                if let Some(cap) = record.cap {
                    let _ = sys::delete(cap);
                    slots::free(cap);
                }
                log!("echo_server: session {badge} (\"{}\") closed", record.label);
                server.set_reply(&RootReply::Done { ram: record.ram }, None);
            }
            Err(error) => server.set_reply(&RootReply::Error(error), None),
        },
    }
}

/// The own RAM quota's limit, which grows by what each session donates.
fn ram_limit() -> u64 {
    sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).map_or(0, |(limit, _)| limit)
}

/// Admits a session and makes its capability: the endpoint badged with it.
fn create(
    endpoint: CapSlot,
    table: &mut SessionTable,
    label: &str,
    ram: u64,
) -> Result<(u64, CapSlot), SessionError> {
    let badge = table.admit(label, ram)?;
    let made = slots::allocate().and_then(|cap| {
        sys::derive(endpoint, cap, Rights::WRITE.union(Rights::GRANT), badge)
            .map(|()| cap)
            .inspect_err(|_| slots::free(cap))
    });
    match made {
        Ok(cap) => {
            table.set_cap(badge, cap)?;
            Ok((badge, cap))
        }
        Err(error) => {
            let _ = table.close(badge);
            Err(client::kernel_error(error))
        }
    }
}

/// Serves one request on an Echo session.
fn session_request(table: &SessionTable, incoming: &Incoming, server: &mut Endpoint) {
    if table.get(incoming.badge.0).is_none() {
        server.set_reply(&EchoReply::Error(SessionError::NoSuchSession), None);
        return;
    }
    let reply = match (
        incoming.interface,
        decode::<EchoRequest<'_>>(incoming.bytes()),
    ) {
        (Some(Interface::Session), Ok(EchoRequest::Echo { text })) => EchoReply::Echoed {
            text: text.to_string(),
        },
        _ => EchoReply::Error(SessionError::BadRequest),
    };
    server.set_reply(&reply, None);
}
