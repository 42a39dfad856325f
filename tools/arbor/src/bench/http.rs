//! `http_requests_per_s` and `http_mib_s`: Arbor's web server and the
//! Linux baseline guest serving the same files in the same QEMU, driven by
//! a load generator on the host through a forwarded port of 127.0.0.1.
//!
//! Network figures are wall-clock: under `-icount` QEMU skips idle virtual
//! time, so a guest waiting for the host's next packet would look
//! infinitely fast. Both guests therefore run under plain TCG with the
//! same flags (`-accel tcg -cpu max`, a virtio-net-pci on QEMU user
//! networking in slot 2), whatever mode the rest of the run uses, and the
//! figures carry the mode `tcg-wall`. They depend on this host's speed and
//! load; their ratio (Linux over Arbor) is what compares.
//!
//! - `http_requests_per_s`: [`REQUESTS`] GETs of the index page, one after
//!   another on one kept-alive connection, timed from the first request to
//!   the last response's last byte.
//! - `http_mib_s`: one GET of the 16 MiB file, its bytes compared with the
//!   host's copy.
//!
//! Arbor's side is `runtime-configs/bench_http.ron` (web reading a FAT32
//! image through fat_fs and virtio_blk); Linux's is `tools/linux-baseline`
//! with `mode=http` (Debian's virtio_net modules loaded from the
//! initramfs, the files in memory).

use super::cpio::Cpio;
use super::figure::Figure;
use super::linux_guest;
use crate::qemu::{self, Accel, Continue, GuestEnd, Launch};
use crate::{archive, scenarios, workspace};
use arbor_config::{Device, Forward};
use linux_baseline::{BIG_FILE_PATH, BIG_FILE_SIZE, HTTP_READY_MARKER, NET_MODULES};
use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The benchmark scenario (excluded from the generic `BENCH` line runner).
pub const SCENARIO: &str = "bench_http";
/// The figures, Arbor's and Linux's.
const REQUESTS_FIGURE: &str = "http_requests_per_s";
const MIB_FIGURE: &str = "http_mib_s";
const LINUX_REQUESTS_FIGURE: &str = "linux_http_requests_per_s";
const LINUX_MIB_FIGURE: &str = "linux_http_mib_s";
/// The mode every figure here carries.
pub const MODE: &str = "tcg-wall";
/// Requests per `http_requests_per_s` measurement.
pub const REQUESTS: u32 = 300;
/// The guest port both servers listen on.
const GUEST_PORT: u16 = 80;
/// How long a guest may take to boot and answer the first request.
const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// How long one guest run may take in all.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether `name` (a scenario file's stem) is run here rather than by the
/// generic benchmark runner.
pub fn owns(name: &str) -> bool {
    name.starts_with(SCENARIO)
}

/// Whether the filter selects anything here.
pub fn wanted(selected: &dyn Fn(&str) -> bool) -> bool {
    [
        REQUESTS_FIGURE,
        MIB_FIGURE,
        LINUX_REQUESTS_FIGURE,
        LINUX_MIB_FIGURE,
        SCENARIO,
    ]
    .iter()
    .any(|name| selected(name))
}

/// Measures both guests; pushes their figures and ratios, counts failures.
pub fn run(selected: &dyn Fn(&str) -> bool, figures: &mut Vec<Figure>, failures: &mut u32) {
    if !wanted(selected) {
        return;
    }
    eprintln!(
        "arbor: HTTP benchmarks: wall-clock under plain TCG (not icount: idle time would be skipped), same QEMU flags for Arbor and Linux"
    );
    let expected = linux_baseline::generated_bytes(BIG_FILE_SIZE);
    let mut found = Vec::new();
    for (origin, boot) in [
        ("arbor", boot_arbor as fn() -> Result<Launch, String>),
        ("linux", boot_linux),
    ] {
        let result = boot().and_then(|launch| measure(&launch, origin, &expected));
        match result {
            Ok(measured) => {
                let (requests, mib) = if origin == "arbor" {
                    (REQUESTS_FIGURE, MIB_FIGURE)
                } else {
                    (LINUX_REQUESTS_FIGURE, LINUX_MIB_FIGURE)
                };
                let scenario = if origin == "arbor" { SCENARIO } else { "linux" };
                found.push(figure(
                    requests,
                    measured.requests_per_s,
                    "requests/s",
                    Some(scenario),
                ));
                found.push(figure(mib, measured.mib_per_s, "MiB/s", Some(scenario)));
            }
            Err(error) => {
                eprintln!("arbor: HTTP benchmark on {origin} failed: {error}");
                *failures += 1;
            }
        }
    }
    let value = |name: &str| {
        found
            .iter()
            .find(|f| f.bench == name)
            .and_then(|f| f.value.as_f64())
    };
    let mut ratios = Vec::new();
    for (linux, arbor) in [
        (LINUX_REQUESTS_FIGURE, REQUESTS_FIGURE),
        (LINUX_MIB_FIGURE, MIB_FIGURE),
    ] {
        if let (Some(l), Some(a)) = (value(linux), value(arbor))
            && a > 0.0
        {
            ratios.push(figure(&format!("{linux}/{arbor}"), l / a, "ratio", None));
        }
    }
    figures.append(&mut found);
    figures.append(&mut ratios);
}

/// A figure rounded to two decimals.
fn figure(bench: &str, value: f64, unit: &str, scenario: Option<&str>) -> Figure {
    let rounded = (value * 100.0).round() / 100.0;
    Figure {
        bench: bench.into(),
        value: serde_json::Number::from_f64(rounded).unwrap_or_else(|| 0.into()),
        unit: unit.into(),
        mode: MODE.into(),
        scenario: scenario.map(str::to_string),
    }
}

/// What one guest achieved.
struct Measured {
    requests_per_s: f64,
    mib_per_s: f64,
}

/// Arbor's guest: the bench scenario, built and packed.
fn boot_arbor() -> Result<Launch, String> {
    let path = scenarios::locate(SCENARIO)?;
    let scenario = scenarios::load(&path)?;
    let kernel = qemu::build(&archive::binaries_needed(&scenario)).map_err(|e| format!("{e:#}"))?;
    qemu::prepare_with(&scenario, kernel, Accel::Tcg).map_err(|e| format!("{e:#}"))
}

/// The Linux guest: the baseline's kernel and `/init`, and an initramfs
/// that adds Debian's virtio_net modules of the same kernel package.
fn boot_linux() -> Result<Launch, String> {
    let guest = linux_guest::prepare()?;
    let modules = net_modules()?;
    let init_path = workspace::target_dir()
        .map_err(|e| format!("{e:#}"))?
        .join(linux_guest::INIT_TARGET)
        .join("release")
        .join("linux-baseline");
    let init = std::fs::read(&init_path).map_err(|e| format!("{}: {e}", init_path.display()))?;
    let mut cpio = Cpio::new();
    cpio.directory("dev", 0o755)?;
    cpio.character_device("dev/console", 0o600, 5, 1)?;
    cpio.file("init", 0o755, &init)?;
    cpio.directory("modules", 0o755)?;
    for module in &modules {
        let name = module
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("a module without a name")?;
        let bytes = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
        cpio.file(&format!("modules/{name}"), 0o644, &bytes)?;
    }
    let initramfs = net_cache()?.join("initramfs-http.cpio");
    std::fs::write(&initramfs, cpio.finish())
        .map_err(|e| format!("{}: {e}", initramfs.display()))?;
    let devices = qemu::with_free_ports(&[Device::VirtioNet {
        forward: vec![Forward {
            host: 0,
            guest: GUEST_PORT,
        }],
        slot: Some(2),
    }])
    .map_err(|e| format!("{e:#}"))?;
    Ok(Launch {
        kernel: guest.vmlinuz,
        archive: initramfs,
        memory_mib: linux_guest::MEMORY_MIB,
        kernel_args: "console=ttyS0 quiet panic=-1 mode=http".into(),
        accel: Accel::Tcg,
        devices: qemu::pci_devices(&devices, Path::new("/")).map_err(|e| format!("{e:#}"))?,
        may_fall_back: false,
        extra_args: Vec::new(),
    })
}

fn net_cache() -> Result<PathBuf, String> {
    let cache = workspace::state_dir()
        .map_err(|e| format!("{e:#}"))?
        .join("linux-net");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(cache)
}

/// The module files of [`NET_MODULES`], unpacked once from the kernel
/// package the baseline boots (`apt-get download` + `dpkg-deb`), cached.
fn net_modules() -> Result<Vec<PathBuf>, String> {
    let cache = net_cache()?;
    let find = |module: &str| -> Option<PathBuf> {
        let modules = cache.join("lib/modules");
        std::fs::read_dir(&modules)
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("kernel").join(module)))
            .find(|path| path.is_file())
    };
    if let Some(found) = NET_MODULES
        .iter()
        .map(|m| find(m))
        .collect::<Option<Vec<_>>>()
    {
        return Ok(found);
    }
    let recorded = workspace::state_dir()
        .map_err(|e| format!("{e:#}"))?
        .join("linux/package");
    let package = std::fs::read_to_string(&recorded)
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .ok_or_else(|| {
            format!(
                "{} names no kernel package: the baseline's kernel did not come from apt, so its modules cannot be found",
                recorded.display()
            )
        })?;
    eprintln!(
        "arbor: fetching {package} for its virtio_net modules (cached in {})",
        cache.display()
    );
    let status = Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(&cache)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("`apt-get download {package}` failed ({status})"));
    }
    let deb = std::fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| format!("apt-get left no {package}_*.deb"))?;
    let patterns: Vec<String> = NET_MODULES
        .iter()
        .map(|module| format!("./lib/modules/*/kernel/{module}"))
        .collect();
    let shell = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xf - --wildcards {}",
        deb.display(),
        patterns.join(" ")
    );
    let unpacked = Command::new("sh")
        .args(["-c", &shell])
        .current_dir(&cache)
        .status()
        .map_err(|e| format!("unpacking {}: {e}", deb.display()))?;
    let _ = std::fs::remove_file(&deb);
    if !unpacked.success() {
        return Err(format!("`{shell}` failed ({unpacked})"));
    }
    NET_MODULES
        .iter()
        .map(|module| find(module).ok_or_else(|| format!("{package} holds no {module}")))
        .collect()
}

/// Boots `launch`, and once the guest is up measures it from the host.
fn measure(launch: &Launch, origin: &str, expected: &[u8]) -> Result<Measured, String> {
    let port = launch
        .forwards()
        .iter()
        .find(|f| f.guest == GUEST_PORT)
        .map(|f| f.host)
        .ok_or("no forward to guest port 80")?;
    // Arbor is up once its stack has an address; Linux says so itself.
    let ready_line = if origin == "arbor" {
        "[init -> net] address 10.0.2.15"
    } else {
        HTTP_READY_MARKER
    };
    eprintln!("arbor: booting the {origin} guest for the HTTP benchmarks (port {port})");
    let started = Instant::now();
    let mut log = Vec::new();
    let mut result: Option<Result<Measured, String>> = None;
    let end = qemu::boot(launch, Some(RUN_TIMEOUT), |line| {
        log.push(line.to_string());
        if line.contains(ready_line) {
            eprintln!(
                "arbor: {origin} is up after {:.1}s; measuring",
                started.elapsed().as_secs_f64()
            );
            result = Some(load(port, expected));
            return Continue::Stop;
        }
        Continue::Go
    })
    .map_err(|e| format!("{e:#}"))?;
    match result {
        Some(result) => result,
        None => {
            let tail: Vec<&String> = log.iter().rev().take(15).collect();
            let mut shown = String::new();
            for line in tail.into_iter().rev() {
                shown.push_str(&format!("\n    | {line}"));
            }
            Err(format!(
                "the guest never printed \"{ready_line}\" ({}){shown}",
                describe(&end)
            ))
        }
    }
}

fn describe(end: &GuestEnd) -> String {
    match end {
        GuestEnd::Timeout { after } => format!("stopped after {:.0}s", after.as_secs_f64()),
        other => format!("{other:?}"),
    }
}

/// The load generator: waits for a first answer, then times the requests
/// and the download.
fn load(port: u16, expected: &[u8]) -> Result<Measured, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut connection = loop {
        let attempt = Client::connect(port).and_then(|mut client| {
            client.get("/index.html")?;
            Ok(client)
        });
        match attempt {
            Ok(client) => break client,
            Err(error) if Instant::now() > deadline => {
                return Err(format!("no answer on port {port}: {error}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let started = Instant::now();
    for _ in 0..REQUESTS {
        connection.get("/index.html")?;
    }
    let requests_time = started.elapsed();
    let started = Instant::now();
    let body = connection.get(BIG_FILE_PATH)?;
    let download_time = started.elapsed();
    if body != expected {
        return Err(format!(
            "{BIG_FILE_PATH}: {} bytes that differ from the host's copy ({} bytes)",
            body.len(),
            expected.len()
        ));
    }
    let requests_per_s = f64::from(REQUESTS) / requests_time.as_secs_f64();
    let mib_per_s = body.len() as f64 / (1 << 20) as f64 / download_time.as_secs_f64();
    eprintln!(
        "arbor: {REQUESTS} requests in {:.2}s ({requests_per_s:.1}/s); {} MiB in {:.2}s ({mib_per_s:.2} MiB/s), equal to the host's copy",
        requests_time.as_secs_f64(),
        body.len() >> 20,
        download_time.as_secs_f64()
    );
    Ok(Measured {
        requests_per_s,
        mib_per_s,
    })
}

/// One kept-alive HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Result<Client, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        Ok(Client {
            reader: BufReader::with_capacity(256 << 10, stream),
        })
    }

    /// GETs `path`; its body, or why not.
    fn get(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| format!("sending: {e}"))?;
        let head = read_head(&mut self.reader)?;
        let length = parse_head(&head)?;
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("reading {length} bytes of {path}: {e}"))?;
        Ok(body)
    }
}

/// The response head's lines, up to the blank line.
fn read_head(reader: &mut impl std::io::BufRead) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the answer: {e}"))?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        if lines.len() > 64 {
            return Err("an answer head of more than 64 lines".into());
        }
        lines.push(line);
    }
}

/// The body length of a 200 answer, or why it is not one.
fn parse_head(head: &[String]) -> Result<usize, String> {
    let status = head.first().ok_or("an empty answer")?;
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("answered \"{status}\""));
    }
    head.iter()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| "an answer without Content-Length".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_give_the_length_or_a_reason() {
        let head = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_head(&head(&["HTTP/1.1 200 OK", "content-length: 12"])),
            Ok(12)
        );
        assert!(
            parse_head(&head(&["HTTP/1.1 404 Not Found", "Content-Length: 3"]))
                .unwrap_err()
                .contains("404")
        );
        assert!(parse_head(&head(&["HTTP/1.1 200 OK"])).is_err());
        assert!(parse_head(&[]).is_err());
        let mut reader = std::io::Cursor::new(&b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"[..]);
        assert_eq!(read_head(&mut reader).unwrap(), ["HTTP/1.1 200 OK", "A: b"]);
    }

    #[test]
    fn the_bench_scenario_is_run_here_only() {
        assert!(owns("bench_http"));
        assert!(!owns("bench_ipc"));
        assert!(wanted(&|name: &str| name.contains("http_mib")));
        assert!(!wanted(&|name: &str| name.contains("ipc")));
        let ratio = figure("a/b", 2.0 / 3.0, "ratio", None);
        assert_eq!(
            ratio.to_json(),
            r#"{"bench":"a/b","value":0.67,"unit":"ratio","mode":"tcg-wall"}"#
        );
    }
}
