//! A QMP client for the running guest's QEMU: screenshots
//! (`screendump` with `"format": "png"`) and input (`input-send-event`:
//! keys by qcode, tablet moves in QEMU's 0..=0x7fff absolute scale, left
//! clicks). QEMU listens on a Unix socket (`-qmp unix:PATH,server=on,
//! wait=off`, beside `-serial stdio`); the client connects once the guest
//! runs, answers the greeting with `qmp_capabilities`, then sends one
//! command at a time and skips the asynchronous events between replies.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The largest absolute axis value QEMU's input layer takes.
pub const ABS_MAX: u32 = 0x7fff;

/// A socket path no other run of this process or another uses.
pub fn socket_path() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "arbor-qmp-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// QEMU's arguments for a QMP server at `path`.
pub fn arguments(path: &Path) -> Vec<String> {
    vec![
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", path.display()),
    ]
}

/// A QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to `path` (retrying for up to `wait` while QEMU starts)
    /// and leaves capabilities negotiation mode.
    pub fn connect(path: &Path, wait: Duration) -> Result<Self> {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(error) if started.elapsed() >= wait => {
                    return Err(error)
                        .with_context(|| format!("connecting to QMP at {}", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let writer = stream.try_clone()?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            bail!("QMP greeting expected, got {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP connection closed");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent {line:?}"))
    }

    /// Runs `command` with `arguments`; its `return` value, or its error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let message = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{message}")?;
        loop {
            let reply = self.read_message()?;
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                return Err(anyhow!("QMP {command}: {error}"));
            }
            // An event ({"event": ...}): not the reply.
        }
    }

    /// Saves the display as a PNG at `file` (absolute, QEMU writes it).
    pub fn screendump(&mut self, file: &Path) -> Result<()> {
        let file = std::path::absolute(file)?;
        self.execute(
            "screendump",
            json!({ "filename": file.display().to_string(), "format": "png" }),
        )?;
        Ok(())
    }

    /// Presses and releases the key `qcode` (QEMU's key names: "a", "ret", ...).
    pub fn tap(&mut self, qcode: &str) -> Result<()> {
        for down in [true, false] {
            self.send_events(json!([{
                "type": "key",
                "data": { "down": down, "key": { "type": "qcode", "data": qcode } }
            }]))?;
        }
        Ok(())
    }

    /// Moves the tablet to pixel (`x`, `y`) of a `width` x `height` screen
    /// and clicks the left button there.
    pub fn click(&mut self, x: u32, y: u32, width: u32, height: u32) -> Result<()> {
        let (x, y) = (to_abs(x, width), to_abs(y, height));
        self.send_events(json!([
            { "type": "abs", "data": { "axis": "x", "value": x } },
            { "type": "abs", "data": { "axis": "y", "value": y } }
        ]))?;
        for down in [true, false] {
            self.send_events(json!([
                { "type": "btn", "data": { "down": down, "button": "left" } }
            ]))?;
        }
        Ok(())
    }

    fn send_events(&mut self, events: Value) -> Result<()> {
        self.execute("input-send-event", json!({ "events": events }))?;
        Ok(())
    }
}

/// The absolute axis value a guest scaling `value * (side - 1) / ABS_MAX`
/// (virtio-input's decoder) turns back into `pixel`.
pub fn to_abs(pixel: u32, side: u32) -> u32 {
    let span = u64::from(side.saturating_sub(1).max(1));
    let value = (u64::from(pixel) * u64::from(ABS_MAX)).div_ceil(span);
    value.min(u64::from(ABS_MAX)) as u32
}

/// The qcode of a character a test types; `None` for what has none here.
pub fn qcode(character: char) -> Option<String> {
    match character {
        'a'..='z' | '0'..='9' => Some(character.to_string()),
        ' ' => Some("spc".into()),
        '\n' => Some("ret".into()),
        '.' => Some("dot".into()),
        ',' => Some("comma".into()),
        '-' => Some("minus".into()),
        '/' => Some("slash".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_values_scale_back_to_the_pixel() {
        for side in [240u32, 320, 800, 1280] {
            for pixel in 0..side {
                let value = to_abs(pixel, side);
                let back = u64::from(value) * u64::from(side - 1) / u64::from(ABS_MAX);
                assert_eq!(back, u64::from(pixel), "side {side} pixel {pixel}");
            }
        }
    }

    #[test]
    fn characters_have_qcodes() {
        assert_eq!(qcode('h').as_deref(), Some("h"));
        assert_eq!(qcode('\n').as_deref(), Some("ret"));
        assert_eq!(qcode('A'), None);
    }
}
