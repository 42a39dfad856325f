//! The HTTP/1.1 request parser and response heads.
//!
//! Only what a static file server needs: a request line, headers up to
//! [`MAX_HEAD_LEN`] bytes, no request bodies. Whatever else arrives is an
//! [`HttpError`] that names the status to answer with; the parser never
//! panics and never allocates more than the path it returns.

use alloc::string::String;
use core::fmt::Write;

/// Most bytes of a request head (request line plus headers plus the blank
/// line); a longer one is refused with 431-as-400 and the connection closed.
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// Longest path after decoding.
pub const MAX_PATH_LEN: usize = 512;

/// The methods the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Send the file.
    Get,
    /// Send only the head.
    Head,
}

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// GET or HEAD.
    pub method: Method,
    /// The normalised path: starts with `/`, no empty, `.` or `..` segment,
    /// no query.
    pub path: String,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

/// What the parser made of the bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No blank line yet and still under [`MAX_HEAD_LEN`]: read more.
    Incomplete,
    /// A request whose head took `consumed` bytes.
    Complete {
        /// The request.
        request: Request,
        /// Bytes of the head.
        consumed: usize,
    },
}

/// Why a request was refused; each maps to a status ([`HttpError::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The head is longer than [`MAX_HEAD_LEN`].
    HeadTooLarge,
    /// The request line is not `METHOD SP TARGET SP HTTP/1.x`.
    BadRequestLine,
    /// A header line without a colon, or with bytes no header has.
    BadHeader,
    /// A request body (Content-Length other than 0, Transfer-Encoding).
    BodyNotAccepted,
    /// The path reaches above the root, is not absolute, or holds a byte
    /// no file name has.
    BadPath,
    /// A method other than GET and HEAD.
    MethodNotAllowed,
    /// An HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
}

impl HttpError {
    /// The status code and reason to answer with.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Self::MethodNotAllowed => (405, "Method Not Allowed"),
            Self::VersionNotSupported => (505, "HTTP Version Not Supported"),
            _ => (400, "Bad Request"),
        }
    }
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self {
            Self::HeadTooLarge => "request head too large",
            Self::BadRequestLine => "malformed request line",
            Self::BadHeader => "malformed header",
            Self::BodyNotAccepted => "request body not accepted",
            Self::BadPath => "bad path",
            Self::MethodNotAllowed => "method not allowed",
            Self::VersionNotSupported => "HTTP version not supported",
        };
        f.write_str(what)
    }
}

/// Parses the request at the start of `input`.
pub fn parse(input: &[u8]) -> Result<Parsed, HttpError> {
    let Some(head_len) = find_head_end(input) else {
        return if input.len() >= MAX_HEAD_LEN {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    if head_len > MAX_HEAD_LEN {
        return Err(HttpError::HeadTooLarge);
    }
    let head = core::str::from_utf8(&input[..head_len]).map_err(|_| HttpError::BadHeader)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(HttpError::BadRequestLine)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequestLine);
    };
    let http_1_1 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        other if other.starts_with("HTTP/") => return Err(HttpError::VersionNotSupported),
        _ => return Err(HttpError::BadRequestLine),
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other if !other.is_empty() && other.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Err(HttpError::MethodNotAllowed);
        }
        _ => return Err(HttpError::BadRequestLine),
    };
    let mut keep_alive = http_1_1;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(HttpError::BadHeader)?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HttpError::BadHeader);
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(HttpError::BadHeader);
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if value != "0" {
                return Err(HttpError::BodyNotAccepted);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::BodyNotAccepted);
        }
    }
    let path = normalise_path(target)?;
    Ok(Parsed::Complete {
        request: Request {
            method,
            path,
            keep_alive,
        },
        consumed: head_len,
    })
}

/// Bytes up to and including the first blank line (`\r\n\r\n`), looking at
/// no more than one byte past the limit.
fn find_head_end(input: &[u8]) -> Option<usize> {
    let window = &input[..input.len().min(MAX_HEAD_LEN + 1)];
    window
        .windows(4)
        .position(|four| four == b"\r\n\r\n")
        .map(|at| at + 4)
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The path of a request target: percent-decoded, query dropped, and every
/// segment checked. `..` anywhere is refused rather than resolved, so no
/// spelling of it reaches a file outside the root.
pub fn normalise_path(target: &str) -> Result<String, HttpError> {
    let target = target.split('?').next().unwrap_or("");
    if !target.starts_with('/') {
        return Err(HttpError::BadPath);
    }
    let mut decoded = String::new();
    let bytes = target.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = match bytes[at] {
            b'%' => {
                let high = bytes.get(at + 1).and_then(|b| (*b as char).to_digit(16));
                let low = bytes.get(at + 2).and_then(|b| (*b as char).to_digit(16));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(HttpError::BadPath);
                };
                at += 3;
                (high * 16 + low) as u8
            }
            byte => {
                at += 1;
                byte
            }
        };
        // File names here are printable ASCII; a decoded NUL, backslash or
        // control byte is somebody probing.
        if !(byte.is_ascii_graphic() || byte == b' ') || byte == b'\\' {
            return Err(HttpError::BadPath);
        }
        decoded.push(byte as char);
        if decoded.len() > MAX_PATH_LEN {
            return Err(HttpError::BadPath);
        }
    }
    let mut path = String::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(HttpError::BadPath),
            segment => {
                path.push('/');
                path.push_str(segment);
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// A response head: status line, content type and length, connection.
pub fn response_head(
    status: u16,
    reason: &str,
    content_type: &str,
    content_length: u64,
    keep_alive: bool,
) -> String {
    let mut head = String::new();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "HTTP/1.1 {status} {reason}\r\nServer: arbor-web\r\nContent-Type: {content_type}\r\n\
         Content-Length: {content_length}\r\nConnection: {connection}\r\n\r\n"
    );
    head
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec::Vec;

    fn complete(input: &str) -> Request {
        match parse(input.as_bytes()) {
            Ok(Parsed::Complete { request, consumed }) => {
                assert_eq!(consumed, input.find("\r\n\r\n").unwrap() + 4);
                request
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn get_and_head_with_keep_alive() {
        let request = complete("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/");
        assert!(request.keep_alive);
        let request = complete("HEAD /a/b.txt?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert_eq!(request.method, Method::Head);
        assert_eq!(request.path, "/a/b.txt");
        assert!(!request.keep_alive);
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n").keep_alive);
        assert_eq!(complete("GET //a/./b/ HTTP/1.1\r\n\r\n").path, "/a/b");
        assert_eq!(complete("GET /a%20b HTTP/1.1\r\n\r\n").path, "/a b");
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost"), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r"), Ok(Parsed::Incomplete));
    }

    #[test]
    fn pipelined_requests_parse_one_at_a_time() {
        let two = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let Ok(Parsed::Complete { request, consumed }) = parse(two) else {
            panic!()
        };
        assert_eq!(request.path, "/a");
        let Ok(Parsed::Complete { request, .. }) = parse(&two[consumed..]) else {
            panic!()
        };
        assert_eq!(request.path, "/b");
    }

    #[test]
    fn hostile_requests_are_refused() {
        let refused = |input: &[u8], error| assert_eq!(parse(input), Err(error), "{input:?}");
        refused(b"GET /../etc HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /a/%2e%2e/b HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /a/.. HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET a HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /%00 HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /%5c.. HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /%g1 HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"GET /% HTTP/1.1\r\n\r\n", HttpError::BadPath);
        refused(b"POST / HTTP/1.1\r\n\r\n", HttpError::MethodNotAllowed);
        refused(b"GET / HTTP/2.0\r\n\r\n", HttpError::VersionNotSupported);
        refused(b"GET / FTP\r\n\r\n", HttpError::BadRequestLine);
        refused(b"GET  / HTTP/1.1\r\n\r\n", HttpError::BadRequestLine);
        refused(b"GET / HTTP/1.1 x\r\n\r\n", HttpError::BadRequestLine);
        refused(b"\r\n\r\n", HttpError::BadRequestLine);
        refused(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", HttpError::BadHeader);
        refused(b"GET / HTTP/1.1\r\nA\x01: b\r\n\r\n", HttpError::BadHeader);
        refused(b"GET / HTTP/1.1\r\nA: b\x00\r\n\r\n", HttpError::BadHeader);
        refused(b"GET / HTTP/1.1\r\n\xff: b\r\n\r\n", HttpError::BadHeader);
        refused(
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            HttpError::BodyNotAccepted,
        );
        refused(
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::BodyNotAccepted,
        );
        let long_path = alloc::format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(600));
        refused(long_path.as_bytes(), HttpError::BadPath);
        assert_eq!(HttpError::BadPath.status().0, 400);
        assert_eq!(HttpError::MethodNotAllowed.status().0, 405);
    }

    #[test]
    fn oversized_heads_are_refused_without_waiting_for_their_end() {
        let mut huge = Vec::from(&b"GET / HTTP/1.1\r\nX: "[..]);
        huge.resize(64 * 1024, b'a');
        assert_eq!(parse(&huge), Err(HttpError::HeadTooLarge));
        huge.truncate(MAX_HEAD_LEN - 1);
        assert_eq!(parse(&huge), Ok(Parsed::Incomplete));
        huge.extend_from_slice(b"aaaa\r\n\r\n");
        assert_eq!(parse(&huge), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn response_heads_say_length_and_connection() {
        let head = response_head(200, "OK", "text/html", 12, true);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Length: 12\r\n"));
        assert!(head.contains("Connection: keep-alive\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    /// Arbitrary bytes, and mutations of real requests: the parser answers
    /// every one with a value, and every accepted path is safe.
    #[test]
    fn fuzz_parser_never_panics() {
        let seeds: [&[u8]; 4] = [
            b"GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            b"HEAD /a%20b/c?d HTTP/1.0\r\n\r\n",
            b"GET /../%2e%2e/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\nGET /",
        ];
        let mut state = 0x7765_625f_6675_7aa1_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let (mut complete, mut refused) = (0, 0);
        for round in 0..50_000 {
            let mut input = Vec::from(seeds[round % seeds.len()]);
            let edits = next() % 6;
            for _ in 0..edits {
                let at = (next() as usize) % (input.len() + 1);
                match next() % 4 {
                    0 if at < input.len() => input[at] = next() as u8,
                    1 => input.insert(at, b"\r\n/.%: "[(next() % 7) as usize]),
                    2 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.truncate(at),
                }
            }
            if round % 10 == 0 {
                input = (0..next() % 64).map(|_| next() as u8).collect();
            }
            match parse(&input) {
                Ok(Parsed::Complete { request, consumed }) => {
                    complete += 1;
                    assert!(consumed <= input.len());
                    assert!(request.path.starts_with('/'));
                    assert!(!request.path.split('/').any(|s| s == ".."));
                    assert!(!request.path.contains('\\'));
                }
                Ok(Parsed::Incomplete) => {}
                Err(_) => refused += 1,
            }
        }
        assert!(complete > 1000 && refused > 1000, "{complete} {refused}");
    }
}
