//! flaky_client: pings the "Flaky" service `count` times. When the server
//! dies, its next call fails with a typed error; the client then asks its
//! parent for a new session — which the restarted server provides — and
//! carries on where it was.
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor::abi::CapSlot;
use arbor_sessions::client::{self, Session};
use arbor_sessions::{Interface, SessionError, env, log};
use serde::Deserialize;

arbor::entry!(run);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Successful pings before exiting.
    count: u64,
}

/// Opens a Flaky session (`open_session` waits while the server is not
/// announced yet, or again).
fn connect() -> Result<Session, SessionError> {
    client::open_session("Flaky", "", &(), 4096, None)
}

fn ping(session: CapSlot, number: u64) -> Result<u64, SessionError> {
    client::call::<_, u64>(session, Interface::Session, &number, None, None).map(|(reply, _)| reply)
}

fn run(_argument: u64) {
    let count = env::config::<Config>().map_or(5, |c| c.count);
    let Ok(mut session) = connect() else {
        log!("no Flaky session");
        client::exit(1);
        return;
    };
    let mut number = 0;
    while number < count {
        match ping(session.cap, number) {
            Ok(reply) if reply == number + 1 => {
                number = reply;
                log!("ping {number} ok");
            }
            Ok(reply) => {
                log!("wrong answer {reply} to {number}");
                client::exit(1);
                return;
            }
            Err(error) => {
                log!("server gone ({error}); reconnecting");
                let _ = client::close_session(session);
                match connect() {
                    Ok(new_session) => {
                        session = new_session;
                        log!("reconnected");
                    }
                    Err(error) => {
                        log!("cannot reconnect: {error}");
                        client::exit(1);
                        return;
                    }
                }
            }
        }
    }
    client::exit(0);
}
