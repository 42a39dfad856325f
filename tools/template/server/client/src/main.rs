//! {{name}}_client: shows the {{Name}} service at work. It opens a session,
//! adds 1, 2 and 3 to its counter, logging each total, closes the session
//! (the server gives its quota back) and exits with 0.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use arbor_sessions::client;
use arbor_sessions::{SessionError, log};
use {{name}}_api::Connection;

// The runtime calls `run` once everything is set up.
arbor::entry!(run);

fn run(_argument: u64) {
    let code = match work() {
        Ok(()) => 0,
        Err(error) => {
            log!("{{Name}} session: {error}");
            1
        }
    };
    client::exit(code);
}

fn work() -> Result<(), SessionError> {
    let connection = open()?;
    for amount in 1..=3 {
        let total = connection.add(amount)?;
        log!("added {amount}, total {total}");
    }
    connection.close()?;
    log!("session closed");
    Ok(())
}

/// Opens the session. init starts all children together and refuses a
/// service that its provider has not announced yet, so the first attempts
/// may find it unavailable: try again a while before giving up.
fn open() -> Result<Connection, SessionError> {
    const ATTEMPTS: u32 = 1000;
    let mut attempt = 1;
    loop {
        match Connection::open("") {
            Err(SessionError::Unavailable) if attempt < ATTEMPTS => {
                attempt += 1;
                arbor::sys::yield_now();
            }
            other => return other,
        }
    }
}
