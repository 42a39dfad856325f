//! Mode `hostile`: a child making random system calls must not crash the
//! kernel, and destroying it must return every byte it was given.

use crate::fresh;
use arbor::abi::{FAULT_LABEL, ObjectKind, Rights, info, slot};
use arbor::loader::{self, ChildSpec};
use arbor::sys;
use arbor::{println, rom};

/// The label `hostile` ends with (see its source).
const DONE: u32 = 0xD0E;
/// Faults of threads the hostile starts itself are tolerated up to this many.
const MAX_FAULTS: u32 = 1_000_000;

fn free_ram() -> (u64, u64) {
    let kernel = sys::info(info::KERNEL_FREE_RAM, 0).map_or(0, |r| r.0);
    let own_used = sys::info(info::PD_RAM, u64::from(slot::OWN_PD.0)).map_or(0, |r| r.1);
    (kernel, own_used)
}

/// Runs `hostile` for `iterations` calls; true if memory balanced.
pub fn run(iterations: u64) -> bool {
    let endpoint = fresh();
    let badged = fresh();
    if sys::create(ObjectKind::Endpoint, slot::OWN_PD, endpoint, 0).is_err()
        || sys::derive(endpoint, badged, Rights::WRITE.union(Rights::GRANT), 7).is_err()
    {
        println!("hostile: cannot create the endpoint");
        return false;
    }
    let (kernel_before, used_before) = free_ram();
    // It gets the Platform capability too, so that device dataspaces,
    // interrupts and I/O ports are part of its rampage.
    let grants = [
        (badged, slot::PARENT, Rights::READ.union(Rights::WRITE)),
        (slot::CONSOLE, slot::CONSOLE, Rights::WRITE),
        (slot::PLATFORM, slot::PLATFORM, Rights::ALL),
    ];
    let spawned = rom::module("hostile")
        .map_err(|e| println!("hostile: no module: {e}"))
        .ok()
        .and_then(|image| {
            loader::spawn(&ChildSpec {
                image,
                ram: 1024 * 1024,
                caps: 64,
                priority: 1,
                argument: iterations,
                fault_endpoint: Some(badged),
                grants: &grants,
            })
            .map_err(|error| println!("hostile: cannot start: {error:?}"))
            .ok()
        });
    let child = match spawned {
        Some(child) => child,
        None => return false,
    };
    let mut faults = 0;
    let mut finished = false;
    while faults < MAX_FAULTS {
        match sys::recv(endpoint) {
            Ok((_, message)) if message.label() == DONE => {
                println!(
                    "hostile: child reports {} calls, {} refused, {} blocking",
                    message.words[0], message.words[1], message.words[2]
                );
                finished = true;
                break;
            }
            Ok((_, message)) if message.label() == FAULT_LABEL => {
                faults += 1;
                if faults <= 5 {
                    let [kind, address, ip, _] = message.words;
                    println!("hostile: fault kind {kind} address {address:#x} ip {ip:#x}");
                }
            }
            Ok((_, message)) => println!("hostile: stray label {:#x}", message.label()),
            Err(error) => {
                println!("hostile: receive failed: {error}");
                break;
            }
        }
    }
    if let Err(error) = child.destroy() {
        println!("hostile: destroy failed: {error}");
    }
    let (kernel_after, used_after) = free_ram();
    println!("hostile: kernel free RAM before {kernel_before} after {kernel_after}");
    println!("hostile: own RAM used before {used_before} after {used_after}");
    let balanced = kernel_before == kernel_after && used_before == used_after;
    println!(
        "hostile: {} after {faults} fault(s)",
        if balanced && finished {
            "memory balanced"
        } else {
            "MEMORY OR RUN MISMATCH"
        }
    );
    balanced && finished
}
