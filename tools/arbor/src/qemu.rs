//! Booting a scenario in QEMU: choosing the accelerator, building the command
//! line, streaming the serial log, and reading how the guest ended.

use crate::scenarios::{self, LoadedScenario};
use crate::{archive, setup, workspace};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The port of QEMU's `isa-debug-exit` device; the kernel writes its verdict here.
const DEBUG_EXIT_PORT: &str = "0xf4";
/// QEMU exits with `(value << 1) | 1` for a value written to the debug-exit port;
/// the kernel writes 0x10 for success and 0x11 for failure.
const GUEST_SUCCESS: i32 = (0x10 << 1) | 1;
const GUEST_FAILURE: i32 = (0x11 << 1) | 1;

/// Which accelerator the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when /dev/kvm is usable, TCG otherwise.
    Auto,
    /// KVM, or an error if it is not usable.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

/// The accelerator a run actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Whether this process may open /dev/kvm for reading and writing.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

impl AccelChoice {
    /// Settles the choice on this machine.
    pub fn resolve(self) -> Result<Accel, String> {
        match self {
            AccelChoice::Tcg => Ok(Accel::Tcg),
            AccelChoice::Auto if kvm_usable() => Ok(Accel::Kvm),
            AccelChoice::Auto => {
                eprintln!("arbor: /dev/kvm is missing or not accessible; using TCG");
                Ok(Accel::Tcg)
            }
            AccelChoice::Kvm if kvm_usable() => Ok(Accel::Kvm),
            AccelChoice::Kvm => Err("--accel kvm: /dev/kvm is missing or not accessible".into()),
        }
    }
}

impl Accel {
    /// A word for logs and benchmark output.
    pub fn describe(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

/// Everything QEMU needs to boot one scenario.
pub struct Launch {
    pub kernel: PathBuf,
    pub archive: PathBuf,
    pub memory_mib: u64,
    pub kernel_args: String,
    pub accel: Accel,
}

impl Launch {
    fn command(&self) -> Command {
        let mut command = Command::new(setup::QEMU);
        command
            .args(["-machine", "q35", "-m"])
            .arg(format!("{}M", self.memory_mib))
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.archive)
            .args(["-append", &self.kernel_args])
            .args([
                "-serial",
                "stdio",
                "-display",
                "none",
                "-monitor",
                "none",
                "-no-reboot",
            ])
            .args([
                "-device",
                &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT},iosize=0x04"),
            ]);
        match self.accel {
            // Measured here: QEMU 7.2 aborts under KVM with plain `-cpu host`
            // ("failed to set MSR 0x10a", IA32_ARCH_CAPABILITIES); leaving that
            // MSR out boots fine and changes nothing the kernel uses.
            Accel::Kvm => command.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
            Accel::Tcg => command.args(["-accel", "tcg", "-cpu", "max"]),
        };
        command
    }
}

/// How a guest run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestEnd {
    /// The kernel reported success through the debug-exit port.
    Success,
    /// The kernel reported failure through the debug-exit port.
    Failure,
    /// QEMU ended without a verdict from the kernel: a triple fault under
    /// `-no-reboot`, a crash, or a signal.
    NoVerdict { status: String },
    /// The run took longer than allowed and was stopped.
    Timeout { after: Duration },
    /// The host stopped the guest because it had seen what it waited for.
    Stopped,
}

/// Whether [`boot`] should keep the guest running after a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continue {
    /// Keep going.
    Go,
    /// Stop the guest now.
    Stop,
}

impl GuestEnd {
    fn from_status(status: std::process::ExitStatus) -> Self {
        match status.code() {
            Some(GUEST_SUCCESS) => GuestEnd::Success,
            Some(GUEST_FAILURE) => GuestEnd::Failure,
            Some(0) => GuestEnd::NoVerdict {
                status: "QEMU exited 0 without a verdict: the guest reset or triple-faulted".into(),
            },
            _ => GuestEnd::NoVerdict {
                status: format!("QEMU ended with {status}"),
            },
        }
    }
}

/// Builds the kernel and the scenario's components, packs its boot archive
/// and settles the accelerator.
pub fn prepare(scenario: &LoadedScenario, accel: AccelChoice) -> Result<Launch, String> {
    let kernel = build(&archive::binaries_needed(scenario))?;
    prepare_with(scenario, kernel, accel.resolve()?)
}

/// Builds the kernel and the given component binaries in one cargo run;
/// returns the kernel's path (the components land beside it).
pub fn build(components: &[String]) -> Result<PathBuf, String> {
    setup::ensure_target()?;
    // The kernel is built on its own: in one cargo run, features unify
    // across packages, and a component's dependencies (serde with `alloc`
    // through bitflags) would pull liballoc into the allocator-free kernel.
    let binaries = workspace::build_target_binaries(&["arbor-kernel"])?;
    if !components.is_empty() {
        let packages: Vec<&str> = components.iter().map(String::as_str).collect();
        workspace::build_target_binaries(&packages)?;
    }
    Ok(binaries.into_iter().next().unwrap_or_default())
}

/// Packs the scenario's archive against an already built kernel and components.
pub fn prepare_with(
    scenario: &LoadedScenario,
    kernel: PathBuf,
    accel: Accel,
) -> Result<Launch, String> {
    setup::ensure_qemu()?;
    let out_dir = kernel.parent().map(PathBuf::from).unwrap_or_default();
    let archive = archive::pack(scenario, &out_dir, &out_dir)?;
    Ok(Launch {
        kernel,
        archive,
        memory_mib: scenario.scenario.machine.memory.mebibytes(),
        kernel_args: scenario.scenario.kernel.args.clone(),
        accel,
    })
}

/// Boots `launch`, hands each serial line to `on_line` as it arrives, and
/// stops the guest after `timeout`.
pub fn boot(
    launch: &Launch,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(&str) -> Continue,
) -> Result<GuestEnd, String> {
    let mut child = launch
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", setup::QEMU))?;
    let stdout = child.stdout.take().ok_or("QEMU's output is not readable")?;
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buffer = Vec::new();
        while reader.read_until(b'\n', &mut buffer).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buffer);
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            if lines_tx.send(line).is_err() {
                break;
            }
            buffer.clear();
        }
    });

    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match lines_rx.recv_timeout(wait) {
            Ok(line) => {
                if on_line(&line) == Continue::Stop {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Ok(GuestEnd::Stopped);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Ok(GuestEnd::Timeout {
                        after: started.elapsed(),
                    });
                }
            }
        }
    }
    let _ = reader.join();
    let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
    Ok(GuestEnd::from_status(status))
}

/// `cargo arbor run`: boot one scenario and stream its log.
pub fn run_command(name: &str, accel: AccelChoice) -> Result<ExitCode, String> {
    let scenario = scenarios::load(&scenarios::locate(name)?)?;
    let launch = prepare(&scenario, accel)?;
    let timeout = scenario
        .scenario
        .test
        .as_ref()
        .map(|t| Duration::from_millis(t.timeout.millis));
    eprintln!(
        "arbor: booting scenario \"{}\" ({}) with {}, {} MiB{}",
        scenario.name,
        scenario.scenario.description,
        launch.accel.describe(),
        launch.memory_mib,
        timeout.map_or(String::new(), |t| format!(", timeout {}s", t.as_secs_f32())),
    );
    let mut progress = scenario
        .scenario
        .test
        .as_ref()
        .map(crate::test::Progress::new);
    let end = boot(&launch, timeout, |line| {
        println!("{line}");
        progress.as_mut().map_or(Continue::Go, |p| p.feed(line))
    })?;
    match end {
        GuestEnd::Stopped => {
            eprintln!("arbor: every expected line appeared; stopped the still-running system");
            Ok(ExitCode::SUCCESS)
        }
        GuestEnd::Success => {
            eprintln!("arbor: the guest reported success");
            Ok(ExitCode::SUCCESS)
        }
        GuestEnd::Failure => {
            eprintln!("arbor: the guest reported failure");
            Ok(ExitCode::from(1))
        }
        GuestEnd::NoVerdict { status } => {
            eprintln!("arbor: {status}");
            Ok(ExitCode::from(2))
        }
        GuestEnd::Timeout { after } => {
            eprintln!(
                "arbor: stopped the guest after {:.1}s (the scenario's timeout)",
                after.as_secs_f32()
            );
            Ok(ExitCode::from(3))
        }
    }
}
