//! hello: the smallest useful client. It reads its config, opens a Timer,
//! logs "{greeting} #{n}" `count` times `period_ms` apart and exits with 0;
//! a config it cannot use or a Timer it cannot have ends it with 1 and a
//! log line that says why.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use arbor_sessions::client::{self, Timer};
use arbor_sessions::{env, log};
use hello::config::Config;

arbor::entry!(run);

fn run(_argument: u64) {
    let code = match greet() {
        Ok(()) => 0,
        Err(reason) => {
            log!("{reason}");
            1
        }
    };
    client::exit(code);
}

fn greet() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| alloc::format!("{error}"))?;
    let timer = Timer::open("").map_err(|error| alloc::format!("Timer session: {error}"))?;
    for n in 1..=config.count {
        timer
            .sleep(config.period_ms)
            .map_err(|error| alloc::format!("sleeping {} ms: {error}", config.period_ms))?;
        log!("{} #{n}", config.greeting);
    }
    Ok(())
}
