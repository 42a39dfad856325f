//! Decoders, path checks and the request loop against hostile input, on the host.

extern crate std;

use super::*;
use alloc::vec;
use std::string::ToString;

fn packet(request: &Request<'_>, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    encode_request(request, &mut bytes).expect("fits");
    bytes
}

fn opcode_of(request: &Request<'_>) -> Opcode {
    match request {
        Request::Open { .. } => op::OPEN,
        Request::Close { .. } => op::CLOSE,
        Request::Read { .. } => op::READ,
        Request::Write { .. } => op::WRITE,
        Request::Truncate { .. } => op::TRUNCATE,
        Request::Mkdir { .. } => op::MKDIR,
        Request::Readdir { .. } => op::READDIR,
        Request::Stat { .. } => op::STAT,
        Request::Remove { .. } => op::REMOVE,
        Request::Rename { .. } => op::RENAME,
        Request::Sync => op::SYNC,
    }
}

#[test]
fn every_request_round_trips() {
    let requests = [
        Request::Open {
            path: b"/a/long file name.txt",
            create: true,
            write: true,
        },
        Request::Close { handle: Handle(3) },
        Request::Read {
            handle: Handle(1),
            position: 77,
            count: 100,
        },
        Request::Write {
            handle: Handle(2),
            position: u64::MAX - 5,
            data: b"hello",
        },
        Request::Truncate {
            handle: Handle(0),
            size: 9,
        },
        Request::Mkdir { path: b"/d" },
        Request::Readdir {
            path: b"/",
            index: 4,
        },
        Request::Stat { path: b"/x" },
        Request::Remove { path: b"/x" },
        Request::Rename {
            from: b"/x",
            to: b"/y/z",
        },
        Request::Sync,
    ];
    for request in requests {
        let bytes = packet(&request, 256);
        assert_eq!(decode_request(opcode_of(&request), &bytes), Ok(request));
    }
}

#[test]
fn lengths_beyond_the_packet_are_refused() {
    let mut bytes = packet(&Request::Stat { path: b"/abc" }, 40);
    assert!(decode_request(op::STAT, &bytes).is_ok());
    // path_len claims more than the body holds.
    bytes[20..24].copy_from_slice(&100u32.to_le_bytes());
    assert_eq!(decode_request(op::STAT, &bytes), Err(FsError::BadRequest));
    // Two lengths whose sum overflows.
    bytes[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode_request(op::RENAME, &bytes), Err(FsError::BadRequest));
    // A write whose count exceeds the body.
    let mut write = packet(
        &Request::Write {
            handle: Handle(0),
            position: 0,
            data: b"abc",
        },
        64,
    );
    write[16..20].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(decode_request(op::WRITE, &write), Err(FsError::BadRequest));
    // A read that asks for more than the packet can carry back.
    let mut read = vec![0u8; 64];
    read[16..20].copy_from_slice(&33u32.to_le_bytes());
    assert_eq!(decode_request(op::READ, &read), Err(FsError::TooSmall));
    // Short packets, the reserved word, unknown flags and opcodes.
    assert_eq!(
        decode_request(op::SYNC, &[0u8; 31]),
        Err(FsError::BadRequest)
    );
    let mut reserved = vec![0u8; 32];
    reserved[31] = 1;
    assert_eq!(
        decode_request(op::SYNC, &reserved),
        Err(FsError::BadRequest)
    );
    let mut flags = packet(
        &Request::Open {
            path: b"/a",
            create: false,
            write: false,
        },
        40,
    );
    flags[4] = 0x80;
    assert_eq!(decode_request(op::OPEN, &flags), Err(FsError::BadRequest));
    assert_eq!(
        decode_request(Opcode(3), &[0u8; 32]),
        Err(FsError::BadRequest)
    );
    // Fields an operation does not use must be zero.
    let mut close = vec![0u8; 32];
    close[4] = CREATE as u8;
    assert_eq!(decode_request(op::CLOSE, &close), Err(FsError::BadRequest));
}

#[test]
fn paths_are_normalized_and_never_climb_above_the_root() {
    let ok = |path: &str| normalize(path.as_bytes()).map(|p| p.as_str().to_string());
    assert_eq!(ok("/"), Ok("/".to_string()));
    assert_eq!(ok("/a//b/./c/"), Ok("/a/b/c".to_string()));
    assert_eq!(ok("/a/b/../c"), Ok("/a/c".to_string()));
    assert_eq!(ok("/a/.."), Ok("/".to_string()));
    assert_eq!(
        ok("/Ein langer Name.txt"),
        Ok("/Ein langer Name.txt".to_string())
    );
    for bad in [
        "",
        "a/b",
        "/..",
        "/a/../..",
        "/../etc",
        "/a\0b",
        "/a\\b",
        "/a:b",
        "/a*",
        "/a?",
        "/a|b",
        "/trailing.",
        "/trailing ",
        "/tab\there",
    ] {
        assert_eq!(normalize(bad.as_bytes()), Err(FsError::BadPath), "{bad:?}");
    }
    assert_eq!(normalize(&[b'/', 0xff, 0xfe]), Err(FsError::BadPath));
    let long = "/".to_string() + &"x".repeat(MAX_PATH);
    assert_eq!(normalize(long.as_bytes()), Err(FsError::BadPath));
}

#[test]
fn a_policy_root_confines_every_path() {
    let root = normalize(b"/logs").unwrap();
    let inside = |path: &str| root.join(&normalize(path.as_bytes()).unwrap()).unwrap();
    assert_eq!(inside("/").as_str(), "/logs");
    assert_eq!(inside("/a/../b").as_str(), "/logs/b");
    assert_eq!(normalize(b"/../secret"), Err(FsError::BadPath));
    let split = inside("/x/y.txt");
    let (parent, name) = split.split_last().unwrap();
    assert_eq!((parent.as_str(), name), ("/logs/x", "y.txt"));
    assert_eq!(NormalPath::root().split_last(), None);
    let near_limit = normalize(("/".to_string() + &"y".repeat(250)).as_bytes()).unwrap();
    assert_eq!(root.join(&near_limit), Err(FsError::BadPath));
}

#[test]
fn responses_are_checked_by_the_client() {
    let response = Response {
        value: 5,
        kind: 1,
        data_len: 10,
    };
    let mut bytes = vec![0u8; 64];
    bytes[..HEADER_SIZE].copy_from_slice(&response.to_bytes());
    assert_eq!(Response::from_bytes(&bytes), Some(response));
    // A server claiming more data than the packet holds is not believed.
    assert_eq!(Response::from_bytes(&bytes[..40]), None);
    assert_eq!(
        FsError::from_status(FsError::NoSpace.status()),
        Some(FsError::NoSpace)
    );
    assert_eq!(FsError::from_status(Status::OK), None);
    assert_eq!(FsError::from_status(Status(999)), None);
}

/// A backend that keeps one flat map of files and directories; enough to
/// drive [`serve`] through every path.
#[derive(Default)]
struct Flat {
    nodes: std::collections::BTreeMap<String, Option<Vec<u8>>>,
    open: usize,
}

impl Backend for Flat {
    type Node = String;

    fn open(&mut self, path: &NormalPath, create: bool) -> Result<String, FsError> {
        match self.nodes.get(path.as_str()) {
            Some(Some(_)) => {}
            Some(None) => return Err(FsError::IsDirectory),
            None if create => {
                self.nodes
                    .insert(path.as_str().to_string(), Some(Vec::new()));
            }
            None => return Err(FsError::NotFound),
        }
        self.open += 1;
        Ok(path.as_str().to_string())
    }

    fn read(&mut self, node: &String, position: u64, out: &mut [u8]) -> Result<usize, FsError> {
        let data = self
            .nodes
            .get(node)
            .cloned()
            .flatten()
            .ok_or(FsError::NotFound)?;
        let start = (position.min(data.len() as u64)) as usize;
        let n = out.len().min(data.len() - start);
        out[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write(&mut self, node: &String, position: u64, data: &[u8]) -> Result<usize, FsError> {
        let file = self
            .nodes
            .get_mut(node)
            .and_then(Option::as_mut)
            .ok_or(FsError::NotFound)?;
        let end = position
            .checked_add(data.len() as u64)
            .ok_or(FsError::BadRequest)?;
        if end > 4096 {
            return Err(FsError::NoSpace);
        }
        if file.len() < end as usize {
            file.resize(end as usize, 0);
        }
        file[position as usize..end as usize].copy_from_slice(data);
        Ok(data.len())
    }

    fn truncate(&mut self, node: &String, size: u64) -> Result<(), FsError> {
        if size > 4096 {
            return Err(FsError::NoSpace);
        }
        let file = self
            .nodes
            .get_mut(node)
            .and_then(Option::as_mut)
            .ok_or(FsError::NotFound)?;
        file.resize(size as usize, 0);
        Ok(())
    }

    fn close(&mut self, _node: String) {
        self.open -= 1;
    }

    fn mkdir(&mut self, path: &NormalPath) -> Result<(), FsError> {
        if self.nodes.contains_key(path.as_str()) {
            return Err(FsError::Exists);
        }
        self.nodes.insert(path.as_str().to_string(), None);
        Ok(())
    }

    fn entry(&mut self, path: &NormalPath, index: u64) -> Result<Option<DirEntry>, FsError> {
        let prefix = if path.is_root() {
            "/".to_string()
        } else {
            path.as_str().to_string() + "/"
        };
        Ok(self
            .nodes
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix) && !name[prefix.len()..].contains('/'))
            .nth(index.min(usize::MAX as u64) as usize)
            .map(|(name, node)| DirEntry {
                name: name[prefix.len()..].to_string(),
                stat: Stat {
                    kind: if node.is_some() {
                        Kind::File
                    } else {
                        Kind::Directory
                    },
                    size: node.as_ref().map_or(0, |d| d.len() as u64),
                },
            }))
    }

    fn stat(&mut self, path: &NormalPath) -> Result<Stat, FsError> {
        match self.nodes.get(path.as_str()) {
            Some(Some(data)) => Ok(Stat {
                kind: Kind::File,
                size: data.len() as u64,
            }),
            Some(None) => Ok(Stat {
                kind: Kind::Directory,
                size: 0,
            }),
            None if path.is_root() => Ok(Stat {
                kind: Kind::Directory,
                size: 0,
            }),
            None => Err(FsError::NotFound),
        }
    }

    fn remove(&mut self, path: &NormalPath) -> Result<(), FsError> {
        self.nodes
            .remove(path.as_str())
            .map(drop)
            .ok_or(FsError::NotFound)
    }

    fn rename(&mut self, from: &NormalPath, to: &NormalPath) -> Result<(), FsError> {
        let node = self.nodes.remove(from.as_str()).ok_or(FsError::NotFound)?;
        self.nodes.insert(to.as_str().to_string(), node);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

fn writable_root() -> Policy {
    Policy {
        root: NormalPath::root(),
        writable: true,
    }
}

fn run(
    fs: &mut Flat,
    policy: &Policy,
    handles: &mut Handles<String>,
    request: &Request<'_>,
) -> (Status, Vec<u8>) {
    let mut bytes = packet(request, 128);
    let status = serve(fs, policy, handles, opcode_of(request), &mut bytes);
    (status, bytes)
}

#[test]
fn serve_writes_reads_and_lists_within_the_policy() {
    let mut fs = Flat::default();
    let mut handles = Handles::new(4);
    let policy = writable_root();
    let open = Request::Open {
        path: b"/f",
        create: true,
        write: true,
    };
    let (status, answer) = run(&mut fs, &policy, &mut handles, &open);
    assert_eq!(status, Status::OK);
    let handle = Handle(Response::from_bytes(&answer).unwrap().value as u32);
    let write = Request::Write {
        handle,
        position: 2,
        data: b"xyz",
    };
    assert_eq!(run(&mut fs, &policy, &mut handles, &write).0, Status::OK);
    let read = Request::Read {
        handle,
        position: 0,
        count: 10,
    };
    let (status, answer) = run(&mut fs, &policy, &mut handles, &read);
    assert_eq!(status, Status::OK);
    let response = Response::from_bytes(&answer).unwrap();
    assert_eq!(response.data_len, 5);
    assert_eq!(&answer[HEADER_SIZE..HEADER_SIZE + 5], b"\0\0xyz");
    let list = Request::Readdir {
        path: b"/",
        index: 0,
    };
    let (status, answer) = run(&mut fs, &policy, &mut handles, &list);
    assert_eq!(status, Status::OK);
    assert_eq!(&answer[HEADER_SIZE..HEADER_SIZE + 1], b"f");
    let past = Request::Readdir {
        path: b"/",
        index: 1,
    };
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &past).0,
        FsError::NotFound.status()
    );
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &Request::Close { handle }).0,
        Status::OK
    );
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &Request::Close { handle }).0,
        FsError::BadHandle.status()
    );
    assert_eq!(fs.open, 0);
}

/// A read target that records what it was given, and refuses bytes past
/// its `room`.
struct Recorder {
    bytes: Vec<u8>,
    room: usize,
}

impl ReadTarget for Recorder {
    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<(), FsError> {
        let end = at.checked_add(bytes.len()).filter(|end| *end <= self.room);
        let end = end.ok_or(FsError::Io)?;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[at..end].copy_from_slice(bytes);
        Ok(())
    }

    fn put_from(
        &mut self,
        _at: usize,
        _from: &arbor::packet_stream::Client,
        _packet: &arbor::packet_stream::Packet,
        _from_at: usize,
        _len: usize,
    ) -> Result<(), FsError> {
        Err(FsError::Io)
    }
}

#[test]
fn reads_served_into_a_target_hand_it_the_data() {
    let mut fs = Flat::default();
    let mut handles = Handles::new(4);
    let policy = writable_root();
    let open = Request::Open {
        path: b"/f",
        create: true,
        write: true,
    };
    let (_, answer) = run(&mut fs, &policy, &mut handles, &open);
    let handle = Handle(Response::from_bytes(&answer).unwrap().value as u32);
    let write = Request::Write {
        handle,
        position: 0,
        data: b"hello",
    };
    assert_eq!(run(&mut fs, &policy, &mut handles, &write).0, Status::OK);
    let read = Request::Read {
        handle,
        position: 1,
        count: 10,
    };
    let mut bytes = packet(&read, 128);
    let mut target = Recorder {
        bytes: Vec::new(),
        room: 10,
    };
    let status = serve_into(
        &mut fs,
        &policy,
        &mut handles,
        opcode_of(&read),
        &mut bytes,
        Some(&mut target),
    );
    assert_eq!(status, Status::OK);
    assert_eq!(Response::from_bytes(&bytes).unwrap().data_len, 4);
    assert_eq!(target.bytes, b"ello");
    // A target that refuses the bytes fails the read; nothing is claimed.
    let mut cramped = Recorder {
        bytes: Vec::new(),
        room: 2,
    };
    let mut bytes = packet(&read, 128);
    let status = serve_into(
        &mut fs,
        &policy,
        &mut handles,
        opcode_of(&read),
        &mut bytes,
        Some(&mut cramped),
    );
    assert_eq!(status, FsError::Io.status());
    // Other requests ignore the target.
    let mut unused = Recorder {
        bytes: Vec::new(),
        room: 10,
    };
    let mut bytes = packet(&Request::Close { handle }, 128);
    let status = serve_into(
        &mut fs,
        &policy,
        &mut handles,
        opcode_of(&Request::Close { handle }),
        &mut bytes,
        Some(&mut unused),
    );
    assert_eq!(status, Status::OK);
    assert!(unused.bytes.is_empty());
}

#[test]
fn read_only_sessions_and_read_only_handles_cannot_write() {
    let mut fs = Flat::default();
    fs.nodes
        .insert("/logs/a".to_string(), Some(b"log".to_vec()));
    fs.nodes.insert("/secret".to_string(), Some(b"no".to_vec()));
    let policy = Policy {
        root: normalize(b"/logs").unwrap(),
        writable: false,
    };
    let mut handles = Handles::new(4);
    for request in [
        Request::Open {
            path: b"/a",
            create: false,
            write: true,
        },
        Request::Mkdir { path: b"/d" },
        Request::Remove { path: b"/a" },
        Request::Rename {
            from: b"/a",
            to: b"/b",
        },
    ] {
        assert_eq!(
            run(&mut fs, &policy, &mut handles, &request).0,
            FsError::ReadOnly.status()
        );
    }
    // Reading inside the root works; `/secret` is out of sight.
    let open = Request::Open {
        path: b"/a",
        create: false,
        write: false,
    };
    assert_eq!(run(&mut fs, &policy, &mut handles, &open).0, Status::OK);
    let escape = Request::Open {
        path: b"/../secret",
        create: false,
        write: false,
    };
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &escape).0,
        FsError::BadPath.status()
    );
    let hidden = Request::Stat { path: b"/secret" };
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &hidden).0,
        FsError::NotFound.status()
    );
    // A handle opened for reading does not write even under a writable policy.
    let writable = writable_root();
    let mut handles = Handles::new(4);
    let (_, answer) = run(
        &mut fs,
        &writable,
        &mut handles,
        &Request::Open {
            path: b"/secret",
            create: false,
            write: false,
        },
    );
    let handle = Handle(Response::from_bytes(&answer).unwrap().value as u32);
    let write = Request::Write {
        handle,
        position: 0,
        data: b"x",
    };
    assert_eq!(
        run(&mut fs, &writable, &mut handles, &write).0,
        FsError::ReadOnly.status()
    );
    // The root itself cannot be removed or renamed.
    assert_eq!(
        run(
            &mut fs,
            &writable,
            &mut handles,
            &Request::Remove { path: b"/" }
        )
        .0,
        FsError::BadPath.status()
    );
}

#[test]
fn handles_are_bounded() {
    let mut fs = Flat::default();
    let policy = writable_root();
    let mut handles = Handles::new(2);
    let open = Request::Open {
        path: b"/f",
        create: true,
        write: false,
    };
    assert_eq!(run(&mut fs, &policy, &mut handles, &open).0, Status::OK);
    assert_eq!(run(&mut fs, &policy, &mut handles, &open).0, Status::OK);
    assert_eq!(
        run(&mut fs, &policy, &mut handles, &open).0,
        FsError::TooManyOpen.status()
    );
    // The refused open left nothing open in the backend.
    assert_eq!(fs.open, 2);
    assert_eq!(handles.open_count(), 2);
    assert_eq!(handles.drain().count(), 2);
}

use arbor::random::XorShift;

/// A path that is sometimes valid, sometimes hostile.
fn arbitrary_path(rng: &mut XorShift) -> Vec<u8> {
    const PIECES: [&[u8]; 10] = [
        b"/",
        b"a",
        b"..",
        b".",
        b"long name",
        b"\0",
        b"\xff",
        b"//",
        b"b.txt",
        b"\\",
    ];
    let mut path = Vec::new();
    for _ in 0..rng.below(8) {
        path.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
    }
    path
}

/// Thousands of arbitrary packets, half built from valid requests with
/// fields bent, half pure noise: `serve` must answer each with a status,
/// never panic, never write outside the packet, and keep its handle table
/// within bounds.
#[test]
fn fuzz_arbitrary_packets_get_answers_never_panics() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut fs = Flat::default();
    let mut handles = Handles::new(MAX_HANDLES);
    let policies = [
        writable_root(),
        Policy {
            root: normalize(b"/a").unwrap(),
            writable: false,
        },
    ];
    let mut answered_ok = 0;
    for round in 0..20_000 {
        let policy = &policies[round % 2];
        let len = rng.below(300) as usize;
        let mut bytes = vec![0u8; len];
        let mut opcode = Opcode(rng.below(30) as u16);
        if rng.below(2) == 0 {
            for byte in bytes.iter_mut() {
                *byte = rng.next() as u8;
            }
        } else {
            // A well-formed request with hostile contents, sometimes bent.
            let path = arbitrary_path(&mut rng);
            let second = arbitrary_path(&mut rng);
            let data = vec![rng.next() as u8; rng.below(200) as usize];
            let handle = Handle(rng.below(40) as u32);
            let position = if rng.below(4) == 0 {
                rng.next()
            } else {
                rng.below(5000)
            };
            let request = match rng.below(11) {
                0 => Request::Open {
                    path: &path,
                    create: rng.below(2) == 0,
                    write: rng.below(2) == 0,
                },
                1 => Request::Close { handle },
                2 => Request::Read {
                    handle,
                    position,
                    count: rng.below(300) as u32,
                },
                3 => Request::Write {
                    handle,
                    position,
                    data: &data,
                },
                4 => Request::Truncate {
                    handle,
                    size: position,
                },
                5 => Request::Mkdir { path: &path },
                6 => Request::Readdir {
                    path: &path,
                    index: rng.below(6),
                },
                7 => Request::Stat { path: &path },
                8 => Request::Remove { path: &path },
                9 => Request::Rename {
                    from: &path,
                    to: &second,
                },
                _ => Request::Sync,
            };
            opcode = opcode_of(&request);
            // Too small a packet simply stays zeros (garbage of its own kind).
            let _ = encode_request(&request, &mut bytes);
            if rng.below(8) == 0 && !bytes.is_empty() {
                let at = rng.below(bytes.len().min(HEADER_SIZE) as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
        }
        let status = serve(&mut fs, policy, &mut handles, opcode, &mut bytes);
        assert_eq!(bytes.len(), len);
        if status == Status::OK {
            answered_ok += 1;
            assert!(Response::from_bytes(&bytes).is_some());
        } else {
            assert!(FsError::from_status(status).is_some(), "status {status:?}");
        }
        assert!(handles.open_count() <= MAX_HANDLES);
        assert_eq!(fs.open, handles.open_count());
    }
    // The generator reaches the backend, not only the decoder's refusals.
    assert!(answered_ok > 500, "only {answered_ok} requests succeeded");
}

/// A response read from its header alone keeps every field, whatever
/// length the data after it claims (the client checks that itself).
#[test]
fn responses_read_from_the_header_alone() {
    let response = Response {
        value: 65_536,
        kind: 0,
        data_len: 65_536,
    };
    let header = response.to_bytes();
    assert_eq!(Response::from_header(&header), response);
    // From the header's bytes alone, the checking reader refuses it.
    assert_eq!(Response::from_bytes(&header), None);
}
