//! crasher: a child that fails on purpose, for init's fault and restart
//! scenarios. Its config names what to do: `(fault: "null")`, `"gp"`,
//! `"divide"`, `"ud"`, `"stack"` (unbounded recursion), `"panic"`, or
//! `"exit"` (a clean exit with code 0).
#![cfg_attr(target_os = "none", no_std, no_main)]

use arbor_sessions::client::{self, Log, Rom};

arbor::entry!(run);

/// The fault kinds, by the word the config uses.
const KINDS: [&str; 7] = ["null", "gp", "divide", "ud", "stack", "panic", "exit"];

fn run(_argument: u64) {
    arbor_sessions::env::install_panic_reporter();
    let Ok(log) = Log::open("") else { return };
    let config = Rom::open("config").map(|rom| rom.bytes).unwrap_or(b"");
    let text = core::str::from_utf8(config).unwrap_or("");
    let kind = KINDS
        .iter()
        .find(|k| contains_quoted(text, k))
        .copied()
        .unwrap_or("exit");
    let _ = log.write(kind_message(kind));
    provoke(kind);
    client::exit(0);
}

/// Whether `text` holds `kind` in double quotes.
fn contains_quoted(text: &str, kind: &str) -> bool {
    text.match_indices(kind).any(|(at, _)| {
        at > 0
            && text.as_bytes()[at - 1] == b'"'
            && text.as_bytes().get(at + kind.len()) == Some(&b'"')
    })
}

fn kind_message(kind: &str) -> &'static str {
    match kind {
        "null" => "crasher: reading address 0",
        "gp" => "crasher: executing hlt in user mode",
        "divide" => "crasher: dividing by zero",
        "ud" => "crasher: executing ud2",
        "stack" => "crasher: recursing without bound",
        "panic" => "crasher: panicking",
        _ => "crasher: exiting cleanly",
    }
}

fn provoke(kind: &str) {
    match kind {
        "null" => {
            // SAFETY: none needed for soundness: page 0 is never mapped, so the
            // read faults before a value exists and the thread never resumes.
            let _ = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
        }
        // SAFETY: `hlt` is privileged; in ring 3 it raises #GP and touches nothing.
        "gp" => unsafe { core::arch::asm!("hlt", options(nomem, nostack)) },
        // SAFETY: `div` with a zero divisor raises #DE; it reads only the named registers.
        "divide" => unsafe {
            core::arch::asm!("div {d}", d = in(reg) 0u64, inout("rax") 1u64 => _, inout("rdx") 0u64 => _);
        },
        // SAFETY: `ud2` raises #UD and does nothing else.
        "ud" => unsafe { core::arch::asm!("ud2", options(nomem, nostack)) },
        "stack" => {
            let depth = recurse(core::hint::black_box(1));
            let _ = core::hint::black_box(depth);
        }
        "panic" => panic!("crasher: panic on purpose"),
        _ => {}
    }
}

/// Recurses until the stack's guard page stops it.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = core::hint::black_box([n; 64]);
    recurse(frame[0] + 1) + frame[63]
}
