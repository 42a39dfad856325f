//! {{name}}: a driver for the PC's CMOS real-time clock. Like every driver
//! it owns no hardware until its parent routes it some: it asks for an
//! IoPort session (ports 0x70–0x71) and an Irq session (IOAPIC input 8,
//! the clock's ISA line), which init forwards to core because the scenario's
//! routes say so. It then lets the clock interrupt once a second and, at
//! each interrupt, logs the seconds; after `ticks` of them it exits with 0.
//!
//! Where things are: register meanings in `src/rtc.rs` (tested on the host),
//! the unsafe port I/O in `src/cmos.rs`, the scenario that starts it in
//! `runtime-configs/{{name}}.ron`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod cmos;

use alloc::format;
use alloc::string::String;
use arbor::abi::{CapSlot, ObjectKind, slot};
use arbor::{slots, sys};
use arbor_sessions::client::{self, open_session};
use arbor_sessions::services::{IoPortArgs, IrqArgs, name};
use arbor_sessions::{SessionError, env, log};
use cmos::Cmos;
use {{name}}::config::Config;
use {{name}}::rtc;

// The runtime calls `run` once everything is set up.
arbor::entry!(run);

/// The clock's interrupt line: ISA IRQ 8, IOAPIC input 8 on q35.
const RTC_IRQ_LINE: u8 = 8;
/// RAM donated for each of the IoPort and Irq sessions (core's price for a
/// kernel resource object).
const RESOURCE_SESSION_RAM: u64 = 4096;

fn run(_argument: u64) {
    let code = match drive() {
        Ok(()) => 0,
        Err(reason) => {
            log!("{reason}");
            1
        }
    };
    client::exit(code);
}

fn drive() -> Result<(), String> {
    let config: Config = env::config().map_err(|error| format!("{error}"))?;

    // Core refuses a second claim of the same ports or line: two drivers
    // never share a device by accident.
    let ports = open_session(
        name::IO_PORT,
        "",
        &IoPortArgs {
            first: cmos::FIRST_PORT,
            count: cmos::PORT_COUNT,
        },
        RESOURCE_SESSION_RAM,
        None,
    )
    .map_err(|error| format!("IoPort session for the CMOS ports: {error}"))?;
    let cmos = Cmos::enable(ports.cap).map_err(|error| format!("enabling the ports: {error:?}"))?;

    // The interrupt arrives as a signal on this notification.
    let notification = new_notification().map_err(|error| format!("notification: {error}"))?;
    let irq = open_session(
        name::IRQ,
        "",
        &IrqArgs { line: RTC_IRQ_LINE },
        RESOURCE_SESSION_RAM,
        Some(notification),
    )
    .map_err(|error| format!("Irq session for line {RTC_IRQ_LINE}: {error}"))?;

    let status_b = cmos.read(rtc::STATUS_B);
    cmos.write(rtc::STATUS_B, status_b | rtc::STATUS_B_UPDATE_INTERRUPT);
    // A flag left set would keep the line high, and the edge-triggered
    // input would never see the next interrupt.
    cmos.read(rtc::STATUS_C);
    log!("RTC update interrupt on, IRQ line {RTC_IRQ_LINE}");

    let mut tick = 0;
    while tick < config.ticks {
        sys::wait(notification).map_err(|error| format!("waiting: {error:?}"))?;
        // Reading register C lets the clock interrupt again; acknowledging
        // the Irq lets the kernel deliver the line again.
        let flags = cmos.read(rtc::STATUS_C);
        sys::ack_irq(irq.cap).map_err(|error| format!("acknowledging: {error:?}"))?;
        if flags & rtc::STATUS_C_UPDATE_ENDED == 0 {
            continue;
        }
        tick += 1;
        // Right after an update the time registers hold still for most of
        // a second, so they can be read without a torn value.
        match rtc::decode(cmos.read(rtc::SECONDS), status_b) {
            Ok(seconds) => log!("tick {tick}: the clock says {seconds} s past the minute"),
            Err(bad) => log!("tick {tick}: the clock's seconds read {:#04x}", bad.0),
        }
    }
    cmos.write(rtc::STATUS_B, status_b);
    Ok(())
}

/// A new notification in a fresh capability slot, paid by this component.
fn new_notification() -> Result<CapSlot, SessionError> {
    let cap = slots::allocate().map_err(SessionError::from)?;
    match sys::create(ObjectKind::Notification, slot::OWN_PD, cap, 0) {
        Ok(()) => Ok(cap),
        Err(error) => {
            slots::free(cap);
            Err(SessionError::from(error))
        }
    }
}
