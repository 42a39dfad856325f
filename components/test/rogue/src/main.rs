//! rogue: a hostile child written against today's interfaces, in one of
//! several modes (config `mode`), each ending in a summary line:
//!
//! - `"silent"`: announces `service`, delivers forged answers for work
//!   items 1 to 100 (none of them its own), and never fetches or delivers
//!   real work, so its clients' requests can only expire at init's deadline.
//! - `"stall"`: announces `service`, fetches the work it is signalled for
//!   (and with it the donated quota), and never delivers.
//! - `"impostor"`: announces `service` and answers each request it fetches
//!   with a notification capability instead of a session.
//! - `"ask"`: asks for a session of `service` and checks that its free RAM
//!   and capability quota are what they were before when it is refused.
//! - `"exhaust"`: announces `service` `count` times and opens `count` tiny
//!   Log sessions, each of which would make init hold a capability; then
//!   faults (so that init's restart policy and leak check run).
//! - `"forge"`: sends `count` calls with the kernel's notification label
//!   (and guessed IRQ bits) on its Timer session, as if they were ticks.
//! - `"clock"`: an honest Timer client that sleeps `windows` times
//!   `window_ms` and checks the timer's elapsed time against the TSC.
//!
//! `delay_ms` makes it wait that long first.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use arbor::abi::{MsgInfo, NOTIFICATION_LABEL, ObjectKind, Rights, info, slot};
use arbor::slots;
use arbor::sys::{self, Message};
use arbor_sessions::client::{self, Timer, open_session, open_session_raw};
use arbor_sessions::parent::Delivery;
use arbor_sessions::services::name;
use arbor_sessions::{SessionError, env, log};
use serde::Deserialize;

arbor::entry!(run);

/// What the config may say.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    mode: String,
    service: String,
    count: u32,
    windows: u32,
    window_ms: u64,
    /// The label `ask` asks with.
    label: String,
    /// Milliseconds to wait before acting.
    delay_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: String::new(),
            service: String::from("Echo"),
            count: 2000,
            windows: 4,
            window_ms: 300,
            label: String::from("ask"),
            delay_ms: 0,
        }
    }
}

fn run(_argument: u64) {
    let config = match env::config::<Config>() {
        Ok(config) => config,
        Err(error) => {
            log!("rogue: {error}");
            return client::exit(1);
        }
    };
    if config.delay_ms > 0 {
        client::pause(config.delay_ms);
    }
    match config.mode.as_str() {
        "silent" => silent(&config),
        "stall" => stall(&config),
        "impostor" => impostor(&config),
        "ask" => ask(&config),
        "exhaust" => exhaust(&config),
        "forge" => forge(&config),
        "clock" => clock(&config),
        other => log!("rogue: unknown mode \"{other}\""),
    }
    client::exit(0);
}

/// A notification of our own and a capability that signals it.
fn notification_and_signal() -> Result<(arbor::abi::CapSlot, arbor::abi::CapSlot), arbor::abi::Error>
{
    let notification = slots::allocate()?;
    sys::create(ObjectKind::Notification, slot::OWN_PD, notification, 0)?;
    let signal = slots::allocate()?;
    sys::derive(notification, signal, Rights::WRITE.union(Rights::GRANT), 1)?;
    Ok((notification, signal))
}

/// Announces and then ignores every signal: never a NextRequest, never a Deliver.
fn silent(config: &Config) {
    let Ok((notification, signal)) = notification_and_signal() else {
        return log!("rogue: cannot make a notification");
    };
    match client::announce(&config.service, signal) {
        Ok(()) => log!("rogue: announced {} and will never answer", config.service),
        Err(error) => return log!("rogue: announcing {} refused: {error}", config.service),
    }
    // Answers to work that is not ours, with a capability that is not a session.
    let accepted = (1..=100)
        .filter(|&id| client::deliver(id, Delivery::Created { badge: 1 }, Some(signal)).is_ok())
        .count();
    log!(
        "rogue: 100 forged deliveries: {accepted} accepted, {} refused",
        100 - accepted
    );
    loop {
        // Woken whenever init has work for us; we drop it on the floor.
        let _ = sys::wait(notification);
    }
}

/// Fetches work (taking the donation) and never answers it.
fn stall(config: &Config) {
    let Ok((notification, signal)) = notification_and_signal() else {
        return log!("rogue: cannot make a notification");
    };
    if let Err(error) = client::announce(&config.service, signal) {
        return log!("rogue: announcing {} refused: {error}", config.service);
    }
    log!(
        "rogue: announced {} and will fetch but never deliver",
        config.service
    );
    loop {
        let _ = sys::wait(notification);
        let mut buffer = [0u8; arbor::abi::PAYLOAD_MAX];
        while let Ok(Some(work)) = client::next_work(&mut buffer) {
            log!(
                "rogue: fetched request {} and will not answer it",
                work.id()
            );
            buffer = [0u8; arbor::abi::PAYLOAD_MAX];
        }
    }
}

/// Answers every request with a capability that is not a session.
fn impostor(config: &Config) {
    let Ok((notification, signal)) = notification_and_signal() else {
        return log!("rogue: cannot make a notification");
    };
    if let Err(error) = client::announce(&config.service, signal) {
        return log!("rogue: announcing {} refused: {error}", config.service);
    }
    loop {
        let _ = sys::wait(notification);
        let mut buffer = [0u8; arbor::abi::PAYLOAD_MAX];
        while let Ok(Some(work)) = client::next_work(&mut buffer) {
            let id = work.id();
            let answer = client::deliver(id, Delivery::Created { badge: 1 }, Some(signal));
            log!("rogue: answered request {id} with a notification: {answer:?}");
            buffer = [0u8; arbor::abi::PAYLOAD_MAX];
        }
    }
}

/// This component's free (RAM, caps) quota.
fn free_quota() -> (u64, u64) {
    let free = |selector| {
        sys::info(selector, u64::from(slot::OWN_PD.0)).map_or(0, |(limit, used)| limit - used)
    };
    (free(info::PD_RAM), free(info::PD_CAPS))
}

/// Asks for a session and checks that a refusal gives back all it donated.
fn ask(config: &Config) {
    // The runtime's own first-use costs (the Log session, the poll
    // notification) come first.
    env::open_log();
    client::pause(1);
    let before = free_quota();
    let service = config.service.as_str();
    match open_session(service, &config.label, &(), 4096, None) {
        Ok(_) => return log!("rogue: {service} granted"),
        Err(error) => log!("rogue: {service} refused: {error}"),
    }
    let after = free_quota();
    if after == before {
        log!("rogue: free RAM and caps after the refusal are what they were before");
    } else {
        log!(
            "rogue: free quota was {} bytes, {} caps before and is {} bytes, {} caps after",
            before.0,
            before.1,
            after.0,
            after.1
        );
    }
}

/// Tries to make init hold more capabilities than this child can pay for.
fn exhaust(config: &Config) {
    let count = config.count;
    let Ok((_, signal)) = notification_and_signal() else {
        return log!("rogue: cannot make a notification");
    };
    let (mut accepted, mut refused, mut first_refusal) = (0, 0, None);
    for _ in 0..count {
        match client::announce(&config.service, signal) {
            Ok(()) => accepted += 1,
            Err(error) => {
                refused += 1;
                first_refusal.get_or_insert(error);
            }
        }
    }
    log!(
        "rogue: {count} announces: {accepted} accepted, {refused} refused (first refusal: {})",
        describe(first_refusal)
    );
    let (mut opened, mut refused, mut first_refusal) = (0, 0, None);
    for _ in 0..count {
        // The smallest session there is: one page, one capability beyond init's.
        match open_session_raw(slot::PARENT, name::LOG, "tiny", &[], 4096, 2, None) {
            Ok(_) => opened += 1,
            Err(error) => {
                refused += 1;
                first_refusal.get_or_insert(error);
            }
        }
    }
    log!(
        "rogue: {count} Log sessions: {opened} opened, {refused} refused (first refusal: {})",
        describe(first_refusal)
    );
    log!("rogue: faulting on purpose");
    // SAFETY: none needed for soundness: page 0 is never mapped, so the
    // read faults and the thread never resumes.
    let _ = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
}

fn describe(error: Option<SessionError>) -> String {
    error.map_or_else(|| String::from("none"), |e| alloc::format!("{e}"))
}

/// Calls its own Timer session with the kernel's notification label, as
/// many times as configured, guessing at the IRQ bits in word 0.
fn forge(config: &Config) {
    let session = match open_session(name::TIMER, "forger", &(), client::TIMER_SESSION_RAM, None) {
        Ok(session) => session,
        Err(error) => return log!("rogue: no Timer session: {error}"),
    };
    log!("rogue: forging {} ticks", config.count);
    let (mut answered, mut refused) = (0u32, 0u32);
    for attempt in 0..config.count {
        let guess = match attempt % 4 {
            0 => 1,
            1 => u64::MAX,
            2 => 1 << 63,
            _ => u64::from(attempt),
        };
        let forged = Message {
            info: MsgInfo::new(NOTIFICATION_LABEL, 0, 0),
            words: [guess, 0, 0, 0],
        };
        match sys::call(session.cap, forged) {
            Ok(_) => answered += 1,
            Err(_) => refused += 1,
        }
    }
    log!(
        "rogue: sent {} forged ticks: {answered} answered by the server, {refused} refused by the kernel",
        config.count
    );
}

/// Sleeps in windows and compares the timer's elapsed time with the TSC's:
/// the timer may lag (a lost tick) but never run ahead.
fn clock(config: &Config) {
    let timer = match Timer::open("clock") {
        Ok(timer) => timer,
        Err(error) => return log!("rogue: no Timer session: {error}"),
    };
    let tsc_per_ms = sys::info(info::TSC_PER_MS, 0).map_or(1, |(tsc, _)| tsc.max(1));
    let mut ahead = 0;
    for window in 1..=config.windows {
        let (Ok(start), tsc_start) = (timer.elapsed_ms(), tsc()) else {
            return log!("rogue: Elapsed failed");
        };
        if let Err(error) = timer.sleep(config.window_ms) {
            return log!("rogue: sleep failed: {error}");
        }
        let (Ok(end), tsc_end) = (timer.elapsed_ms(), tsc()) else {
            return log!("rogue: Elapsed failed");
        };
        let timer_ms = end.saturating_sub(start);
        let tsc_ms = (tsc_end - tsc_start) / tsc_per_ms;
        log!("rogue: window {window}: timer {timer_ms} ms, TSC {tsc_ms} ms");
        // A tick's worth of slack either way, plus scheduling noise.
        if timer_ms > tsc_ms + 100 {
            ahead += 1;
        }
    }
    if ahead == 0 {
        log!(
            "rogue: the timer never ran ahead of the TSC in {} windows",
            config.windows
        );
    } else {
        log!(
            "rogue: the timer ran AHEAD of the TSC in {ahead} of {} windows",
            config.windows
        );
    }
}

fn tsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}
