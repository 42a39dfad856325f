//! {{name}}: an application. It reads its config, opens a Timer session,
//! logs "{message} #{n}" `count` times, `period_ms` apart, and exits with 0;
//! anything it cannot do ends it with 1 and a log line that says why.
//!
//! Where things are: the config and its lines in `src/config.rs` (tested on
//! the host), the scenario that starts it in `runtime-configs/{{name}}.ron`.
//! It sees only the services its routes there lead to: Log and Rom from its
//! parent, Timer from the `timer` child.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use arbor_sessions::client::{self, Timer};
use arbor_sessions::{env, log};
use {{name}}::config::Config;

// The runtime calls `run` once everything is set up.
arbor::entry!(run);

/// The component's main function: its exit code goes to the parent (init).
fn run(_argument: u64) {
    let code = match work() {
        Ok(()) => 0,
        Err(reason) => {
            // `log!` writes through a Log session opened on first use; each
            // line appears on the console prefixed with this child's label.
            log!("{reason}");
            1
        }
    };
    client::exit(code);
}

fn work() -> Result<(), String> {
    // The config ROM holds this child's `config:` from the scenario.
    let config = env::config::<Config>()
        .map_err(|error| format!("{error}"))?
        .check()?;
    // `open` waits while the timer driver has not announced its service yet.
    let timer = Timer::open("").map_err(|error| format!("Timer session: {error}"))?;
    for n in 1..=config.count {
        timer
            .sleep(config.period_ms)
            .map_err(|error| format!("sleeping {} ms: {error}", config.period_ms))?;
        log!("{}", config.line(n));
    }
    Ok(())
}
