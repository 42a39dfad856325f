//! Mode `faults`: one `fault_child` per fault kind, each reporting to the
//! same endpoint under its own badge.

use crate::{fresh, spawn};
use arbor::abi::{FAULT_LABEL, FaultKind, ObjectKind, Rights, slot};
use arbor::println;
use arbor::sys;

/// The faults provoked, by `fault_child`'s argument; every one decides the verdict.
const CASES: [(u64, FaultKind, &str); 6] = [
    (1, FaultKind::PageFault, "null dereference"),
    (2, FaultKind::GeneralProtection, "hlt in user mode"),
    (3, FaultKind::DivideError, "divide by zero"),
    (4, FaultKind::InvalidOpcode, "ud2"),
    (5, FaultKind::Breakpoint, "int3"),
    (
        6,
        FaultKind::GeneralProtection,
        "port read after its IoPorts object was destroyed",
    ),
];

/// The case whose child gets port 0x80 opened and then revoked before it runs.
const REVOKED_PORT_CASE: u64 = 6;

/// How many of [`CASES`] must arrive as expected.
const REQUIRED: usize = CASES.len();

/// Runs every case; true if each fault arrived as expected.
pub fn run() -> bool {
    let endpoint = fresh();
    if let Err(error) = sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0) {
        println!("faults: cannot create the fault endpoint: {error}");
        return false;
    }
    let mut good = 0;
    for (argument, expected, what) in CASES {
        let badge = 100 + argument;
        let badged = fresh();
        if let Err(error) = sys::derive(endpoint, badged, Rights::WRITE.union(Rights::GRANT), badge)
        {
            println!("faults: cannot badge the endpoint: {error}");
            continue;
        }
        let child = match spawn(
            "fault_child",
            256 * 1024,
            32,
            argument,
            badged,
            Some(badged),
        ) {
            Ok(child) => child,
            Err(error) => {
                println!("faults: cannot start fault_child {argument}: {error:?}");
                continue;
            }
        };
        if argument == REVOKED_PORT_CASE {
            // The child runs at a lower priority, so it has not started yet:
            // open the port for it, then destroy the IoPorts object, which
            // must close the port again in the child's I/O bitmap.
            let ports = fresh();
            let revoked = sys::create_io_ports(slot::PLATFORM, slot::OWN_PD, ports, 0x80, 1)
                .and_then(|()| sys::enable_io_ports(ports, child.pd))
                .and_then(|()| sys::destroy(ports));
            if let Err(error) = revoked {
                println!("faults: cannot open and revoke port 0x80: {error}");
            }
            let _ = sys::delete(ports);
        }
        match sys::recv(endpoint) {
            Ok((got_badge, message)) if message.label() == FAULT_LABEL => {
                let [kind, address, ip, code] = message.words;
                let kind_name = FaultKind::from_raw(kind);
                println!(
                    "fault: child {argument} ({what}) badge {} kind {kind_name:?} address {address:#x} ip {ip:#x} code {code:#x}",
                    got_badge.0
                );
                if got_badge.0 == badge && kind_name == Some(expected) {
                    if (argument as usize) <= REQUIRED {
                        good += 1;
                    }
                } else {
                    println!("faults: expected {expected:?} with badge {badge}");
                }
            }
            Ok((got_badge, message)) => println!(
                "faults: child {argument} sent label {:#x} (badge {}) instead of a fault",
                message.label(),
                got_badge.0
            ),
            Err(error) => println!("faults: receive failed: {error}"),
        }
        if let Err(error) = child.destroy() {
            println!("faults: destroying child {argument} failed: {error}");
        }
        let _ = sys::delete(badged);
    }
    println!("faults: {good} of {REQUIRED} required faults reported; kernel_test still running");
    good == REQUIRED
}
