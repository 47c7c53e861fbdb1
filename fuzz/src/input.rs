//! The input of the request targets (`loki_push` and the `rx_*` receivers): an HTTP-like head,
//! a blank line, the body. Readable, so the seeds are written without a table of codes, and
//! mutable, so the fuzzer also tries header values nobody sends.
//!
//! ```text
//! /loki/api/v1/push                 <- a line starting with '/': the request path
//! content-type: application/x-protobuf
//! content-encoding: gzip
//! x-fuzz-encode: 1                  <- the target encodes the body as the headers say
//! x-fuzz-chunk: 100                 <- the body arrives in chunks of this many bytes
//!                                   <- the first blank line ("\n\n") ends the head
//! <body bytes>
//! ```
//!
//! An input with no "\n\n" is all body, with no headers; one starting with "\n\n" has an empty
//! head. With `x-fuzz-encode: 1` the body is the plain message (protobuf or JSON) and the target
//! does what a client does: snappy for Loki protobuf and remote write, the `content-encoding`
//! (gzip, deflate), and for gRPC the `grpc-encoding` (gzip, zstd) and the length-prefixed frame
//! (see [`crate::encode`]). Without it the body goes as it is.

/// One parsed input.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// The path line, if any.
    pub path: Option<&'a str>,
    /// Header lines (name, value), in order, `x-fuzz-*` ones left out.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// `x-fuzz-encode: 1`.
    pub encode: bool,
    /// `x-fuzz-chunk: N` (N ≥ 1), else the body arrives whole.
    pub chunk: Option<usize>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// Reads `data` as described in the module docs; never fails.
    pub fn parse(data: &'a [u8]) -> Request<'a> {
        let Some(end) = data.windows(2).position(|w| w == b"\n\n") else {
            return Request {
                body: data,
                ..Default::default()
            };
        };
        let mut req = Request {
            body: &data[end + 2..],
            ..Default::default()
        };
        for line in data[..end].split(|&b| b == b'\n') {
            if line.first() == Some(&b'/') {
                req.path = std::str::from_utf8(line).ok();
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(&line[..colon]) else {
                continue;
            };
            let name = name.trim();
            let value = line[colon + 1..].trim_ascii();
            match name.to_ascii_lowercase().as_str() {
                "x-fuzz-encode" => req.encode = value == b"1",
                "x-fuzz-chunk" => {
                    req.chunk = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<usize>().ok())
                        .filter(|n| *n > 0)
                }
                _ => req.headers.push((name, value)),
            }
        }
        req
    }

    /// The value of header `name` (case-insensitive), if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The input that parses back to this request, with `body` (what the seed writer makes).
    pub fn write(
        path: Option<&str>,
        headers: &[(&str, &str)],
        encode: bool,
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(p) = path {
            out.extend_from_slice(p.as_bytes());
            out.push(b'\n');
        }
        for (n, v) in headers {
            out.extend_from_slice(format!("{n}: {v}\n").as_bytes());
        }
        if encode {
            out.extend_from_slice(b"x-fuzz-encode: 1\n");
        }
        out.push(b'\n');
        if out.len() == 1 {
            // No head: "\n\n" alone says so.
            out.push(b'\n');
        }
        out.extend_from_slice(body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_head_and_body() {
        let r = Request::parse(b"/v1/logs\ncontent-type: application/json\nx-fuzz-encode: 1\nx-fuzz-chunk: 3\n\n{}\n\nx");
        assert_eq!(r.path, Some("/v1/logs"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert!(r.encode);
        assert_eq!(r.chunk, Some(3));
        assert_eq!(r.body, b"{}\n\nx");
        let r = Request::parse(b"no head");
        assert_eq!((r.body, r.headers.len()), (&b"no head"[..], 0));
        let w = Request::write(None, &[], false, b"b");
        assert_eq!(Request::parse(&w).body, b"b");
        let w = Request::write(Some("/p"), &[("a", "b")], true, b"\n\nb");
        let r = Request::parse(&w);
        assert_eq!(
            (r.path, r.header("a"), r.encode, r.body),
            (Some("/p"), Some("b"), true, &b"\n\nb"[..])
        );
    }
}
