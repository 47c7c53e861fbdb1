//! Snappy block format (what Loki push and remote write call `snappy`; not the framed stream
//! format) and gzip, each decoded with a bound on the output so a small hostile body cannot make
//! us allocate gigabytes.

use std::io::Read;

use crate::WireError;

/// Compresses with the snappy block format.
pub fn snappy_compress(input: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(input)
        .unwrap_or_else(|_| Vec::new()) // only fails for inputs over ~4 GiB
}

/// A snappy block compressor kept between calls, so its hash table is allocated once and not
/// per body (what a writer that compresses every push holds).
pub struct SnappyCompressor(snap::raw::Encoder);

impl Default for SnappyCompressor {
    fn default() -> Self {
        SnappyCompressor(snap::raw::Encoder::new())
    }
}

impl std::fmt::Debug for SnappyCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnappyCompressor")
    }
}

impl SnappyCompressor {
    /// Compresses `input` into a new buffer of the compressed size.
    pub fn compress(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = vec![0; snap::raw::max_compress_len(input.len())];
        match self.0.compress(input, &mut out) {
            Ok(n) => {
                out.truncate(n);
                out
            }
            Err(_) => Vec::new(), // only for inputs over ~4 GiB, as `snappy_compress`
        }
    }
}

/// The length a snappy block declares it decompresses to (read from its header, nothing
/// decompressed).
pub fn snappy_decompressed_len(input: &[u8]) -> Result<usize, WireError> {
    snap::raw::decompress_len(input).map_err(|e| WireError::Snappy(e.to_string()))
}

/// Decompresses a snappy block, refusing one that claims more than `limit` bytes.
pub fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let size = snappy_decompressed_len(input)?;
    if size > limit {
        return Err(WireError::TooLarge { size, limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(input)
        .map_err(|e| WireError::Snappy(e.to_string()))
}

/// Compresses with gzip at the default level.
pub fn gzip_compress(input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(input);
    enc.finish().unwrap_or_default()
}

/// Decompresses gzip, refusing output over `limit` bytes.
pub fn gzip_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    gzip_decompress_metered(input, limit, &mut |_| Ok::<(), WireError>(()))
}

/// [`gzip_decompress`], asking `reserve` for every byte of buffer before growing into it (how a
/// receiver charges a memory budget as the output grows, instead of after the fact).
pub fn gzip_decompress_metered<E: From<WireError>>(
    input: &[u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    read_metered(
        flate2::read::MultiGzDecoder::new(input),
        limit,
        reserve,
        |e| WireError::Gzip(e.to_string()),
    )
}

/// Zlib (`Content-Encoding: deflate`), as [`gzip_decompress_metered`].
pub fn deflate_decompress_metered<E: From<WireError>>(
    input: &[u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    read_metered(flate2::read::ZlibDecoder::new(input), limit, reserve, |e| {
        WireError::Gzip(format!("deflate: {e}"))
    })
}

/// Reads `r` to its end into a buffer that doubles (from 64 KiB) only after `reserve` granted
/// the growth; more than `limit` bytes is [`WireError::TooLarge`].
fn read_metered<E: From<WireError>>(
    mut r: impl Read,
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
    err: impl Fn(std::io::Error) -> WireError,
) -> Result<Vec<u8>, E> {
    const FIRST: usize = 64 << 10;
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e).into()),
        };
        let size = out.len() + n;
        if size > limit {
            return Err(WireError::TooLarge { size, limit }.into());
        }
        if size > out.capacity() {
            let want = (out.capacity() * 2).max(FIRST).max(size).min(limit);
            reserve(want - out.capacity())?;
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_round_trip() {
        let data = b"hello hello hello hello".repeat(100);
        let c = snappy_compress(&data);
        assert!(c.len() < data.len());
        assert_eq!(snappy_decompress(&c, 1 << 20).unwrap(), data);
    }

    #[test]
    fn snappy_limit_is_checked_before_allocating() {
        let data = vec![0u8; 10_000];
        let c = snappy_compress(&data);
        match snappy_decompress(&c, 100) {
            Err(WireError::TooLarge { size, limit }) => assert_eq!((size, limit), (10_000, 100)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn metered_gzip_asks_before_growing() {
        let data = vec![7u8; 300_000];
        let c = gzip_compress(&data);
        let mut granted = 0usize;
        let out = gzip_decompress_metered(&c, 1 << 20, &mut |n| {
            granted += n;
            Ok::<(), WireError>(())
        })
        .unwrap();
        assert_eq!(out, data);
        assert!(
            granted >= out.capacity() && granted <= 2 * data.len(),
            "{granted}"
        );
        // A refusal stops it before the buffer grows past what was granted.
        let mut left = 100_000usize;
        let r = gzip_decompress_metered(&c, 1 << 20, &mut |n| match left.checked_sub(n) {
            Some(l) => {
                left = l;
                Ok(())
            }
            None => Err(WireError::TooLarge { size: n, limit: 0 }),
        });
        assert!(r.is_err());
    }

    #[test]
    fn gzip_round_trip_and_limit() {
        let data = b"abc".repeat(1000);
        let c = gzip_compress(&data);
        assert_eq!(gzip_decompress(&c, 1 << 20).unwrap(), data);
        assert!(matches!(
            gzip_decompress(&c, 10),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            gzip_decompress(b"not gzip", 10),
            Err(WireError::Gzip(_))
        ));
    }
}
