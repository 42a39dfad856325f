//! Booting a scenario in QEMU: choosing the accelerator, building the command
//! line, streaming the serial log, and reading how the guest ended.
//!
//! Choosing KVM takes three findings into account: whether `/dev/kvm` answers
//! `KVM_GET_API_VERSION` with 12 (not merely whether it opens), whether QEMU
//! then manages to initialise KVM (if not, an `auto` run boots again with
//! TCG), and whether an earlier run on this machine saw the kernel report
//! that `syscall` stays in ring 3 there (slow nested KVM; remembered in
//! `TARGET_DIR/arbor/kvm-slow`, after which `auto` prefers TCG).

use crate::scenarios::{self, LoadedScenario};
use crate::{archive, setup, workspace};
use anyhow::{Context, Result, anyhow, bail};
use arbor_config::{Device, Forward, MAX_SLOT, assign_slots};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
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

/// The KVM API version every kernel since 2.6.22 reports; anything else
/// means a device this tool (and QEMU) cannot use.
const KVM_API_VERSION: i32 = 12;
/// `_IO(KVMIO, 0x00)`: asks /dev/kvm for its API version; takes no argument.
const KVM_GET_API_VERSION: u64 = 0xAE00;

/// What the kernel prints (once) when this machine's `syscall` leaves the
/// CPU in ring 3 and every system call has to be repaired from its fault
/// (base/kernel/src/kernel/mod.rs): KVM works, but slower than TCG.
pub const KVM_SLOW_LINE: &str = "this machine's syscall stays in ring 3";
/// The file under the target directory that remembers [`KVM_SLOW_LINE`].
const KVM_SLOW_FILE: &str = "kvm-slow";

/// Set once QEMU failed to initialise KVM in this run: later launches of an
/// `auto` run go straight to TCG.
static KVM_FAILED_IN_QEMU: AtomicBool = AtomicBool::new(false);

/// Judges the answer to `KVM_GET_API_VERSION`.
pub fn judge_kvm_api_version(answer: std::io::Result<i32>) -> Result<(), String> {
    match answer {
        Ok(KVM_API_VERSION) => Ok(()),
        Ok(other) => Err(format!(
            "/dev/kvm reports API version {other}, not {KVM_API_VERSION}"
        )),
        Err(error) => Err(format!(
            "/dev/kvm does not answer KVM_GET_API_VERSION: {error}"
        )),
    }
}

/// Opens /dev/kvm and asks its API version: `Ok` when KVM is usable, else why not.
pub fn probe_kvm() -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    // SAFETY: KVM_GET_API_VERSION takes no argument and touches no memory of
    // ours; the descriptor is open for the duration of the call.
    let answer = unsafe { libc::ioctl(device.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    judge_kvm_api_version(if answer < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(answer)
    })
}

/// Whether a line QEMU printed on stderr says it could not initialise KVM.
pub fn is_kvm_init_failure(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    line.contains("failed to initialize kvm") || line.contains("could not access kvm")
}

/// What `auto` chooses from what is known: the probe, whether an earlier run
/// recorded slow KVM, and whether QEMU already failed to use KVM in this run.
/// Returns the accelerator and, for TCG, why.
pub fn choose_auto(
    probe: Result<(), String>,
    recorded_slow: Option<&std::path::Path>,
    failed_in_qemu: bool,
) -> (Accel, Option<String>) {
    if let Err(why) = probe {
        return (Accel::Tcg, Some(format!("{why}; using TCG")));
    }
    if failed_in_qemu {
        return (
            Accel::Tcg,
            Some("QEMU could not initialise KVM earlier in this run; using TCG".into()),
        );
    }
    if let Some(file) = recorded_slow {
        return (
            Accel::Tcg,
            Some(format!(
                "using TCG: an earlier run found that this machine's syscall stays in ring 3 \
                 under KVM, so every system call is repaired from a fault (slower than TCG); \
                 recorded in {} (delete it to try KVM again, or pass --accel kvm)",
                file.display()
            )),
        );
    }
    (Accel::Kvm, None)
}

/// The file that remembers slow KVM, when it exists.
fn recorded_kvm_slow() -> Option<PathBuf> {
    let file = workspace::state_dir().ok()?.join(KVM_SLOW_FILE);
    file.is_file().then_some(file)
}

/// Remembers that the kernel reported slow KVM on this machine.
fn record_kvm_slow() {
    let Ok(dir) = workspace::state_dir() else {
        return;
    };
    let file = dir.join(KVM_SLOW_FILE);
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &file,
            "The kernel reported that syscall stays in ring 3 under KVM on this machine;\n\
             `cargo arbor run --accel auto` uses TCG while this file exists.\n",
        )
    });
    match written {
        Ok(()) => eprintln!(
            "arbor: KVM on this machine leaves syscall in ring 3 (slow); recorded in {}, \
             so `--accel auto` uses TCG from now on",
            file.display()
        ),
        Err(error) => eprintln!(
            "arbor: cannot record slow KVM in {}: {error}",
            file.display()
        ),
    }
}

impl AccelChoice {
    /// Settles the choice on this machine.
    pub fn resolve(self) -> Result<Accel> {
        match self {
            AccelChoice::Tcg => Ok(Accel::Tcg),
            AccelChoice::Auto => {
                let (accel, why) = choose_auto(
                    probe_kvm(),
                    recorded_kvm_slow().as_deref(),
                    KVM_FAILED_IN_QEMU.load(Ordering::Relaxed),
                );
                if let Some(why) = why {
                    eprintln!("arbor: {why}");
                }
                Ok(accel)
            }
            AccelChoice::Kvm => match probe_kvm() {
                Ok(()) => Ok(Accel::Kvm),
                Err(why) => bail!("--accel kvm: {why}"),
            },
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
    /// The scenario's PCI devices, each with its slot and QEMU arguments.
    pub devices: Vec<PciDevice>,
    /// Whether to boot again with TCG when QEMU cannot initialise KVM
    /// (the user asked for `auto`, not for KVM).
    pub may_fall_back: bool,
    /// More QEMU arguments, after the accelerator's (e.g. `cargo arbor
    /// bench`'s `-icount` for instruction-exact timing).
    pub extra_args: Vec<String>,
}

impl Launch {
    /// The TCP ports forwarded from the host's 127.0.0.1 to the guest,
    /// with every `host: 0` replaced by the free port the tool picked.
    pub fn forwards(&self) -> Vec<Forward> {
        self.devices
            .iter()
            .flat_map(|device| device.forwards.iter().copied())
            .collect()
    }
}

/// The scenario's devices with every forward's `host: 0` replaced by a
/// free port of the host's 127.0.0.1. Each is found by binding port 0 and
/// reading the port the kernel chose; all stay bound until every one is
/// picked (so they differ), then are released for QEMU to take.
pub fn with_free_ports(devices: &[Device]) -> Result<Vec<Device>> {
    let mut held = Vec::new();
    let mut resolved = devices.to_vec();
    for device in &mut resolved {
        let Device::VirtioNet { forward, .. } = device else {
            continue;
        };
        for entry in forward.iter_mut().filter(|entry| entry.host == 0) {
            let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .context("finding a free port on 127.0.0.1")?;
            entry.host = listener.local_addr()?.port();
            held.push(listener);
        }
    }
    Ok(resolved)
}

/// What `cargo arbor run` prints about the forwards: where to point a client.
pub fn forward_lines(forwards: &[Forward]) -> String {
    forwards
        .iter()
        .map(|forward| {
            let url = if forward.guest == 80 || forward.guest == 8080 {
                format!(" (http://127.0.0.1:{}/)", forward.host)
            } else {
                String::new()
            };
            format!(
                "arbor: host 127.0.0.1:{} -> guest port {}{url}\n",
                forward.host, forward.guest
            )
        })
        .collect()
}

impl Launch {
    fn command(&self, accel: Accel) -> Command {
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
        // Without `-vga none`, q35's VGA takes slot 1 and shifts the rest.
        command.args(["-vga", "none"]);
        // Without `-nic none`, q35's default e1000e takes the first free
        // slot, which a scenario's device may have pinned.
        command.args(["-nic", "none"]);
        for device in &self.devices {
            command.args(&device.arguments);
        }
        match accel {
            // Measured here: QEMU 7.2 aborts under KVM with plain `-cpu host`
            // ("failed to set MSR 0x10a", IA32_ARCH_CAPABILITIES); leaving that
            // MSR out boots fine and changes nothing the kernel uses.
            Accel::Kvm => command.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
            Accel::Tcg => command.args(["-accel", "tcg", "-cpu", "max"]),
        };
        command.args(&self.extra_args);
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
    /// Stop the guest after [`LINGER`], taking the lines that still come
    /// (what follows a failure usually explains it).
    Linger,
}

/// How long [`Continue::Linger`] keeps reading.
pub const LINGER: Duration = Duration::from_millis(500);

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
pub fn prepare(scenario: &LoadedScenario, accel: AccelChoice) -> Result<Launch> {
    let kernel = build(&archive::binaries_needed(scenario))?;
    let mut launch = prepare_with(scenario, kernel, accel.resolve()?)?;
    launch.may_fall_back = accel == AccelChoice::Auto;
    Ok(launch)
}

/// Builds the kernel and the given component binaries in one cargo run;
/// returns the kernel's path (the components land beside it).
pub fn build(components: &[String]) -> Result<PathBuf> {
    setup::ensure_target().map_err(|e| anyhow!(e))?;
    // The kernel is built on its own: in one cargo run, features unify
    // across packages, and a component's dependencies (serde with `alloc`
    // through bitflags) would pull liballoc into the allocator-free kernel.
    let binaries = workspace::build_target_binaries(&["arbor-kernel"])?;
    if !components.is_empty() {
        let packages: Vec<&str> = components.iter().map(String::as_str).collect();
        workspace::build_target_binaries(&packages)?;
    }
    binaries
        .into_iter()
        .next()
        .context("cargo built no kernel binary")
}

/// Packs the scenario's archive against an already built kernel and components.
pub fn prepare_with(scenario: &LoadedScenario, kernel: PathBuf, accel: Accel) -> Result<Launch> {
    setup::ensure_qemu().map_err(|e| anyhow!(e))?;
    crate::disk_image::build_all(&scenario.scenario.machine.devices)?;
    let devices = with_free_ports(&scenario.scenario.machine.devices)?;
    let out_dir = kernel.parent().map(PathBuf::from).unwrap_or_default();
    let archive = archive::pack(scenario, &out_dir, &out_dir)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("packing the boot archive of scenario \"{}\"", scenario.name))?;
    Ok(Launch {
        kernel,
        archive,
        memory_mib: scenario.scenario.machine.memory.mebibytes(),
        kernel_args: scenario.scenario.kernel.args.clone(),
        accel,
        devices: pci_devices(&devices, &scenarios::directory())?,
        may_fall_back: false,
        extra_args: Vec::new(),
    })
}

/// One scenario device as QEMU gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Its slot on bus 0.
    pub slot: u8,
    /// The scenario's kind.
    pub kind: &'static str,
    /// What backs it, for the device table.
    pub backing: String,
    /// The QEMU arguments that create it.
    pub arguments: Vec<String>,
    /// The TCP ports forwarded to it (a `VirtioNet`'s, host ports picked).
    pub forwards: Vec<Forward>,
}

/// QEMU arguments for the scenario's devices, each pinned to its slot
/// (`addr=0xN`), with disks resolved against `directory`.
pub fn pci_devices(devices: &[Device], directory: &Path) -> Result<Vec<PciDevice>> {
    let slots = assign_slots(devices);
    let mut out = Vec::new();
    for (n, (device, slot)) in devices.iter().zip(slots).enumerate() {
        let slot = slot
            .filter(|s| (1..=MAX_SLOT).contains(s))
            .with_context(|| {
                format!(
                    "device {n} ({}) has no valid PCI slot; run `cargo arbor check`",
                    device.kind()
                )
            })?;
        let addr = format!("addr={slot:#x}");
        let (backing, arguments) = match device {
            Device::VirtioBlk { disk, image, .. } => {
                let path = match (disk, image) {
                    (Some(disk), _) => directory.join(disk),
                    (None, Some(image)) => crate::disk_image::path_of(image),
                    (None, None) => bail!("VirtioBlk names no disk; run `cargo arbor check`"),
                };
                if !path.exists() {
                    bail!("VirtioBlk's disk {} does not exist", path.display());
                }
                (
                    format!("raw image {}", path.display()),
                    vec![
                        "-drive".into(),
                        format!("file={},if=none,id=disk{n},format=raw", path.display()),
                        "-device".into(),
                        format!("virtio-blk-pci,drive=disk{n},{addr}"),
                    ],
                )
            }
            Device::VirtioNet { forward, .. } => {
                // Loopback only: nothing outside this machine reaches the guest.
                let mut netdev = format!("user,id=net{n}");
                let mut backing = String::from("QEMU user networking, 10.0.2.0/24");
                for Forward { host, guest } in forward {
                    netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
                    backing.push_str(&format!(", 127.0.0.1:{host} -> {guest}"));
                }
                (
                    backing,
                    vec![
                        "-netdev".into(),
                        netdev,
                        "-device".into(),
                        format!("virtio-net-pci,netdev=net{n},{addr}"),
                    ],
                )
            }
            Device::VirtioGpu { .. } => (
                String::from("no display (QMP screendump)"),
                vec!["-device".into(), format!("virtio-gpu-pci,{addr}")],
            ),
            Device::VirtioKeyboard { .. } => (
                String::from("QMP input events"),
                vec!["-device".into(), format!("virtio-keyboard-pci,{addr}")],
            ),
            Device::VirtioTablet { .. } => (
                String::from("QMP input events"),
                vec!["-device".into(), format!("virtio-tablet-pci,{addr}")],
            ),
        };
        out.push(PciDevice {
            slot,
            kind: device.kind(),
            backing,
            arguments,
            forwards: arbor_config::forwards(core::slice::from_ref(device)),
        });
    }
    Ok(out)
}

/// The device table `cargo arbor run` prints: slot, kind, the IOAPIC input
/// its INTA reaches (q35: GSI 20 + slot % 4) and what backs it.
pub fn device_table(devices: &[PciDevice]) -> String {
    let mut table = String::from("arbor: PCI devices (bus 0, -vga none):\n");
    table.push_str("  slot  kind            irq  backing\n");
    for device in devices {
        table.push_str(&format!(
            "  00:{:02x}  {:<14}  {:>3}  {}\n",
            device.slot,
            device.kind,
            20 + device.slot % 4,
            device.backing
        ));
    }
    table
}

/// Boots `launch`, hands each serial line to `on_line` as it arrives, and
/// stops the guest after `timeout`. When QEMU cannot initialise KVM and the
/// launch may fall back, boots again with TCG and says so.
pub fn boot(
    launch: &Launch,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(&str) -> Continue,
) -> Result<GuestEnd> {
    let mut accel = launch.accel;
    if accel == Accel::Kvm && launch.may_fall_back && KVM_FAILED_IN_QEMU.load(Ordering::Relaxed) {
        accel = Accel::Tcg;
    }
    let attempt = boot_once(launch, accel, timeout, &mut on_line)?;
    if accel == Accel::Kvm && attempt.kvm_init_failed && attempt.lines == 0 {
        KVM_FAILED_IN_QEMU.store(true, Ordering::Relaxed);
        if !launch.may_fall_back {
            bail!(
                "QEMU could not initialise KVM (see its message above); --accel auto or tcg boots with TCG instead"
            );
        }
        eprintln!(
            "arbor: QEMU could not initialise KVM (see its message above); booting again with TCG"
        );
        return Ok(boot_once(launch, Accel::Tcg, timeout, &mut on_line)?.end);
    }
    Ok(attempt.end)
}

/// What one QEMU process did.
struct Attempt {
    end: GuestEnd,
    /// Serial lines the guest printed.
    lines: usize,
    /// QEMU said on stderr that it could not initialise KVM.
    kvm_init_failed: bool,
}

fn boot_once(
    launch: &Launch,
    accel: Accel,
    timeout: Option<Duration>,
    on_line: &mut impl FnMut(&str) -> Continue,
) -> Result<Attempt> {
    let mut child = launch
        .command(accel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", setup::QEMU))?;
    let stdout = child
        .stdout
        .take()
        .context("QEMU's output is not readable")?;
    let stderr = child
        .stderr
        .take()
        .context("QEMU's error output is not readable")?;
    // QEMU's own messages pass through to ours, watched for a KVM failure.
    let kvm_init_failed = Arc::new(AtomicBool::new(false));
    let stderr_reader = {
        let kvm_init_failed = Arc::clone(&kvm_init_failed);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kvm_init_failed.fetch_or(is_kvm_init_failure(&line), Ordering::Relaxed);
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        })
    };
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
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };

    let started = Instant::now();
    let mut deadline = timeout.map(|t| started + t);
    let mut lingering = false;
    let mut lines = 0;
    let mut told_slow = false;
    let end = loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match lines_rx.recv_timeout(wait) {
            Ok(line) => {
                lines += 1;
                if accel == Accel::Kvm && !told_slow && line.contains(KVM_SLOW_LINE) {
                    told_slow = true;
                    record_kvm_slow();
                }
                match on_line(&line) {
                    Continue::Go => {}
                    Continue::Stop => {
                        stop(&mut child);
                        break GuestEnd::Stopped;
                    }
                    Continue::Linger if !lingering => {
                        lingering = true;
                        let soon = Instant::now() + LINGER;
                        deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
                    }
                    Continue::Linger => {}
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().context("waiting for QEMU")?;
                break GuestEnd::from_status(status);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    stop(&mut child);
                    break if lingering {
                        GuestEnd::Stopped
                    } else {
                        GuestEnd::Timeout {
                            after: started.elapsed(),
                        }
                    };
                }
            }
        }
    };
    let _ = reader.join();
    let _ = stderr_reader.join();
    Ok(Attempt {
        end,
        lines,
        kvm_init_failed: kvm_init_failed.load(Ordering::Relaxed),
    })
}

/// `cargo arbor run`: boot one scenario and stream its log.
pub fn run_command(name: &str, accel: AccelChoice, screenshot: Option<&Path>) -> Result<ExitCode> {
    let scenario = scenarios::locate(name)
        .and_then(|path| scenarios::load(&path))
        .map_err(|e| anyhow!(e))?;
    let mut launch = prepare(&scenario, accel)?;
    let mut shot = crate::screenshot::RunShot::prepare(screenshot, &scenario, &mut launch)?;
    let window = crate::screenshot::open_window(&mut launch, shot.is_some());
    // A guest reachable from the host keeps running for the user's
    // clients (until Ctrl-C), like one with a window.
    let forwarded = !launch.forwards().is_empty();
    let keep_running = window || forwarded;
    let timeout = scenario
        .scenario
        .test
        .as_ref()
        .map(|t| Duration::from_millis(t.timeout.millis))
        .filter(|_| !keep_running);
    if !launch.devices.is_empty() {
        eprint!("{}", device_table(&launch.devices));
    }
    eprint!("{}", forward_lines(&launch.forwards()));
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
    let mut told_ready = false;
    let end = boot(&launch, timeout, |line| {
        println!("{line}");
        // A run shows everything: only "all expected lines seen" stops it.
        match progress.as_mut().map_or(Continue::Go, |p| p.feed(line)) {
            Continue::Stop if progress.as_ref().is_some_and(|p| p.failure().is_none()) => {
                if let Some(shot) = shot.as_mut() {
                    shot.take();
                }
                if forwarded && !told_ready {
                    told_ready = true;
                    eprintln!(
                        "arbor: the scenario is ready; it keeps running for clients until Ctrl-C"
                    );
                }
                if keep_running {
                    Continue::Go
                } else {
                    Continue::Stop
                }
            }
            _ => Continue::Go,
        }
    })?;
    if let Some(failure) = progress.as_ref().and_then(|p| p.failure()) {
        eprintln!("arbor: the scenario's test would fail: {failure}");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn devices_are_pinned_to_their_slots_and_tabled() {
        let devices = [
            Device::VirtioNet {
                forward: Vec::new(),
                slot: None,
            },
            Device::VirtioKeyboard { slot: Some(4) },
            Device::VirtioTablet { slot: None },
        ];
        let pci = pci_devices(&devices, Path::new("/nonexistent")).unwrap();
        assert_eq!(
            pci[0].arguments,
            [
                "-netdev",
                "user,id=net0",
                "-device",
                "virtio-net-pci,netdev=net0,addr=0x1"
            ]
        );
        assert_eq!(
            pci[1].arguments,
            ["-device", "virtio-keyboard-pci,addr=0x4"]
        );
        assert_eq!(pci[2].slot, 2);
        let table = device_table(&pci);
        assert!(
            table.contains("  00:04  VirtioKeyboard   20  QMP input events"),
            "{table}"
        );
        let forwarded = [Device::VirtioNet {
            forward: vec![
                Forward {
                    host: 8080,
                    guest: 80,
                },
                Forward { host: 0, guest: 7 },
            ],
            slot: Some(3),
        }];
        let resolved = with_free_ports(&forwarded).unwrap();
        let pci = pci_devices(&resolved, Path::new("/nonexistent")).unwrap();
        let forwards = &pci[0].forwards;
        assert_eq!(forwards[0].host, 8080);
        let picked = forwards[1].host;
        assert_ne!(picked, 0);
        assert_eq!(
            pci[0].arguments[1],
            format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:{picked}-:7"
            )
        );
        assert_eq!(
            forward_lines(forwards),
            format!(
                "arbor: host 127.0.0.1:8080 -> guest port 80 (http://127.0.0.1:8080/)\n\
                 arbor: host 127.0.0.1:{picked} -> guest port 7\n"
            )
        );
        let missing = [Device::VirtioBlk {
            disk: Some("no.img".into()),
            image: None,
            size: None,
            format: None,
            files: Vec::new(),
            slot: None,
        }];
        assert!(pci_devices(&missing, Path::new("/nonexistent")).is_err());
    }

    #[test]
    fn only_api_version_12_is_usable() {
        assert_eq!(judge_kvm_api_version(Ok(12)), Ok(()));
        assert!(
            judge_kvm_api_version(Ok(11))
                .unwrap_err()
                .contains("API version 11, not 12")
        );
        let refused = std::io::Error::from_raw_os_error(libc::ENOTTY);
        assert!(
            judge_kvm_api_version(Err(refused))
                .unwrap_err()
                .contains("does not answer KVM_GET_API_VERSION")
        );
    }

    #[test]
    fn the_probe_agrees_with_the_device() {
        // Whatever this machine has, the probe must not claim KVM without a device.
        if !Path::new("/dev/kvm").exists() {
            assert!(probe_kvm().unwrap_err().contains("cannot open /dev/kvm"));
        }
    }

    #[test]
    fn qemu_kvm_failures_are_recognised() {
        assert!(is_kvm_init_failure(
            "qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied"
        ));
        assert!(is_kvm_init_failure(
            "Could not access KVM kernel module: No such file or directory"
        ));
        assert!(!is_kvm_init_failure(
            "qemu-system-x86_64: warning: host doesn't support requested feature"
        ));
    }

    #[test]
    fn auto_prefers_tcg_for_every_known_reason_and_says_why() {
        assert_eq!(choose_auto(Ok(()), None, false), (Accel::Kvm, None));
        let (accel, why) = choose_auto(Err("cannot open /dev/kvm: EACCES".into()), None, false);
        assert_eq!(accel, Accel::Tcg);
        assert!(why.unwrap().contains("cannot open /dev/kvm"));
        let (accel, why) = choose_auto(Ok(()), None, true);
        assert_eq!(accel, Accel::Tcg);
        assert!(why.unwrap().contains("could not initialise KVM"));
        let file = Path::new("/t/arbor/kvm-slow");
        let (accel, why) = choose_auto(Ok(()), Some(file), false);
        assert_eq!(accel, Accel::Tcg);
        let why = why.unwrap();
        assert!(why.contains("syscall stays in ring 3") && why.contains("/t/arbor/kvm-slow"));
    }

    #[test]
    fn the_slow_kvm_line_is_the_kernels() {
        let source = workspace::root().join("base/kernel/src/kernel/mod.rs");
        let text = std::fs::read_to_string(source).unwrap();
        assert!(text.contains(KVM_SLOW_LINE));
    }
}
