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
    // `open` waits while the server has not announced its service yet.
    let connection = Connection::open("")?;
    for amount in 1..=3 {
        let total = connection.add(amount)?;
        log!("added {amount}, total {total}");
    }
    connection.close()?;
    log!("session closed");
    Ok(())
}
