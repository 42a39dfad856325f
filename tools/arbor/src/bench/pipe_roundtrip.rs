//! `host_pipe_roundtrip`: the host's own pipe round trip, a host-only figure
//! (`cargo arbor bench host_pipe`). Two processes pinned to one CPU pass an
//! 8-byte word back and forth over two pipes; each round trip is timed with
//! the TSC. It is not the same work on the same machine as any guest figure,
//! so it is in no ratio: the Linux guest's `linux_pipe_roundtrip` is.
//!
//! The unsafe here is the libc edge (affinity, fork, raw read/write in the
//! child, waitpid), each call in a small function with its `SAFETY:` note.
//! The forked child runs only async-signal-safe calls: the parent may have
//! other threads (test harnesses do), and after `fork` the child must not
//! allocate or take a lock one of them held.

use linux_baseline::median;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};

/// Round trips timed in a benchmark run: the issue asks for at least 100,000.
pub const ITERATIONS: usize = 100_000;

/// Round trips done before timing starts, so caches, the scheduler and the
/// CPU's frequency settle first.
const WARM_UP: usize = 1_000;

/// The outcome of one measurement.
#[derive(Clone, Copy, Debug)]
pub struct PipeRoundtrip {
    /// Median TSC cycles for write word → child reads and writes it back → read it.
    pub median_cycles: u64,
    /// The CPU both processes were pinned to.
    pub cpu: usize,
    /// How many round trips were timed.
    pub iterations: usize,
}

/// Runs the ping-pong `iterations` times (after a short warm-up) and returns
/// the median round trip in TSC cycles.
///
/// The work happens on a thread of its own: pinning applies to the calling
/// thread, and the rest of `cargo arbor` should stay free to run anywhere.
pub fn measure(iterations: usize) -> Result<PipeRoundtrip, String> {
    if iterations == 0 {
        return Err("the pipe benchmark needs at least one iteration".into());
    }
    std::thread::Builder::new()
        .name("pipe-roundtrip".into())
        .spawn(move || measure_on_this_thread(iterations))
        .map_err(|e| format!("cannot start the pipe benchmark's thread: {e}"))?
        .join()
        .map_err(|_| "the pipe benchmark's thread panicked".to_string())?
}

fn measure_on_this_thread(iterations: usize) -> Result<PipeRoundtrip, String> {
    let cpu = first_allowed_cpu()?;
    pin_this_thread(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    // std's pipes are close-on-exec, so a process another thread spawns
    // meanwhile cannot keep an end open and hide the child's end-of-file.
    let (from_parent, mut to_child) =
        std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let (mut from_child, to_parent) =
        std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;

    let child = fork_echo(
        cpu,
        EchoEnds {
            read: from_parent.as_raw_fd(),
            write: to_parent.as_raw_fd(),
            close: [to_child.as_raw_fd(), from_child.as_raw_fd()],
        },
    )?;
    // The child's ends belong to the child now.
    drop(from_parent);
    drop(to_parent);

    let timed = ping_pong(&mut to_child, &mut from_child, iterations);
    // Closing our write end is the child's signal to exit.
    drop(to_child);
    let child_status = wait_for(child);
    let mut samples = timed?;
    child_status?;
    let median_cycles = median(&mut samples).ok_or("no round trip was timed")?;
    Ok(PipeRoundtrip {
        median_cycles,
        cpu,
        iterations,
    })
}

/// Sends a word, waits for it to come back, and records the cycles each
/// round trip took.
fn ping_pong(
    to_child: &mut impl Write,
    from_child: &mut impl Read,
    iterations: usize,
) -> Result<Vec<u64>, String> {
    let mut samples = Vec::with_capacity(iterations);
    let mut echoed = [0u8; 8];
    for round in 0..WARM_UP + iterations {
        let word = (round as u64).to_ne_bytes();
        let start = timestamp();
        to_child
            .write_all(&word)
            .map_err(|e| format!("writing to the echo process: {e}"))?;
        from_child
            .read_exact(&mut echoed)
            .map_err(|e| format!("reading from the echo process: {e}"))?;
        let end = timestamp();
        if echoed != word {
            return Err(format!(
                "the echo process answered {echoed:?} to {word:?} in round {round}"
            ));
        }
        if round >= WARM_UP {
            samples.push(end.wrapping_sub(start));
        }
    }
    Ok(samples)
}

/// The time-stamp counter, the clock the guest's figures use too.
fn timestamp() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and, unless CR4.TSD is set
    // (Linux leaves it clear for ordinary processes), runs at any privilege
    // level; it reads a counter and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The lowest-numbered CPU this thread may run on.
fn first_allowed_cpu() -> Result<usize, String> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let result = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, inside the set's bits.
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .ok_or_else(|| "this thread may run on no CPU at all".to_string())
}

/// Pins the calling thread to `cpu`; async-signal-safe, so the forked child
/// may call it too.
fn pin_this_thread(cpu: usize) -> Result<(), std::io::Error> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the caller's `cpu` came from first_allowed_cpu, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let result = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The descriptors the echo child uses, and the parent's ends it must close.
struct EchoEnds {
    read: RawFd,
    write: RawFd,
    close: [RawFd; 2],
}

/// Forks the echo process and returns its pid.
fn fork_echo(cpu: usize, ends: EchoEnds) -> Result<libc::pid_t, String> {
    // SAFETY: the child branch below calls only async-signal-safe functions
    // (close, sched_setaffinity, read, write, _exit) on memory that was set up
    // before the fork, and never returns into Rust code that might allocate.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(format!(
            "cannot fork the echo process: {}",
            std::io::Error::last_os_error()
        )),
        0 => echo_child(cpu, &ends),
        child => Ok(child),
    }
}

/// The child: read a word, write it back, until the parent closes its end.
fn echo_child(cpu: usize, ends: &EchoEnds) -> ! {
    for fd in ends.close {
        // SAFETY: `fd` is the parent's end of a pipe, duplicated into this
        // process by fork; nothing in the child uses it.
        unsafe { libc::close(fd) };
    }
    // The affinity is inherited from the forking thread; set it again so the
    // child's placement does not depend on that detail.
    let status = if pin_this_thread(cpu).is_err() {
        2
    } else {
        echo_loop(ends.read, ends.write)
    };
    // SAFETY: _exit ends the process at once, without running the parent's
    // atexit handlers or flushing its copied stdio buffers twice.
    unsafe { libc::_exit(status) }
}

/// Returns 0 when the parent closed the pipe, 1 on any other failure.
fn echo_loop(read_fd: RawFd, write_fd: RawFd) -> i32 {
    let mut word = [0u8; 8];
    loop {
        // SAFETY: `word` is a writable buffer of the length passed.
        let got = unsafe { libc::read(read_fd, word.as_mut_ptr().cast(), word.len()) };
        match got {
            0 => return 0,
            8 => {}
            -1 if interrupted() => continue,
            // Pipe writes of 8 bytes are atomic (PIPE_BUF is at least 512),
            // so a short read means something else is wrong.
            _ => return 1,
        }
        loop {
            // SAFETY: `word` is a readable buffer of the length passed.
            let put = unsafe { libc::write(write_fd, word.as_ptr().cast(), word.len()) };
            match put {
                8 => break,
                -1 if interrupted() => continue,
                _ => return 1,
            }
        }
    }
}

fn interrupted() -> bool {
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
}

/// Waits for the echo child and checks that it ended cleanly.
fn wait_for(pid: libc::pid_t) -> Result<(), String> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid place for waitpid to write; `pid` is our child.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result == pid {
            break;
        }
        if result == -1 && interrupted() {
            continue;
        }
        return Err(format!(
            "waiting for the echo process: {}",
            std::io::Error::last_os_error()
        ));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(format!(
            "the echo process failed with status {}",
            libc::WEXITSTATUS(status)
        ))
    } else {
        Err(format!(
            "the echo process ended abnormally (wait status {status:#x})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_measures_a_positive_median() {
        let result = measure(200).expect("the pipe benchmark runs");
        assert!(result.median_cycles > 0);
        assert_eq!(result.iterations, 200);
    }
}
