//! One client connection: bytes in, responses out, keep-alive between.
//!
//! The socket side ([`Connection::receive_room`], [`Connection::received`])
//! never lets the input grow past one request head, so a client sending an
//! endless header costs this server [`MAX_HEAD_LEN`] bytes and then a 400.
//! A response is a head plus a [`Body`] the caller streams from the file
//! source in pieces, so a large file never sits in memory whole.

use crate::files::{FileError, FileSource};
use crate::http::{self, HttpError, MAX_HEAD_LEN, Method, Parsed};
use alloc::string::String;
use alloc::vec::Vec;

/// The path of the status page.
pub const STATUS_PATH: &str = "/status";

/// What follows a response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Nothing (HEAD, errors without text).
    Empty,
    /// These bytes.
    Bytes(Vec<u8>),
    /// `length` bytes of the file at `path`, from offset 0.
    File {
        /// The file.
        path: String,
        /// Bytes.
        length: u64,
    },
}

/// One response to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head, as bytes to send.
    pub head: String,
    /// What follows the head.
    pub body: Body,
    /// Close the connection once it is sent.
    pub close: bool,
}

/// A connection's state between reads.
#[derive(Debug, Default)]
pub struct Connection {
    input: Vec<u8>,
    closed: bool,
}

impl Connection {
    /// A fresh connection.
    pub fn new() -> Connection {
        Connection::default()
    }

    /// How many more bytes the connection takes now: enough to complete
    /// one head, no more.
    pub fn receive_room(&self) -> usize {
        if self.closed {
            0
        } else {
            (MAX_HEAD_LEN + 1).saturating_sub(self.input.len())
        }
    }

    /// Takes bytes the socket delivered (at most [`Connection::receive_room`]
    /// of them; the rest are dropped, which the caller avoids by asking first).
    pub fn received(&mut self, bytes: &[u8]) {
        let room = self.receive_room();
        self.input
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Whether the connection is to close once what was queued is sent.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The response to the next complete request, if one is complete;
    /// `status_page` makes `/status`'s text.
    pub fn next_response(
        &mut self,
        files: &mut dyn FileSource,
        status_page: &mut dyn FnMut() -> String,
    ) -> Option<Response> {
        if self.closed {
            return None;
        }
        let (request, consumed) = match http::parse(&self.input) {
            Ok(Parsed::Incomplete) => return None,
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            Err(error) => {
                // After a refusal the stream's framing is unknown: answer and close.
                self.closed = true;
                self.input.clear();
                return Some(refusal(error));
            }
        };
        self.input.drain(..consumed);
        let keep_alive = request.keep_alive;
        self.closed = !keep_alive;
        let head_only = request.method == Method::Head;
        let (status, reason, content_type, body) = if request.path == STATUS_PATH {
            let text = status_page().into_bytes();
            (200, "OK", "text/plain", Body::Bytes(text))
        } else {
            let path = index_of(files, &request.path);
            match files.size(&path) {
                Ok(length) => (
                    200,
                    "OK",
                    content_type_of(&path),
                    Body::File { path, length },
                ),
                Err(FileError::NotFound) => (
                    404,
                    "Not Found",
                    "text/plain",
                    Body::Bytes(Vec::from(&b"not found\n"[..])),
                ),
                Err(FileError::Io) => (
                    500,
                    "Internal Server Error",
                    "text/plain",
                    Body::Bytes(Vec::from(&b"file source failed\n"[..])),
                ),
            }
        };
        let length = match &body {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { length, .. } => *length,
        };
        Some(Response {
            status,
            head: http::response_head(status, reason, content_type, length, keep_alive),
            body: if head_only { Body::Empty } else { body },
            close: !keep_alive,
        })
    }
}

fn refusal(error: HttpError) -> Response {
    let (status, reason) = error.status();
    let text = alloc::format!("{error}\n").into_bytes();
    Response {
        status,
        head: http::response_head(status, reason, "text/plain", text.len() as u64, false),
        body: Body::Bytes(text),
        close: true,
    }
}

/// `/` means `/index.html` when there is one.
fn index_of(files: &mut dyn FileSource, path: &str) -> String {
    if path == "/" && files.size("/index.html").is_ok() {
        String::from("/index.html")
    } else {
        String::from(path)
    }
}

fn content_type_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") | Some("htm") => "text/html",
        Some("txt") => "text/plain",
        _ if path == "/" => "text/html",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{ConfigFiles, FileConfig};
    use alloc::string::ToString;

    fn files() -> ConfigFiles {
        ConfigFiles::new(alloc::vec![
            FileConfig::Text {
                path: "/index.html".to_string(),
                text: "<h1>hi</h1>".to_string()
            },
            FileConfig::Pattern {
                path: "/big.bin".to_string(),
                size: 1 << 20
            },
        ])
    }

    fn respond(connection: &mut Connection, files: &mut ConfigFiles) -> Option<Response> {
        connection.next_response(files, &mut || "up".to_string())
    }

    #[test]
    fn keep_alive_serves_several_requests_then_closes() {
        let mut files = files();
        let mut connection = Connection::new();
        connection.received(b"GET / HTTP/1.1\r\n\r\nHEAD /big.bin HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\nConnection: close\r\n\r\n");
        let first = respond(&mut connection, &mut files).unwrap();
        assert_eq!(first.status, 200);
        assert!(first.head.contains("Content-Length: 11\r\n"));
        assert!(matches!(first.body, Body::File { ref path, length: 11 } if path == "/index.html"));
        assert!(!first.close);
        let second = respond(&mut connection, &mut files).unwrap();
        assert!(second.head.contains("Content-Length: 1048576\r\n"));
        assert_eq!(second.body, Body::Empty);
        let third = respond(&mut connection, &mut files).unwrap();
        assert_eq!(third.body, Body::Bytes(b"up".to_vec()));
        assert!(third.close && connection.is_closed());
        assert_eq!(respond(&mut connection, &mut files), None);
        assert_eq!(connection.receive_room(), 0);
    }

    #[test]
    fn bad_requests_get_400_or_404_and_close() {
        let mut files = files();
        let mut connection = Connection::new();
        connection.received(b"GET /nope HTTP/1.1\r\n\r\n");
        let missing = respond(&mut connection, &mut files).unwrap();
        assert_eq!(missing.status, 404);
        assert!(!missing.close);
        connection.received(b"GET /../secret HTTP/1.1\r\n\r\n");
        let escape = respond(&mut connection, &mut files).unwrap();
        assert_eq!(escape.status, 400);
        assert!(escape.close);
    }

    #[test]
    fn an_endless_header_costs_one_head_and_a_400() {
        let mut files = files();
        let mut connection = Connection::new();
        connection.received(b"GET / HTTP/1.1\r\nX-Long: ");
        while connection.receive_room() > 0 {
            assert_eq!(respond(&mut connection, &mut files), None);
            let chunk = [b'a'; 1000];
            let room = connection.receive_room().min(chunk.len());
            connection.received(&chunk[..room]);
        }
        assert_eq!(connection.input.len(), MAX_HEAD_LEN + 1);
        let refused = respond(&mut connection, &mut files).unwrap();
        assert_eq!(refused.status, 400);
        assert!(refused.close);
        assert!(connection.input.is_empty());
    }
}
