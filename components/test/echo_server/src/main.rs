//! echo_server: announces one service (config `service`, "Echo" by
//! default), charges `session_ram` per session (default "4K"), logs the
//! label of every session it creates, and echoes text back. It never exits.
//!
//! Each session keeps an echo buffer of half its `session_ram`, allocated
//! from the RAM its client donated: the server's own quota pays for none
//! of its sessions, so any number of clients that pay can be served.
//!
//! Config: `(service: "Mirror", session_ram: "16K")`, both optional.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::ToString;
use alloc::vec::Vec;
use arbor::abi::{info, slot};
use arbor::sys;
use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, client, log};
use echo_server::config::Config;
use echo_server::protocol::{EchoReply, EchoRequest};

arbor::entry!(run);

fn run(_argument: u64) {
    let config: Config = match echo_server::config::read() {
        Ok(config) => config,
        Err(error) => {
            log!("echo_server: {error}");
            return client::exit(1);
        }
    };
    log!(
        "echo_server: serving {}, {} bytes per session",
        config.service,
        config.session_ram.0
    );
    let server = match Server::new() {
        Ok(server) => server,
        Err(error) => {
            log!("echo_server: {error}");
            return client::exit(1);
        }
    };
    let service = config.service.clone();
    let error = server.serve(
        &[&service],
        Echo {
            session_ram: config.session_ram.0,
        },
    );
    log!("echo_server: announcing {service}: {error}");
    client::exit(1);
}

/// The Echo service: sessions are echo buffers paid by their clients.
struct Echo {
    session_ram: u64,
}

/// The own RAM quota's limit, which grows by what each session donates.
fn ram_limit() -> u64 {
    sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).map_or(0, |(limit, _)| limit)
}

impl Service for Echo {
    /// The session's echo buffer.
    type Session = Vec<u8>;
    type Reply = EchoReply;

    fn create(
        &mut self,
        _service: &str,
        label: &str,
        _args: &[u8],
        quota: Quota,
    ) -> Result<Vec<u8>, SessionError> {
        let ram = quota.ram;
        let admitted = quota
            .require(Quota {
                ram: self.session_ram,
                caps: 0,
            })
            .and_then(|()| {
                let mut buffer = Vec::new();
                buffer
                    .try_reserve_exact((self.session_ram / 2) as usize)
                    .map_err(|_| SessionError::InsufficientQuota {
                        needed: self.session_ram,
                    })?;
                Ok(buffer)
            });
        if let Err(error) = &admitted {
            log!("echo_server: refused \"{label}\" ({ram} bytes): {error}");
        }
        admitted
    }

    fn opened(&mut self, session: &Entry<Vec<u8>>) {
        log!(
            "echo_server: session {} for \"{}\" ({} bytes), RAM limit now {} KiB",
            session.badge,
            session.label,
            session.quota.ram,
            ram_limit() / 1024
        );
    }

    fn upgrade(&mut self, session: &mut Entry<Vec<u8>>) -> Result<(), SessionError> {
        log!(
            "echo_server: session {} upgraded to {} bytes, RAM limit now {} KiB",
            session.badge,
            session.quota.ram,
            ram_limit() / 1024
        );
        Ok(())
    }

    fn close(&mut self, session: Entry<Vec<u8>>) {
        log!(
            "echo_server: session {} (\"{}\") closed",
            session.badge,
            session.label
        );
    }

    fn handle(&mut self, session: &mut Entry<Vec<u8>>, call: &mut Call<'_>) -> EchoReply {
        match call.request::<EchoRequest<'_>>() {
            Ok(EchoRequest::Echo { text }) => {
                // Kept in the session's own buffer, as far as it holds it.
                let buffer = &mut session.state;
                buffer.clear();
                let room = buffer.capacity().min(text.len());
                buffer.extend_from_slice(&text.as_bytes()[..room]);
                EchoReply::Echoed {
                    text: text.to_string(),
                }
            }
            Err(error) => EchoReply::Error(error),
        }
    }

    fn error(error: SessionError) -> EchoReply {
        EchoReply::Error(error)
    }
}
