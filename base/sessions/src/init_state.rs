//! The `InitState` session: what an init reports about its children —
//! name, binary, state, restarts, RAM and capability quota and use,
//! uptime, the services each announced — and its own totals.
//!
//! init serves it itself (like a child's config ROM), and only to a child
//! whose routes send `InitState` `to: Init`: the names and quotas of a
//! system are its parent's to give. The report is a postcard-encoded
//! [`InitReport`] of at most [`MAX_REPORT_BYTES`] (children past that are
//! counted in [`InitReport::omitted`]). A reader asks init for a
//! [`InitStateRequest::Snapshot`], which init encodes into the session's
//! own buffer (paid from the session's donation, [`SESSION_RAM`]), and
//! reads it in chunks of at most [`CHUNK_MAX`] bytes; the cheap
//! [`InitStateRequest::Version`] says whether anything init decides
//! (a start, an exit, a fault, an announcement) changed since.
//!
//! init never waits for a reader and never trusts one: every offset and
//! length is checked here ([`read_chunk`]), a snapshot asked for again
//! within [`SNAPSHOT_INTERVAL_MS`] is the previous one (a flood costs init
//! one report per interval), and a reader that stops reading holds nothing
//! of init's but its own buffer.
//!
//! [`render`] turns a report into plain text lines: the `tree` view draws
//! them, a web server's `/status` page can send them.

use crate::client::{Session, call, open_session};
use crate::{Interface, SessionError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use serde::{Deserialize, Serialize};

/// The service name routes use (`to: Init`).
pub const SERVICE: &str = "InitState";
/// The largest encoded report.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;
/// RAM a session's donation must cover: the report buffer and its table entry.
pub const SESSION_RAM: u64 = MAX_REPORT_BYTES as u64 + 4096;
/// The most bytes one [`InitStateRequest::Read`] returns (fits a reply payload).
pub const CHUNK_MAX: u32 = 3072;
/// A snapshot asked for sooner than this after the last is the last.
pub const SNAPSHOT_INTERVAL_MS: u64 = 20;
/// Bytes kept of a name, binary or service name (longer ones are cut).
pub const NAME_MAX: usize = 32;
/// Services listed per child (more are cut).
pub const SERVICES_MAX: usize = 4;

/// A reader's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitStateRequest {
    /// The report's version: it grows whenever init starts, stops or
    /// restarts a child or a child announces a service. No report is made.
    Version,
    /// Make a snapshot of the report now (uptime and use as of now) in
    /// the session's buffer: its version and size.
    Snapshot,
    /// Up to `len` (at most [`CHUNK_MAX`]) bytes of the snapshot from `offset`.
    Read {
        /// First byte.
        offset: u32,
        /// Bytes wanted.
        len: u32,
    },
}

/// init's replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitStateReply {
    /// The version now.
    Version {
        /// Grows with every change init makes.
        version: u64,
    },
    /// The snapshot is in the session's buffer.
    Snapshot {
        /// Its version.
        version: u64,
        /// Its encoded size in bytes.
        size: u32,
    },
    /// Bytes of the snapshot.
    Bytes(Vec<u8>),
    /// Refused.
    Error(SessionError),
}

/// How much of a resource there is and how much is in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The limit.
    pub quota: u64,
    /// In use.
    pub used: u64,
}

/// Where a child stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildState {
    /// Running, but has not announced every service it provides yet.
    Starting,
    /// Running (and has announced what it provides).
    Running,
    /// Stopped for good: a fault past its restart policy, or it could not start.
    Failed,
    /// It exited with this code.
    Exited {
        /// Its exit code.
        code: i32,
    },
}

impl ChildState {
    /// A short word for it ("running", "exited 0").
    pub fn text(&self) -> String {
        match self {
            ChildState::Starting => String::from("starting"),
            ChildState::Running => String::from("running"),
            ChildState::Failed => String::from("failed"),
            ChildState::Exited { code } => format!("exited {code}"),
        }
    }
}

/// One child, as its init sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildReport {
    /// Its name in the scenario.
    pub name: String,
    /// The ROM module it runs.
    pub binary: String,
    /// Where it stands.
    pub state: ChildState,
    /// Restarts after faults so far.
    pub restarts: u32,
    /// RAM in bytes: the quota init gave it, and what its Pd has allocated
    /// now (zero while it is not running; what it donated to sessions is
    /// its servers', not counted here).
    pub ram: Usage,
    /// Capability slots: the quota init gave it and the slots in use.
    pub caps: Usage,
    /// Milliseconds since it was last started (zero while it is not running).
    pub uptime_ms: u64,
    /// The services it announced.
    pub services: Vec<String>,
}

/// One init's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitReport {
    /// The version (see [`InitStateRequest::Version`]).
    pub version: u64,
    /// Milliseconds since this init started.
    pub uptime_ms: u64,
    /// init's own RAM in bytes: its Pd's quota now (what it gave its
    /// children is theirs) and how much of that is in use.
    pub ram: Usage,
    /// init's own capability slots.
    pub caps: Usage,
    /// Its children, in start order.
    pub children: Vec<ChildReport>,
    /// Children left out so the report fits [`MAX_REPORT_BYTES`].
    pub omitted: u32,
}

/// `text` cut to at most `max` bytes at a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&text[..end])
}

impl ChildReport {
    /// Cuts names to [`NAME_MAX`] and services to [`SERVICES_MAX`].
    pub fn bounded(mut self) -> Self {
        self.name = cut(&self.name, NAME_MAX);
        self.binary = cut(&self.binary, NAME_MAX);
        self.services.truncate(SERVICES_MAX);
        for service in self.services.iter_mut() {
            *service = cut(service, NAME_MAX);
        }
        self
    }
}

/// Encodes `report` into `buffer` (cleared first), leaving out children from
/// the end (counted in `omitted`) until it fits [`MAX_REPORT_BYTES`].
/// `Err` only if the buffer cannot grow to that size.
pub fn encode_report(report: &mut InitReport, buffer: &mut Vec<u8>) -> Result<(), SessionError> {
    buffer.clear();
    if buffer.capacity() < MAX_REPORT_BYTES {
        buffer
            .try_reserve_exact(MAX_REPORT_BYTES)
            .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
    }
    buffer.resize(MAX_REPORT_BYTES, 0);
    loop {
        match postcard::to_slice(&*report, buffer.as_mut_slice()) {
            Ok(used) => {
                let len = used.len();
                buffer.truncate(len);
                return Ok(());
            }
            Err(_) if report.children.pop().is_some() => {
                report.omitted = report.omitted.saturating_add(1);
            }
            // Without children it always fits; never loop forever.
            Err(_) => {
                buffer.clear();
                return Err(SessionError::BadRequest);
            }
        }
    }
}

/// Decodes a report (from untrusted bytes: refused if they are not one).
pub fn decode_report(bytes: &[u8]) -> Result<InitReport, SessionError> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(SessionError::BadRequest);
    }
    crate::decode(bytes)
}

/// Why a read was refused (init logs it with the reader's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRefusal {
    /// No snapshot was asked for yet.
    NoSnapshot,
    /// `len` is 0 or more than [`CHUNK_MAX`].
    BadLength(u32),
    /// `offset` is past the snapshot's end.
    PastEnd {
        /// The offset asked for.
        offset: u32,
        /// The snapshot's size.
        size: u32,
    },
}

impl core::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadRefusal::NoSnapshot => write!(f, "read before any snapshot"),
            ReadRefusal::BadLength(len) => {
                write!(f, "read of {len} bytes (1 to {CHUNK_MAX} allowed)")
            }
            ReadRefusal::PastEnd { offset, size } => {
                write!(
                    f,
                    "read at offset {offset}, past the snapshot's {size} bytes"
                )
            }
        }
    }
}

/// The bytes of `snapshot` a `Read { offset, len }` gets: checked whole,
/// never indexing past the end. Reading at exactly the end gets no bytes.
pub fn read_chunk(snapshot: Option<&[u8]>, offset: u32, len: u32) -> Result<&[u8], ReadRefusal> {
    let snapshot = snapshot.ok_or(ReadRefusal::NoSnapshot)?;
    if len == 0 || len > CHUNK_MAX {
        return Err(ReadRefusal::BadLength(len));
    }
    let size = u32::try_from(snapshot.len()).unwrap_or(u32::MAX);
    if offset > size {
        return Err(ReadRefusal::PastEnd { offset, size });
    }
    let start = offset as usize;
    let end = start.saturating_add(len as usize).min(snapshot.len());
    snapshot
        .get(start..end)
        .ok_or(ReadRefusal::PastEnd { offset, size })
}

/// Whether a snapshot taken at `last_ms` is still fresh at `now_ms`.
pub fn fresh(last_ms: Option<u64>, now_ms: u64) -> bool {
    last_ms.is_some_and(|last| now_ms.saturating_sub(last) < SNAPSHOT_INTERVAL_MS)
}

fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, ms % 1000 / 100)
}

/// The report as plain text: a header line for init (its own RAM and caps
/// as used/quota), a column line, and one indented line per child (quota
/// before use, so a line's start stays the same while it runs). Lines end
/// in '\n'; names and binaries are padded to the longest of each, and a
/// child's line is 43 characters longer than those two before its services.
pub fn render(report: &InitReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "init: {} children, up {}, RAM {}/{} KiB, caps {}/{}, version {}",
        report.children.len() + report.omitted as usize,
        seconds(report.uptime_ms),
        kib(report.ram.used),
        kib(report.ram.quota),
        report.caps.used,
        report.caps.quota,
        report.version
    );
    // Names and binaries get the width of the longest, so columns line up.
    let widest = |of: fn(&ChildReport) -> &str, header: &str| {
        report
            .children
            .iter()
            .map(|child| of(child).chars().count())
            .fold(header.len(), usize::max)
    };
    let name = widest(|child| &child.name, "NAME");
    let binary = widest(|child| &child.binary, "BINARY");
    let _ = writeln!(
        text,
        "  {:<name$} {:<binary$} {:<8} {:>2} {:>9} {:>9} {:>6}  SERVICES",
        "NAME", "BINARY", "STATE", "RS", "QUOTA K/C", "USED K/C", "UP"
    );
    for child in &report.children {
        let quota = format!("{}/{}", kib(child.ram.quota), child.caps.quota);
        let used = format!("{}/{}", kib(child.ram.used), child.caps.used);
        let _ = writeln!(
            text,
            "  {:<name$} {:<binary$} {:<8} {:>2} {:>9} {:>9} {:>6}  {}",
            child.name,
            child.binary,
            child.state.text(),
            child.restarts,
            quota,
            used,
            seconds(child.uptime_ms),
            child.services.join(",")
        );
    }
    if report.omitted > 0 {
        let _ = writeln!(text, "  ... and {} more", report.omitted);
    }
    text
}

/// A reader's session with its init.
pub struct InitState {
    session: Session,
}

impl InitState {
    /// Asks the parent for the `InitState` session (denied unless a route
    /// sends it `to: Init`).
    pub fn open() -> Result<Self, SessionError> {
        Ok(InitState {
            session: open_session(SERVICE, "", &(), SESSION_RAM, None)?,
        })
    }

    fn call<T>(
        &self,
        request: &InitStateRequest,
        answer: impl FnOnce(InitStateReply) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let (reply, _) =
            call::<_, InitStateReply>(self.session.cap, Interface::Session, request, None, None)?;
        match reply {
            InitStateReply::Error(error) => Err(error),
            reply => answer(reply),
        }
    }

    /// The report's version now (cheap: init makes no report).
    pub fn version(&self) -> Result<u64, SessionError> {
        self.call(&InitStateRequest::Version, |reply| match reply {
            InitStateReply::Version { version } => Ok(version),
            _ => Err(SessionError::BadRequest),
        })
    }

    /// A snapshot of the report, read whole and decoded.
    pub fn report(&self) -> Result<InitReport, SessionError> {
        let size = self.call(&InitStateRequest::Snapshot, |reply| match reply {
            InitStateReply::Snapshot { size, .. } if size as usize <= MAX_REPORT_BYTES => Ok(size),
            _ => Err(SessionError::BadRequest),
        })?;
        let mut bytes: Vec<u8> = Vec::new();
        bytes
            .try_reserve_exact(size as usize)
            .map_err(|_| SessionError::InsufficientQuota { needed: 4096 })?;
        while bytes.len() < size as usize {
            let offset = bytes.len() as u32;
            let len = (size - offset).min(CHUNK_MAX);
            let read = self.call(
                &InitStateRequest::Read { offset, len },
                |reply| match reply {
                    InitStateReply::Bytes(chunk)
                        if !chunk.is_empty() && chunk.len() <= len as usize =>
                    {
                        bytes.extend_from_slice(&chunk);
                        Ok(())
                    }
                    _ => Err(SessionError::BadRequest),
                },
            );
            read?;
        }
        decode_report(&bytes)
    }

    /// The session capability (for a reader that sends its own requests).
    pub fn cap(&self) -> arbor::abi::CapSlot {
        self.session.cap
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;

    fn child(name: &str, binary: &str, state: ChildState) -> ChildReport {
        ChildReport {
            name: String::from(name),
            binary: String::from(binary),
            state,
            restarts: 0,
            ram: Usage {
                quota: 512 * 1024,
                used: 120 * 1024,
            },
            caps: Usage {
                quota: 32,
                used: 12,
            },
            uptime_ms: 1234,
            services: vec![String::from("Timer")],
        }
    }

    fn report() -> InitReport {
        InitReport {
            version: 7,
            uptime_ms: 5600,
            ram: Usage {
                quota: 124_956 * 1024,
                used: 3000 * 1024,
            },
            caps: Usage {
                quota: 3064,
                used: 200,
            },
            children: vec![
                child("timer", "pit_timer", ChildState::Running),
                ChildReport {
                    restarts: 3,
                    services: vec![],
                    ..child("crasher", "crasher", ChildState::Failed)
                },
                child("hello", "hello", ChildState::Exited { code: 0 }),
            ],
            omitted: 0,
        }
    }

    #[test]
    fn a_report_survives_encode_and_decode() {
        let mut original = report();
        let mut buffer = Vec::new();
        encode_report(&mut original, &mut buffer).unwrap();
        assert!(buffer.len() < 400, "{} bytes", buffer.len());
        assert_eq!(decode_report(&buffer), Ok(report()));
    }

    #[test]
    fn garbage_and_cut_reports_do_not_decode() {
        let mut buffer = Vec::new();
        encode_report(&mut report(), &mut buffer).unwrap();
        for len in 0..buffer.len() {
            assert!(decode_report(&buffer[..len]).is_err(), "cut at {len}");
        }
        assert!(decode_report(&[0xff; 64]).is_err());
        assert!(decode_report(&vec![0u8; MAX_REPORT_BYTES + 1]).is_err());
    }

    #[test]
    fn a_report_too_big_leaves_children_out_and_counts_them() {
        let mut big = report();
        let long = "x".repeat(NAME_MAX);
        big.children = (0..1000)
            .map(|_| child(&long, &long, ChildState::Starting).bounded())
            .collect();
        let mut buffer = Vec::new();
        encode_report(&mut big, &mut buffer).unwrap();
        assert!(buffer.len() <= MAX_REPORT_BYTES);
        let decoded = decode_report(&buffer).unwrap();
        assert!(decoded.omitted > 0);
        assert_eq!(decoded.children.len() + decoded.omitted as usize, 1000);
        assert!(render(&decoded).contains(&format!("... and {} more", decoded.omitted)));
    }

    #[test]
    fn bounded_cuts_names_at_character_boundaries() {
        let mut long = child(&"é".repeat(40), "b", ChildState::Running);
        long.services = (0..10).map(|i| format!("S{i}")).collect();
        let bounded = long.bounded();
        assert!(bounded.name.len() <= NAME_MAX);
        assert_eq!(bounded.name.chars().count(), NAME_MAX / 2);
        assert_eq!(bounded.services.len(), SERVICES_MAX);
    }

    #[test]
    fn reads_are_checked_whole() {
        let snapshot = [1u8, 2, 3, 4, 5];
        assert_eq!(read_chunk(Some(&snapshot), 1, 2), Ok(&snapshot[1..3]));
        assert_eq!(
            read_chunk(Some(&snapshot), 3, CHUNK_MAX),
            Ok(&snapshot[3..])
        );
        assert_eq!(read_chunk(Some(&snapshot), 5, 1), Ok(&[][..]));
        assert_eq!(
            read_chunk(Some(&snapshot), 6, 1),
            Err(ReadRefusal::PastEnd { offset: 6, size: 5 })
        );
        assert_eq!(
            read_chunk(Some(&snapshot), u32::MAX, CHUNK_MAX),
            Err(ReadRefusal::PastEnd {
                offset: u32::MAX,
                size: 5
            })
        );
        assert_eq!(
            read_chunk(Some(&snapshot), 0, 0),
            Err(ReadRefusal::BadLength(0))
        );
        assert_eq!(
            read_chunk(Some(&snapshot), 0, u32::MAX),
            Err(ReadRefusal::BadLength(u32::MAX))
        );
        assert_eq!(read_chunk(None, 0, 1), Err(ReadRefusal::NoSnapshot));
    }

    #[test]
    fn a_chunk_fits_one_reply() {
        let chunk = vec![0xa5u8; CHUNK_MAX as usize];
        let mut buffer = [0u8; arbor::abi::PAYLOAD_MAX];
        let reply = InitStateReply::Bytes(chunk);
        assert!(crate::encode(&reply, &mut buffer).is_ok());
        let decoded: InitStateReply = crate::decode(&buffer).unwrap();
        assert_eq!(decoded, reply);
    }

    #[test]
    fn snapshots_within_the_interval_are_the_last_one() {
        assert!(!fresh(None, 100));
        assert!(fresh(Some(100), 100 + SNAPSHOT_INTERVAL_MS - 1));
        assert!(!fresh(Some(100), 100 + SNAPSHOT_INTERVAL_MS));
        // A clock that went backwards is not a reason to build more.
        assert!(fresh(Some(100), 50));
    }

    #[test]
    fn render_shows_every_child_with_quota_before_use() {
        let text = render(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[0],
            "init: 3 children, up 5.6s, RAM 3000/124956 KiB, caps 200/3064, version 7"
        );
        assert_eq!(
            lines[1],
            "  NAME    BINARY    STATE    RS QUOTA K/C  USED K/C     UP  SERVICES"
        );
        assert_eq!(
            lines[2],
            "  timer   pit_timer running   0    512/32    120/12   1.2s  Timer"
        );
        assert_eq!(
            lines[3],
            "  crasher crasher   failed    3    512/32    120/12   1.2s  "
        );
        assert!(lines[4].starts_with("  hello   hello     exited 0  0    512/32"));
    }
}
