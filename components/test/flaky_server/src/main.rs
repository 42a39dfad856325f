//! flaky_server: provides the "Flaky" service — a request carrying a number
//! is answered with that number plus one — and dereferences null after
//! `crash_after` requests, so scenarios can show a server dying, init
//! restarting it, and its clients reconnecting.
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, client, env, log};
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
    log!("serving {SERVICE}, crashing after {crash_after} requests");
    let error = match Server::new() {
        Ok(server) => server.serve(
            &[SERVICE],
            Flaky {
                crash_after,
                answered: 0,
            },
        ),
        Err(error) => error,
    };
    log!("cannot serve {SERVICE}: {error}");
    client::exit(1);
}

struct Flaky {
    crash_after: u64,
    answered: u64,
}

impl Service for Flaky {
    type Session = ();
    /// The number plus one, or `u64::MAX` for a request that is not a number.
    type Reply = u64;

    fn create(&mut self, _: &str, _: &str, _: &[u8], quota: Quota) -> Result<(), SessionError> {
        quota.require(Quota {
            ram: SESSION_RAM,
            caps: 0,
        })
    }

    fn opened(&mut self, session: &Entry<()>) {
        log!("session {} for \"{}\"", session.badge, session.label);
    }

    fn handle(&mut self, _session: &mut Entry<()>, call: &mut Call<'_>) -> u64 {
        let Ok(number) = call.request::<u64>() else {
            return u64::MAX;
        };
        self.answered += 1;
        if self.crash_after != 0 && self.answered > self.crash_after {
            log!("crashing on request {}, as configured", self.answered);
            // SAFETY: none needed for soundness: page 0 is never mapped,
            // so the read faults and the thread never resumes.
            let _ = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
        }
        number.wrapping_add(1)
    }

    fn error(_error: SessionError) -> u64 {
        u64::MAX
    }
}
