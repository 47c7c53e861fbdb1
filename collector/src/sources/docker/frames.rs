//! Splits a container's log stream into lines per stream.
//!
//! Without a TTY the engine multiplexes stdout and stderr: each frame is an 8-byte header,
//! `[STREAM_TYPE, 0, 0, 0, SIZE1, SIZE2, SIZE3, SIZE4]` (type 0 stdin, 1 stdout, 2 stderr,
//! 3 an error from the engine; size big-endian u32), then that many bytes. With a TTY the body
//! is the raw stream, all of it stdout. Frames are consumed incrementally (a frame may span
//! chunks and a chunk may hold many frames), so memory stays bounded by [`MAX_LINE`].
//!
//! Each line, with `timestamps=true`, starts with an RFC 3339 timestamp with nanoseconds and a
//! space: [`split_timestamp`] takes it off.

/// A line longer than this is cut into pieces of this size.
pub const MAX_LINE: usize = 1 << 20;

/// Which output of the container a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Where the demultiplexer is in the byte stream.
#[derive(Debug)]
enum State {
    /// Reading a frame header; holds the bytes of it read so far.
    Header(Vec<u8>),
    /// Inside a frame's payload: its kind (`None`: engine error text) and the bytes left.
    Payload(Option<Stream>, u32),
}

/// Turns chunks of a log stream into complete lines.
#[derive(Debug)]
pub struct Demux {
    tty: bool,
    state: State,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Engine error text (frame type 3), surfaced in the source's logs.
    errors: Vec<u8>,
}

impl Demux {
    pub fn new(tty: bool) -> Self {
        Demux {
            tty,
            state: State::Header(Vec::with_capacity(8)),
            stdout: Vec::new(),
            stderr: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Feeds a chunk; complete lines (without their newline) go to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<(Stream, Vec<u8>)>) {
        if self.tty {
            Self::split(&mut self.stdout, Stream::Stdout, chunk, out);
            return;
        }
        while !chunk.is_empty() {
            match &mut self.state {
                State::Header(h) => {
                    let take = (8 - h.len()).min(chunk.len());
                    h.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if h.len() == 8 {
                        let size = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                        let kind = match h[0] {
                            2 => Some(Stream::Stderr),
                            3 => None,
                            _ => Some(Stream::Stdout), // 0 (stdin) and 1
                        };
                        self.state = State::Payload(kind, size);
                    }
                }
                State::Payload(kind, left) => {
                    let take = (*left as usize).min(chunk.len());
                    let (data, rest) = chunk.split_at(take);
                    match kind {
                        Some(Stream::Stdout) => {
                            Self::split(&mut self.stdout, Stream::Stdout, data, out)
                        }
                        Some(Stream::Stderr) => {
                            Self::split(&mut self.stderr, Stream::Stderr, data, out)
                        }
                        None => {
                            let room = MAX_LINE.saturating_sub(self.errors.len());
                            self.errors.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    *left -= take as u32;
                    chunk = rest;
                    if *left == 0 {
                        self.state = State::Header(Vec::with_capacity(8));
                    }
                }
            }
        }
    }

    /// The stream ended: what is left of each stream is a last line.
    pub fn finish(&mut self, out: &mut Vec<(Stream, Vec<u8>)>) {
        for (buf, stream) in [
            (&mut self.stdout, Stream::Stdout),
            (&mut self.stderr, Stream::Stderr),
        ] {
            if !buf.is_empty() {
                out.push((stream, std::mem::take(buf)));
            }
        }
    }

    /// Engine error text received so far (frame type 3), taken.
    pub fn take_errors(&mut self) -> Option<String> {
        (!self.errors.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.errors)).into_owned())
    }

    fn split(buf: &mut Vec<u8>, stream: Stream, data: &[u8], out: &mut Vec<(Stream, Vec<u8>)>) {
        for piece in data.split_inclusive(|b| *b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(body) => {
                    buf.extend_from_slice(body);
                    out.push((stream, std::mem::take(buf)));
                }
                None => {
                    buf.extend_from_slice(piece);
                    while buf.len() >= MAX_LINE {
                        let rest = buf.split_off(MAX_LINE);
                        out.push((stream, std::mem::replace(buf, rest)));
                    }
                }
            }
        }
    }
}

/// `2024-05-01T10:00:00.123456789Z message` → (nanoseconds, `message`); `None` when the line
/// does not start with a timestamp.
pub fn split_timestamp(line: &str) -> Option<(i64, &str)> {
    let (ts, rest) = line.split_once(' ').unwrap_or((line, ""));
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some((t.timestamp_nanos_opt()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(data.len() as u32).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn demultiplexes_frames_split_anywhere() {
        let mut body = frame(1, b"out one\nout ");
        body.extend(frame(2, b"err one\n"));
        body.extend(frame(3, b"engine trouble"));
        body.extend(frame(1, b"two\n"));
        body.extend(frame(2, b"tail"));
        // Every way of cutting the body in two gives the same lines.
        for cut in 0..body.len() {
            let mut d = Demux::new(false);
            let mut out = Vec::new();
            d.push(&body[..cut], &mut out);
            d.push(&body[cut..], &mut out);
            d.finish(&mut out);
            let got: Vec<_> = out
                .iter()
                .map(|(s, l)| (*s, String::from_utf8_lossy(l).into_owned()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (Stream::Stdout, "out one".to_string()),
                    (Stream::Stderr, "err one".to_string()),
                    (Stream::Stdout, "out two".to_string()),
                    (Stream::Stderr, "tail".to_string()),
                ],
                "cut at {cut}"
            );
            assert_eq!(d.take_errors().as_deref(), Some("engine trouble"));
        }
    }

    #[test]
    fn raw_tty_stream_is_stdout() {
        let mut d = Demux::new(true);
        let mut out = Vec::new();
        d.push(b"a\r\nb", &mut out);
        d.push(b"c\n", &mut out);
        assert_eq!(
            out,
            vec![
                (Stream::Stdout, b"a\r".to_vec()),
                (Stream::Stdout, b"bc".to_vec())
            ]
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            split_timestamp("2024-05-01T10:00:00.000000001Z hi there"),
            Some((1_714_557_600_000_000_001, "hi there"))
        );
        assert_eq!(split_timestamp("no timestamp"), None);
    }
}
