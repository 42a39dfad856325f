//! A file system in memory, bounded by a capacity: the [`Backend`] ram_fs
//! serves.
//!
//! Nodes are kept by normalized path; each file's bytes live under an
//! inode number, which is what an open handle holds, so a handle survives
//! a rename. What the file system holds is counted in [`MemoryFs::used`]:
//! file bytes plus [`NODE_COST`] and the path length for every node. A
//! write or truncate that would pass the capacity fails with `NoSpace`
//! before anything changes, and every allocation uses `try_reserve`, so a
//! full heap is `NoSpace` too, never a crash.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use arbor_sessions::file_system::{Backend, DirEntry, FsError, Kind, NormalPath, Stat};

/// What every node costs beyond its bytes (bookkeeping in the maps).
pub const NODE_COST: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Directory,
}

/// The file system.
#[derive(Debug)]
pub struct MemoryFs {
    nodes: BTreeMap<String, Node>,
    files: BTreeMap<u64, Vec<u8>>,
    next_inode: u64,
    used: u64,
    capacity: u64,
}

impl MemoryFs {
    /// An empty file system (just the root) that holds at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        MemoryFs {
            nodes: BTreeMap::new(),
            files: BTreeMap::new(),
            next_inode: 1,
            used: 0,
            capacity,
        }
    }

    /// Bytes counted against the capacity.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Creates the file at `path` with `content`, making missing
    /// directories on the way (for preloaded files).
    pub fn preload(&mut self, path: &NormalPath, content: &[u8]) -> Result<(), FsError> {
        let mut prefix = NormalPath::root();
        let components: Vec<&str> = path.components().collect();
        if let Some((_, directories)) = components.split_last() {
            for name in directories {
                let text = alloc::format!("{}/{name}", prefix.as_str().trim_end_matches('/'));
                prefix = arbor_sessions::file_system::normalize(text.as_bytes())?;
                match self.mkdir(&prefix) {
                    Ok(()) | Err(FsError::Exists) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        let inode = self.open(path, true)?;
        self.truncate(&inode, 0)?;
        self.write(&inode, 0, content).map(drop)
    }

    fn node(&self, path: &NormalPath) -> Result<Node, FsError> {
        if path.is_root() {
            return Ok(Node::Directory);
        }
        self.nodes
            .get(path.as_str())
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// Charges `bytes` more, or `NoSpace`.
    fn charge(&mut self, bytes: u64) -> Result<(), FsError> {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.capacity => {
                self.used = total;
                Ok(())
            }
            _ => Err(FsError::NoSpace),
        }
    }

    fn node_cost(path: &NormalPath) -> u64 {
        NODE_COST + path.as_str().len() as u64
    }

    /// Adds a node at `path` whose parent must be a directory.
    fn add_node(&mut self, path: &NormalPath, node: Node) -> Result<(), FsError> {
        let (parent, _) = path.split_last().ok_or(FsError::Exists)?;
        match self.node(&parent)? {
            Node::Directory => {}
            Node::File(_) => return Err(FsError::NotDirectory),
        }
        if self.nodes.contains_key(path.as_str()) {
            return Err(FsError::Exists);
        }
        let mut key = String::new();
        key.try_reserve(path.as_str().len())
            .map_err(|_| FsError::NoSpace)?;
        key.push_str(path.as_str());
        self.charge(Self::node_cost(path))?;
        self.nodes.insert(key, node);
        Ok(())
    }

    fn file_mut(&mut self, inode: u64) -> Result<&mut Vec<u8>, FsError> {
        self.files.get_mut(&inode).ok_or(FsError::NotFound)
    }

    /// Resizes `file` to `size`, charging or refunding the difference.
    fn resize(&mut self, inode: u64, size: u64) -> Result<(), FsError> {
        let current = self.file_mut(inode)?.len() as u64;
        if size > current {
            let grow = size - current;
            self.charge(grow)?;
            let size_usize = usize::try_from(size).map_err(|_| FsError::NoSpace);
            let file = self.file_mut(inode)?;
            let reserved = size_usize.and_then(|size| {
                file.try_reserve(size - file.len())
                    .map_err(|_| FsError::NoSpace)
                    .map(|()| size)
            });
            match reserved {
                Ok(size) => file.resize(size, 0),
                Err(error) => {
                    self.used -= grow;
                    return Err(error);
                }
            }
        } else {
            let file = self.file_mut(inode)?;
            file.truncate(size as usize);
            file.shrink_to_fit();
            self.used -= current - size;
        }
        Ok(())
    }

    /// Whether any node lies below `path`.
    fn has_children(&self, path: &NormalPath) -> bool {
        self.children(path).next().is_some()
    }

    /// The direct children of directory `path`, in name order.
    fn children<'a>(&'a self, path: &NormalPath) -> impl Iterator<Item = (&'a str, Node)> + 'a {
        let prefix_len = if path.is_root() {
            1
        } else {
            path.as_str().len() + 1
        };
        let mut prefix = String::from(path.as_str());
        if !path.is_root() {
            prefix.push('/');
        }
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(name, _)| name.starts_with(prefix.as_str()))
            .filter_map(move |(name, node)| {
                let rest = &name[prefix_len..];
                (!rest.contains('/')).then_some((rest, *node))
            })
    }
}

impl Backend for MemoryFs {
    type Node = u64;

    fn open(&mut self, path: &NormalPath, create: bool) -> Result<u64, FsError> {
        match self.node(path) {
            Ok(Node::File(inode)) => Ok(inode),
            Ok(Node::Directory) => Err(FsError::IsDirectory),
            Err(FsError::NotFound) if create => {
                let inode = self.next_inode;
                self.add_node(path, Node::File(inode))?;
                self.next_inode += 1;
                self.files.insert(inode, Vec::new());
                Ok(inode)
            }
            Err(error) => Err(error),
        }
    }

    fn read(&mut self, node: &u64, position: u64, out: &mut [u8]) -> Result<usize, FsError> {
        let file = self.files.get(node).ok_or(FsError::NotFound)?;
        let start = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let count = out.len().min(file.len() - start);
        out[..count].copy_from_slice(&file[start..start + count]);
        Ok(count)
    }

    fn write(&mut self, node: &u64, position: u64, data: &[u8]) -> Result<usize, FsError> {
        let end = position
            .checked_add(data.len() as u64)
            .ok_or(FsError::NoSpace)?;
        let current = self.files.get(node).ok_or(FsError::NotFound)?.len() as u64;
        if end > current {
            self.resize(*node, end)?;
        }
        let file = self.file_mut(*node)?;
        // `resize` made the file at least `end` bytes long, and `end` fits usize.
        file[position as usize..end as usize].copy_from_slice(data);
        Ok(data.len())
    }

    fn truncate(&mut self, node: &u64, size: u64) -> Result<(), FsError> {
        self.resize(*node, size)
    }

    fn mkdir(&mut self, path: &NormalPath) -> Result<(), FsError> {
        if path.is_root() {
            return Err(FsError::Exists);
        }
        self.add_node(path, Node::Directory)
    }

    fn entry(&mut self, path: &NormalPath, index: u64) -> Result<Option<DirEntry>, FsError> {
        match self.node(path)? {
            Node::Directory => {}
            Node::File(_) => return Err(FsError::NotDirectory),
        }
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let Some((name, node)) = self.children(path).nth(index) else {
            return Ok(None);
        };
        let stat = match node {
            Node::Directory => Stat {
                kind: Kind::Directory,
                size: 0,
            },
            Node::File(inode) => Stat {
                kind: Kind::File,
                size: self.files.get(&inode).map_or(0, |f| f.len() as u64),
            },
        };
        let mut owned = String::new();
        owned
            .try_reserve(name.len())
            .map_err(|_| FsError::NoSpace)?;
        owned.push_str(name);
        Ok(Some(DirEntry { name: owned, stat }))
    }

    fn stat(&mut self, path: &NormalPath) -> Result<Stat, FsError> {
        Ok(match self.node(path)? {
            Node::Directory => Stat {
                kind: Kind::Directory,
                size: 0,
            },
            Node::File(inode) => Stat {
                kind: Kind::File,
                size: self.files.get(&inode).map_or(0, |f| f.len() as u64),
            },
        })
    }

    fn remove(&mut self, path: &NormalPath) -> Result<(), FsError> {
        if path.is_root() {
            return Err(FsError::BadPath);
        }
        match self.node(path)? {
            Node::Directory if self.has_children(path) => return Err(FsError::NotEmpty),
            Node::Directory => {}
            Node::File(inode) => {
                if let Some(bytes) = self.files.remove(&inode) {
                    self.used -= bytes.len() as u64;
                }
            }
        }
        self.nodes.remove(path.as_str());
        self.used -= Self::node_cost(path);
        Ok(())
    }

    fn rename(&mut self, from: &NormalPath, to: &NormalPath) -> Result<(), FsError> {
        if from.is_root() || to.is_root() {
            return Err(FsError::BadPath);
        }
        self.node(from)?;
        let below_itself = to
            .as_str()
            .strip_prefix(from.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if below_itself {
            return Err(FsError::BadPath);
        }
        // Moved nodes: the node and (for a directory) everything below it.
        let mut moved: Vec<(String, String)> = Vec::new();
        let prefix = alloc::format!("{}/", from.as_str());
        for name in core::iter::once(from.as_str()).chain(
            self.nodes
                .range(prefix.clone()..)
                .take_while(|(name, _)| name.starts_with(&prefix))
                .map(|(name, _)| name.as_str()),
        ) {
            let mut target = String::new();
            target
                .try_reserve(to.as_str().len() + name.len() - from.as_str().len())
                .map_err(|_| FsError::NoSpace)?;
            target.push_str(to.as_str());
            target.push_str(&name[from.as_str().len()..]);
            moved.try_reserve(1).map_err(|_| FsError::NoSpace)?;
            moved.push((String::from(name), target));
        }
        if moved
            .iter()
            .any(|(_, target)| target.len() > arbor_sessions::file_system::MAX_PATH)
        {
            return Err(FsError::BadPath);
        }
        // The target's parent must exist and the target must not.
        let (parent, _) = to.split_last().ok_or(FsError::BadPath)?;
        if self.node(&parent)? != Node::Directory {
            return Err(FsError::NotDirectory);
        }
        if self.nodes.contains_key(to.as_str()) {
            return Err(FsError::Exists);
        }
        let old_cost: u64 = moved.iter().map(|(name, _)| name.len() as u64).sum();
        let new_cost: u64 = moved.iter().map(|(_, target)| target.len() as u64).sum();
        if new_cost > old_cost {
            self.charge(new_cost - old_cost)?;
        } else {
            self.used -= old_cost - new_cost;
        }
        for (name, target) in moved {
            if let Some(node) = self.nodes.remove(&name) {
                self.nodes.insert(target, node);
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use arbor_sessions::file_system::{
        HEADER_SIZE, Handles, MAX_HANDLES, Policy, Request, Response, encode_request, normalize,
        op, serve,
    };
    use std::vec;

    fn path(text: &str) -> NormalPath {
        normalize(text.as_bytes()).unwrap()
    }

    #[test]
    fn files_and_directories_work() {
        let mut fs = MemoryFs::new(1 << 20);
        fs.mkdir(&path("/dir")).unwrap();
        let file = fs.open(&path("/dir/a long name.txt"), true).unwrap();
        assert_eq!(fs.write(&file, 3, b"abc"), Ok(3));
        let mut out = [0u8; 10];
        assert_eq!(fs.read(&file, 0, &mut out), Ok(6));
        assert_eq!(&out[..6], b"\0\0\0abc");
        assert_eq!(fs.read(&file, u64::MAX, &mut out), Ok(0));
        assert_eq!(fs.stat(&path("/dir/a long name.txt")).unwrap().size, 6);
        let entry = fs.entry(&path("/dir"), 0).unwrap().unwrap();
        assert_eq!(entry.name, "a long name.txt");
        assert_eq!(fs.entry(&path("/dir"), 1), Ok(None));
        assert_eq!(fs.entry(&path("/"), 0).unwrap().unwrap().name, "dir");
        assert_eq!(fs.remove(&path("/dir")), Err(FsError::NotEmpty));
        assert_eq!(fs.open(&path("/dir"), false), Err(FsError::IsDirectory));
        assert_eq!(fs.open(&path("/nope/x"), true), Err(FsError::NotFound));
        assert_eq!(
            fs.open(&path("/dir/a long name.txt/x"), true),
            Err(FsError::NotDirectory)
        );
        assert_eq!(fs.mkdir(&path("/dir")), Err(FsError::Exists));
    }

    #[test]
    fn preloading_makes_the_directories() {
        let mut fs = MemoryFs::new(4096);
        fs.preload(&path("/logs/2025/app.log"), b"boot").unwrap();
        fs.preload(&path("/logs/other"), b"x").unwrap();
        assert_eq!(fs.stat(&path("/logs/2025")).unwrap().kind, Kind::Directory);
        assert_eq!(fs.stat(&path("/logs/2025/app.log")).unwrap().size, 4);
        assert_eq!(
            fs.preload(&path("/logs/other/x"), b""),
            Err(FsError::NotDirectory)
        );
    }

    #[test]
    fn rename_moves_subtrees_and_handles_survive() {
        let mut fs = MemoryFs::new(1 << 20);
        fs.mkdir(&path("/a")).unwrap();
        fs.mkdir(&path("/a/b")).unwrap();
        let file = fs.open(&path("/a/b/f"), true).unwrap();
        fs.write(&file, 0, b"data").unwrap();
        fs.rename(&path("/a"), &path("/z")).unwrap();
        assert_eq!(fs.stat(&path("/z/b/f")).unwrap().size, 4);
        assert_eq!(fs.stat(&path("/a/b/f")), Err(FsError::NotFound));
        assert_eq!(fs.write(&file, 4, b"!"), Ok(1));
        assert_eq!(
            fs.rename(&path("/z"), &path("/z/b/inside")),
            Err(FsError::BadPath)
        );
        assert_eq!(
            fs.rename(&path("/z/b/f"), &path("/z/b")),
            Err(FsError::Exists)
        );
        assert_eq!(fs.rename(&path("/q"), &path("/r")), Err(FsError::NotFound));
    }

    #[test]
    fn the_capacity_holds_and_freeing_makes_room() {
        let mut fs = MemoryFs::new(1024);
        let file = fs.open(&path("/f"), true).unwrap();
        let cost = NODE_COST + 2;
        assert_eq!(fs.used(), cost);
        let room = (1024 - cost) as usize;
        assert_eq!(fs.write(&file, 0, &vec![1u8; room]), Ok(room));
        assert_eq!(fs.write(&file, room as u64, b"x"), Err(FsError::NoSpace));
        assert_eq!(fs.open(&path("/g"), true), Err(FsError::NoSpace));
        assert_eq!(fs.truncate(&file, u64::MAX), Err(FsError::NoSpace));
        assert_eq!(fs.write(&file, u64::MAX, b"x"), Err(FsError::NoSpace));
        // Nothing changed on the refusals.
        assert_eq!(fs.used(), 1024);
        fs.truncate(&file, 10).unwrap();
        assert!(fs.open(&path("/g"), true).is_ok());
        fs.remove(&path("/f")).unwrap();
        fs.remove(&path("/g")).unwrap();
        assert_eq!(fs.used(), 0);
    }

    use arbor::random::XorShift;

    /// Arbitrary requests through the session loop against this backend:
    /// answers only, no panics, and the books always balance.
    #[test]
    fn fuzz_requests_against_memory_fs_keep_the_books() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let mut fs = MemoryFs::new(8192);
        let policy = Policy {
            root: NormalPath::root(),
            writable: true,
        };
        let mut handles = Handles::new(MAX_HANDLES);
        const NAMES: [&str; 8] = ["/a", "/b", "/a/c", "/a/d", "/b/e", "/..", "/a/../b", "/x\0"];
        let mut ok = 0;
        for _ in 0..30_000 {
            let name = NAMES[(rng.next() % 8) as usize].as_bytes();
            let other = NAMES[(rng.next() % 8) as usize].as_bytes();
            let handle = arbor_sessions::file_system::Handle((rng.next() % 6) as u32);
            let data = vec![7u8; (rng.next() % 3000) as usize];
            let position = if rng.next().is_multiple_of(5) {
                rng.next()
            } else {
                rng.next() % 4000
            };
            let (opcode, request) = match rng.next() % 10 {
                0 => (
                    op::OPEN,
                    Request::Open {
                        path: name,
                        create: rng.next().is_multiple_of(2),
                        write: true,
                    },
                ),
                1 => (op::CLOSE, Request::Close { handle }),
                2 => (
                    op::READ,
                    Request::Read {
                        handle,
                        position,
                        count: 100,
                    },
                ),
                3 => (
                    op::WRITE,
                    Request::Write {
                        handle,
                        position,
                        data: &data,
                    },
                ),
                4 => (
                    op::TRUNCATE,
                    Request::Truncate {
                        handle,
                        size: position,
                    },
                ),
                5 => (op::MKDIR, Request::Mkdir { path: name }),
                6 => (
                    op::READDIR,
                    Request::Readdir {
                        path: name,
                        index: rng.next() % 3,
                    },
                ),
                7 => (op::REMOVE, Request::Remove { path: name }),
                8 => (
                    op::RENAME,
                    Request::Rename {
                        from: name,
                        to: other,
                    },
                ),
                _ => (op::STAT, Request::Stat { path: name }),
            };
            let mut packet = vec![0u8; HEADER_SIZE + 3200];
            encode_request(&request, &mut packet).unwrap();
            if rng.next().is_multiple_of(10) {
                let at = (rng.next() % HEADER_SIZE as u64) as usize;
                packet[at] ^= rng.next() as u8;
            }
            let status = serve(&mut fs, &policy, &mut handles, opcode, &mut packet);
            if status == arbor::packet_stream::Status::OK {
                ok += 1;
                assert!(Response::from_bytes(&packet).is_some());
            }
            assert!(fs.used() <= fs.capacity());
            let counted: u64 = fs
                .nodes
                .keys()
                .map(|name| NODE_COST + name.len() as u64)
                .sum::<u64>()
                + fs.files.values().map(|f| f.len() as u64).sum::<u64>();
            assert_eq!(fs.used(), counted);
        }
        assert!(ok > 3000, "only {ok} succeeded");
    }
}
