//! linux-baseline: the `/init` of the Linux guest that `cargo arbor bench`
//! boots in the same QEMU as Arbor, to time the same kinds of work:
//!
//! - `linux_null_syscall`: one `getppid`;
//! - `linux_pipe_roundtrip`: an 8-byte word to a forked process over one
//!   pipe and back over another;
//! - `linux_pipe_roundtrip_3584`: the same with [`PAYLOAD_BYTES`] each way;
//! - `linux_futex_roundtrip`: two threads of one process wake each other
//!   through two futex words.
//!
//! Each round trip is timed with `rdtsc` (under QEMU's `-icount shift=0` one
//! tick per retired instruction) and the median of `iterations` (kernel
//! command line `iterations=N`) is printed as a `BENCH {...}` line in the
//! unit `tsc`; the host names the unit. The first thing `/init` does is read
//! the TSC, printed as [`INIT_MARKER`]. At the end it reports through QEMU's
//! `isa-debug-exit` port (0xf4), as Arbor's kernel does, or powers off.
//!
//! With `mode=http` on the command line it serves HTTP instead ([`http`]).
//!
//! Built for `x86_64-unknown-linux-musl` (static) by the host tool; on the
//! host it only compiles. The unsafe is the libc edge, each call with its
//! `SAFETY:` note; the forked child runs only async-signal-safe calls.

use linux_baseline::{
    DONE_MARKER, INIT_MARKER, PAYLOAD_BYTES, bench_line, iterations_from, median,
};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The port of QEMU's `isa-debug-exit` device and the values Arbor's kernel
/// writes to it.
const DEBUG_EXIT_PORT: u16 = 0xF4;
const EXIT_SUCCESS: u8 = 0x10;
const EXIT_FAILURE: u8 = 0x11;

mod http;

fn main() {
    let entry_tsc = rdtsc();
    say(&format!("{INIT_MARKER}{entry_tsc}"));
    if std::env::var("mode").as_deref() == Ok("http") {
        // Serves until the host stops the machine; returns only on failure.
        if let Err(error) = http::serve() {
            say(&format!("linux-baseline: http: {error}"));
        }
        leave(false);
    }
    let iterations = iterations_from(std::env::var("iterations").ok().as_deref());
    let warm_up = iterations / 10;
    let mut ok = true;
    let workloads: [(&str, &Workload); 4] = [
        ("linux_null_syscall", &null_syscall),
        ("linux_pipe_roundtrip", &|n| pipe_roundtrip(n, 8)),
        ("linux_pipe_roundtrip_3584", &|n| {
            pipe_roundtrip(n, PAYLOAD_BYTES)
        }),
        ("linux_futex_roundtrip", &futex_roundtrip),
    ];
    for (name, workload) in workloads {
        match workload(warm_up + iterations) {
            Ok(mut samples) => {
                let timed = &mut samples[warm_up as usize..];
                let value = median(timed).unwrap_or(0);
                say(&bench_line(name, value, "tsc", iterations));
            }
            Err(error) => {
                say(&format!("linux-baseline: {name} failed: {error}"));
                ok = false;
            }
        }
    }
    say(DONE_MARKER);
    leave(ok);
}

/// Runs a workload's given number of round trips; one sample per round trip.
type Workload = dyn Fn(u64) -> Result<Vec<u64>, String>;

/// Prints one line on the console and flushes it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The time-stamp counter.
fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and Linux leaves CR4.TSD
    // clear, so it runs in user mode; it reads a counter, nothing else.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `getppid` timed `rounds` times.
fn null_syscall(rounds: u64) -> Result<Vec<u64>, String> {
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = rdtsc();
        // SAFETY: getppid takes nothing and cannot fail.
        let parent = unsafe { libc::syscall(libc::SYS_getppid) };
        let end = rdtsc();
        std::hint::black_box(parent);
        samples.push(end.wrapping_sub(start));
    }
    Ok(samples)
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// A pipe's read and write ends.
fn pipe() -> Result<[libc::c_int; 2], String> {
    let mut ends = [0; 2];
    // SAFETY: `ends` is a writable array of two descriptors.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return Err(os_error("pipe"));
    }
    Ok(ends)
}

/// Reads exactly `buffer.len()` bytes; false on end of file or error.
fn read_all(fd: libc::c_int, buffer: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buffer.len() {
        // SAFETY: the range is inside `buffer`, writable.
        let got =
            unsafe { libc::read(fd, buffer[done..].as_mut_ptr().cast(), buffer.len() - done) };
        if got <= 0 {
            return false;
        }
        done += got as usize;
    }
    true
}

/// Writes all of `buffer`; false on error.
fn write_all(fd: libc::c_int, buffer: &[u8]) -> bool {
    let mut done = 0;
    while done < buffer.len() {
        // SAFETY: the range is inside `buffer`, readable.
        let put = unsafe { libc::write(fd, buffer[done..].as_ptr().cast(), buffer.len() - done) };
        if put <= 0 {
            return false;
        }
        done += put as usize;
    }
    true
}

/// `bytes` to a forked echo process and back, timed `rounds` times.
fn pipe_roundtrip(rounds: u64, bytes: usize) -> Result<Vec<u64>, String> {
    let [from_parent, to_child] = pipe()?;
    let [from_child, to_parent] = pipe()?;
    let mut buffer = vec![0u8; bytes];
    let mut echoed = vec![0u8; bytes];
    // SAFETY: this process has one thread here, so the child may run
    // anything; it still keeps to read, write, close and _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(os_error("fork"));
    }
    if child == 0 {
        // SAFETY: the parent's ends, unused in the child.
        unsafe {
            libc::close(to_child);
            libc::close(from_child);
        }
        while read_all(from_parent, &mut buffer) {
            if !write_all(to_parent, &buffer) {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(1) };
            }
        }
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: the child's ends, unused here.
    unsafe {
        libc::close(from_parent);
        libc::close(to_parent);
    }
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut failure = None;
    for round in 0..rounds {
        buffer[..8].copy_from_slice(&round.to_ne_bytes());
        let start = rdtsc();
        let sent = write_all(to_child, &buffer);
        let received = sent && read_all(from_child, &mut echoed);
        let end = rdtsc();
        if !received || echoed[..8] != buffer[..8] {
            failure = Some(format!("the echo process did not answer round {round}"));
            break;
        }
        samples.push(end.wrapping_sub(start));
    }
    let mut status = 0;
    // SAFETY: closing our ends tells the child to exit; `status` is writable.
    unsafe {
        libc::close(to_child);
        libc::close(from_child);
        libc::waitpid(child, &mut status, 0);
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(samples),
    }
}

/// Blocks while `word` holds `expected` (or returns at once if it does not).
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned u32 for the duration of the call;
    // FUTEX_WAIT only reads it and sleeps.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes one waiter on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as for futex_wait; FUTEX_WAKE does not touch the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Sets `word` to 1 and wakes its waiter.
fn post(word: &AtomicU32) {
    word.store(1, Ordering::Release);
    futex_wake(word);
}

/// Waits until `word` is 1, then sets it back to 0.
fn take(word: &AtomicU32) {
    while word
        .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        futex_wait(word, 0);
    }
}

/// Two threads pass a token through two futex words, timed `rounds` times.
fn futex_roundtrip(rounds: u64) -> Result<Vec<u64>, String> {
    let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let partner = {
        let words = Arc::clone(&words);
        std::thread::Builder::new()
            .name("futex-partner".into())
            .spawn(move || {
                for _ in 0..rounds {
                    take(&words[0]);
                    post(&words[1]);
                }
            })
            .map_err(|e| format!("cannot start the partner thread: {e}"))?
    };
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = rdtsc();
        post(&words[0]);
        take(&words[1]);
        samples.push(rdtsc().wrapping_sub(start));
    }
    partner
        .join()
        .map_err(|_| "the partner thread panicked".to_string())?;
    Ok(samples)
}

/// Ends the run: the verdict through `isa-debug-exit`, else power off.
fn leave(ok: bool) -> ! {
    // SAFETY: asks for access to one I/O port; harmless if refused.
    let port_allowed = unsafe { libc::ioperm(u64::from(DEBUG_EXIT_PORT), 1, 1) } == 0;
    if port_allowed {
        let value = if ok { EXIT_SUCCESS } else { EXIT_FAILURE };
        // SAFETY: ioperm granted this port; on QEMU's debug-exit device the
        // write ends the machine, elsewhere it is ignored.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") DEBUG_EXIT_PORT, in("al") value, options(nomem, nostack));
        }
    }
    // SAFETY: /init is the only process left; powering off is the intent.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // PID 1 must not exit (the kernel would panic); wait to be stopped.
    loop {
        std::thread::park();
    }
}
