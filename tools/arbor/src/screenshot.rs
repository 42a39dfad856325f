//! Screenshots and display steps for scenario tests.
//!
//! [`Screen`] is a decoded PNG (what QEMU's `screendump` writes) with the
//! pixels as 0x00RRGGBB, and [`Screen::sum`] is the guest's own checksum
//! (`arbor_sessions::framebuffer::checksum`) over a rectangle of it, so a
//! test compares the picture QEMU shows with the sums the host computes
//! from the compositor's renderer (and the display driver logs).
//!
//! [`DisplayRunner`] runs a scenario's `display` steps while the guest
//! runs: each waits for its log line, then sends input and takes
//! screenshots through [`Qmp`] and checks them; the first failure is kept
//! for the verdict.

use crate::qmp::{self, Qmp};
use anyhow::{Context, Result, anyhow, bail};
use arbor_config::{DisplayAction, DisplayStep, ScreenCheck};
use arbor_sessions::framebuffer::{Mode, PixelFormat, Rect, checksum};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A decoded screenshot.
pub struct Screen {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// Row after row, each pixel 0x00RRGGBB.
    pub pixels: Vec<u32>,
}

impl Screen {
    /// Decodes a PNG (8-bit RGB or RGBA; alpha is ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().context("reading the PNG header")?;
        let mut buffer = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buffer).context("decoding the PNG")?;
        let channels = match (info.color_type, info.bit_depth) {
            (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
            (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
            (color, depth) => bail!("unexpected PNG format {color:?} {depth:?}"),
        };
        let pixels = buffer[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]))
            .collect::<Vec<_>>();
        if pixels.len() != info.width as usize * info.height as usize {
            bail!(
                "PNG of {}x{} holds {} pixels",
                info.width,
                info.height,
                pixels.len()
            );
        }
        Ok(Self {
            width: info.width,
            height: info.height,
            pixels,
        })
    }

    /// Reads and decodes the PNG at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::decode(&bytes)
    }

    /// The guest's checksum of a rectangle of this screen (clipped).
    pub fn sum(&self, x: u32, y: u32, width: u32, height: u32) -> Result<u64> {
        let mode = Mode::new(self.width, self.height, PixelFormat::Xrgb8888)
            .map_err(|e| anyhow!("screen {}x{}: {e}", self.width, self.height))?;
        let rect = Rect::new(x as i32, y as i32, width, height);
        Ok(checksum(&self.pixels, &mode, &rect).1)
    }

    /// What `check` says about this screen: `None` when it holds.
    /// `previous` is the screenshot taken before this one, if any.
    pub fn failure(
        &self,
        check: &ScreenCheck,
        previous: Option<&Screen>,
    ) -> Result<Option<String>> {
        Ok(match check {
            ScreenCheck::Size(width, height) => ((self.width, self.height) != (*width, *height))
                .then(|| {
                    format!(
                        "screen is {}x{}, expected {width}x{height}",
                        self.width, self.height
                    )
                }),
            ScreenCheck::Sum {
                name,
                x,
                y,
                width,
                height,
                sum,
            } => {
                let got = self.sum(*x, *y, *width, *height)?;
                (got != *sum).then(|| {
                    format!(
                        "screenshot rectangle {name} ({x}, {y}, {width} x {height}): sum 0x{got:016x}, expected 0x{sum:016x}"
                    )
                })
            }
            ScreenCheck::Changed {
                name,
                x,
                y,
                width,
                height,
            } => {
                let Some(previous) = previous else {
                    bail!("check Changed({name}) needs an earlier screenshot to compare with");
                };
                let got = self.sum(*x, *y, *width, *height)?;
                (got == previous.sum(*x, *y, *width, *height)?).then(|| {
                    format!(
                        "screenshot rectangle {name} ({x}, {y}, {width} x {height}) did not change since the previous screenshot (sum 0x{got:016x})"
                    )
                })
            }
        })
    }
}

/// Runs a scenario's display steps against the running guest.
pub struct DisplayRunner {
    steps: Vec<DisplayStep>,
    next: usize,
    socket: PathBuf,
    qmp: Option<Qmp>,
    /// Where screenshots go (kept for a failing run to look at).
    directory: PathBuf,
    shots: usize,
    size: Option<(u32, u32)>,
    failure: Option<String>,
    /// Every expected line appeared while steps were still to run.
    expected_seen: bool,
    /// The last `Screenshot` action's picture, for `Changed` checks.
    last: Option<Screen>,
    /// What `Run` commands may name.
    host: crate::test::HostValues,
}

impl DisplayRunner {
    /// A runner for `steps`, talking to QEMU's QMP socket at `socket`.
    pub fn new(
        steps: Vec<DisplayStep>,
        socket: PathBuf,
        directory: PathBuf,
        host: crate::test::HostValues,
    ) -> Self {
        Self {
            steps,
            next: 0,
            socket,
            qmp: None,
            directory,
            shots: 0,
            size: None,
            failure: None,
            expected_seen: false,
            last: None,
            host,
        }
    }

    /// Whether every step ran (or one failed).
    pub fn finished(&self) -> bool {
        self.next >= self.steps.len() || self.failure.is_some()
    }

    /// The first failure.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Takes a serial line; runs the next step if this is its line.
    pub fn feed(&mut self, line: &str) {
        while !self.finished() && line.contains(&self.steps[self.next].after) {
            let step = self.steps[self.next].clone();
            self.next += 1;
            if let Err(error) = self.run_step(&step) {
                self.failure = Some(format!("display step after {:?}: {error:#}", step.after));
            }
        }
    }

    fn qmp(&mut self) -> Result<&mut Qmp> {
        if self.qmp.is_none() {
            self.qmp = Some(Qmp::connect(&self.socket, Duration::from_secs(10))?);
        }
        self.qmp.as_mut().context("QMP")
    }

    /// Takes a screenshot into the runner's directory and decodes it.
    pub fn screenshot(&mut self) -> Result<(PathBuf, Screen)> {
        self.shots += 1;
        let file = self
            .directory
            .join(format!("screenshot-{}.png", self.shots));
        self.qmp()?.screendump(&file)?;
        let screen = Screen::load(&file)?;
        self.size = Some((screen.width, screen.height));
        Ok((file, screen))
    }

    fn run_step(&mut self, step: &DisplayStep) -> Result<()> {
        for action in &step.actions {
            match action {
                DisplayAction::Type(text) => {
                    for character in text.chars() {
                        let code = qmp::qcode(character)
                            .with_context(|| format!("no key for {character:?}"))?;
                        self.qmp()?.tap(&code)?;
                    }
                }
                DisplayAction::Click(x, y) => {
                    let (width, height) = match self.size {
                        Some(size) => size,
                        None => {
                            let (_, screen) = self.screenshot()?;
                            (screen.width, screen.height)
                        }
                    };
                    self.qmp()?.click(*x, *y, width, height)?;
                }
                DisplayAction::Wait(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                DisplayAction::Run {
                    command,
                    expect,
                    timeout,
                } => {
                    let timeout = timeout.map_or(crate::test::HOST_COMMAND_TIMEOUT, |t| {
                        Duration::from_millis(t.millis)
                    });
                    let started = std::time::Instant::now();
                    let output = self
                        .host
                        .substitute(command)
                        .and_then(|command| {
                            crate::test::run_host_command(&command, expect, timeout)
                        })
                        .map_err(|failure| anyhow!(failure))?;
                    eprintln!(
                        "arbor: ran `{command}` ({:.2}s): ok",
                        started.elapsed().as_secs_f32()
                    );
                    // A few lines of what it said (the figures a step prints).
                    for line in output.lines().take(4) {
                        eprintln!("    | {line}");
                    }
                }
                DisplayAction::InputToPixel(character, x, y, width, height) => {
                    let code = qmp::qcode(*character)
                        .with_context(|| format!("no key for {character:?}"))?;
                    let (_, before) = self.screenshot()?;
                    let old = before.sum(*x, *y, *width, *height)?;
                    let started = std::time::Instant::now();
                    self.qmp()?.tap(&code)?;
                    loop {
                        let (_, screen) = self.screenshot()?;
                        if screen.sum(*x, *y, *width, *height)? != old {
                            break;
                        }
                        if started.elapsed() > Duration::from_secs(5) {
                            bail!("{character:?} changed nothing in 5 s");
                        }
                    }
                    eprintln!(
                        "arbor: input_to_pixel_ms {} (QMP key {character:?} to a changed screenshot, coarse)",
                        started.elapsed().as_millis()
                    );
                }
                DisplayAction::Screenshot(checks) => {
                    let previous = self.last.take();
                    let (file, screen) = self.screenshot()?;
                    for check in checks {
                        if let Some(failure) = screen.failure(check, previous.as_ref())? {
                            bail!("{failure} (in {})", file.display());
                        }
                    }
                    eprintln!(
                        "arbor: screenshot {} ({}x{}): {} check(s) hold",
                        file.display(),
                        screen.width,
                        screen.height,
                        checks.len()
                    );
                    self.last = Some(screen);
                }
            }
        }
        Ok(())
    }
}

/// For a test with display steps: QMP arguments added to `launch` and the
/// runner; `None` for a test without them.
pub fn prepare_display(
    name: &str,
    spec: &arbor_config::TestSpec,
    launch: &mut crate::qemu::Launch,
    host: crate::test::HostValues,
) -> Result<Option<DisplayRunner>> {
    if spec.display.is_empty() {
        return Ok(None);
    }
    let socket = qmp::socket_path();
    // Steps that only run host commands need no QMP socket.
    let needs_qmp = spec.display.iter().any(|step| {
        step.actions
            .iter()
            .any(|action| !matches!(action, DisplayAction::Run { .. }))
    });
    if needs_qmp {
        let _ = std::fs::remove_file(&socket);
        launch.extra_args.extend(qmp::arguments(&socket));
    }
    let directory = launch
        .kernel
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("screenshots")
        .join(name);
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    Ok(Some(DisplayRunner::new(
        spec.display.clone(),
        socket,
        directory,
        host,
    )))
}

/// Feeds `line` to the runner and decides whether the guest may stop:
/// not before every display step ran, unless one failed.
pub fn feed_display(
    display: Option<&mut DisplayRunner>,
    line: &str,
    verdict: crate::qemu::Continue,
) -> crate::qemu::Continue {
    use crate::qemu::Continue;
    let Some(display) = display else {
        return verdict;
    };
    display.feed(line);
    if display.failure().is_some() {
        return Continue::Stop;
    }
    match verdict {
        Continue::Stop if !display.finished() => {
            display.expected_seen = true;
            Continue::Go
        }
        Continue::Go if display.finished() && display.expected_seen => Continue::Stop,
        verdict => verdict,
    }
}

impl DisplayRunner {
    /// The failure a test reports: a step that failed or never ran.
    pub fn verdict(&self) -> Option<String> {
        if let Some(failure) = &self.failure {
            return Some(failure.clone());
        }
        self.steps
            .get(self.next)
            .map(|step| format!("display step after {:?} never ran", step.after))
    }
}

/// `cargo arbor run --screenshot FILE`: one screenshot once the scenario
/// is ready (every line its test expects has appeared).
pub struct RunShot {
    socket: PathBuf,
    file: PathBuf,
}

impl RunShot {
    /// Adds the QMP socket to `launch` when a screenshot was asked for; a
    /// scenario without a test section has no "ready" and is refused.
    pub fn prepare(
        file: Option<&Path>,
        scenario: &crate::scenarios::LoadedScenario,
        launch: &mut crate::qemu::Launch,
    ) -> Result<Option<Self>> {
        let Some(file) = file else {
            return Ok(None);
        };
        if scenario.scenario.test.is_none() {
            bail!(
                "--screenshot needs a scenario with a test section: its expected lines say when the screen is ready"
            );
        }
        let socket = qmp::socket_path();
        let _ = std::fs::remove_file(&socket);
        launch.extra_args.extend(qmp::arguments(&socket));
        Ok(Some(Self {
            socket,
            file: std::path::absolute(file)?,
        }))
    }

    /// Takes the screenshot and says where it went (or why not).
    pub fn take(&mut self) {
        // The last lines are logged as their frames are composed: give the
        // compositor a few frames to reach the screen.
        std::thread::sleep(Duration::from_millis(500));
        let result = Qmp::connect(&self.socket, Duration::from_secs(10))
            .and_then(|mut qmp| qmp.screendump(&self.file))
            .and_then(|()| Screen::load(&self.file));
        match result {
            Ok(screen) => eprintln!(
                "arbor: saved a {}x{} screenshot to {}",
                screen.width,
                screen.height,
                self.file.display()
            ),
            Err(error) => eprintln!("arbor: no screenshot: {error:#}"),
        }
    }
}

/// Whether `cargo arbor run` opens a window: the scenario has a virtio
/// GPU, no screenshot was asked for, and a display is there (`DISPLAY`
/// or `WAYLAND_DISPLAY`). Then QEMU gets `-display default` after the
/// launch's `-display none` (the later option wins) and the run keeps
/// going once the scenario is ready, until QEMU's window is closed.
pub fn open_window(launch: &mut crate::qemu::Launch, screenshot: bool) -> bool {
    let has_gpu = launch.devices.iter().any(|d| d.kind == "VirtioGpu");
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let window = has_gpu && has_display && !screenshot;
    if window {
        launch
            .extra_args
            .extend(["-display".into(), "default".into()]);
        eprintln!("arbor: opening a QEMU window (close it to stop)");
    }
    window
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(rgba).unwrap();
        drop(writer);
        bytes
    }

    #[test]
    fn sums_match_the_guests_checksum_of_the_same_pixels() {
        // A 4x2 screen; the guest would hold 0x00RRGGBB words.
        let words: Vec<u32> = (0..8).map(|i| 0x0010_2030 * (i + 1)).collect();
        let rgba: Vec<u8> = words
            .iter()
            .flat_map(|w| [(w >> 16) as u8, (w >> 8) as u8, *w as u8, 0xff])
            .collect();
        let screen = Screen::decode(&png(4, 2, &rgba)).unwrap();
        assert_eq!(screen.pixels, words);
        let mode = Mode::new(4, 2, PixelFormat::Xrgb8888).unwrap();
        let expected = checksum(&words, &mode, &Rect::new(1, 0, 2, 2)).1;
        assert_eq!(screen.sum(1, 0, 2, 2).unwrap(), expected);
        let check = ScreenCheck::Sum {
            name: "r".into(),
            x: 1,
            y: 0,
            width: 2,
            height: 2,
            sum: expected ^ 1,
        };
        assert!(screen.failure(&check, None).unwrap().is_some());
        assert!(
            screen
                .failure(&ScreenCheck::Size(4, 2), None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn changed_compares_with_the_previous_screenshot_and_needs_one() {
        let first: Vec<u8> = (0..8).flat_map(|i| [i, 0, 0, 0xff]).collect();
        let mut second = first.clone();
        second[4 * 5] = 0x80; // pixel (1, 1)
        let first = Screen::decode(&png(4, 2, &first)).unwrap();
        let second = Screen::decode(&png(4, 2, &second)).unwrap();
        let changed = |x, y| ScreenCheck::Changed {
            name: "counter".into(),
            x,
            y,
            width: 2,
            height: 2,
        };
        assert!(
            second
                .failure(&changed(0, 0), Some(&first))
                .unwrap()
                .is_none()
        );
        let unchanged = second.failure(&changed(2, 0), Some(&first)).unwrap();
        assert!(unchanged.is_some_and(|f| f.contains("did not change")));
        assert!(second.failure(&changed(0, 0), None).is_err());
    }
}
