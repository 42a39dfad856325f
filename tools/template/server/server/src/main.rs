//! {{name}}: a server of the {{Name}} service (interface: crate
//! `{{name}}_api`). The server framework (`arbor_sessions::server`) does
//! the plumbing every server shares: announcing, creating, upgrading and
//! closing sessions when the parent asks, the session table keyed by the
//! badge the kernel stamps on every call, and error replies. What is
//! specific to {{Name}} is below and in `src/sessions.rs` (tested on the host).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use arbor_sessions::server::{Call, Server, Service};
use arbor_sessions::table::{Entry, Quota};
use arbor_sessions::{SessionError, client, log};
use {{name}}::sessions::{Counter, SESSION_COST};
use {{name}}_api::{Reply, Request, SERVICE};

// The runtime calls `run` once everything is set up.
arbor::entry!(run);

fn run(_argument: u64) {
    log!("serving {SERVICE}");
    let error = match Server::new() {
        // Returns only if the parent refuses the announcement.
        Ok(server) => server.serve(&[SERVICE], {{Name}}),
        Err(error) => error,
    };
    log!("stopped: {error}");
    client::exit(1);
}

/// The {{Name}} service: every session is a counter.
struct {{Name}};

impl Service for {{Name}} {
    type Session = Counter;
    type Reply = Reply;

    /// A session paid from the quota its client donated.
    fn create(&mut self, _: &str, _: &str, _: &[u8], quota: Quota) -> Result<Counter, SessionError> {
        quota.require(SESSION_COST)?;
        Ok(Counter::default())
    }

    fn opened(&mut self, session: &Entry<Counter>) {
        log!(
            "session {} opened for \"{}\" ({} bytes donated)",
            session.badge,
            session.label,
            session.quota.ram
        );
    }

    fn close(&mut self, session: Entry<Counter>) {
        log!(
            "session {} closed, {} bytes go back",
            session.badge,
            session.quota.ram
        );
    }

    /// A client's request on its session.
    fn handle(&mut self, session: &mut Entry<Counter>, call: &mut Call<'_>) -> Reply {
        let counter = &mut session.state;
        let result = match call.request::<Request>() {
            Ok(Request::Add { amount }) => counter.add(amount),
            Ok(Request::Total) => Ok(counter.total()),
            Err(error) => Err(error),
        };
        match result {
            Ok(value) => Reply::Total { value },
            Err(error) => Reply::Error(error),
        }
    }

    fn error(error: SessionError) -> Reply {
        Reply::Error(error)
    }
}
