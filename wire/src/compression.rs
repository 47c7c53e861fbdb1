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

/// The most a snappy block expands: a 3-byte copy element writes at most 64 bytes.
const SNAPPY_MAX_RATIO: usize = 22;

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
/// decompressed). A length the block cannot hold (more than 22 times its size: no snappy
/// element expands more) is an error, so a few bytes cannot make a receiver reserve up to its
/// limit.
pub fn snappy_decompressed_len(input: &[u8]) -> Result<usize, WireError> {
    let size = snap::raw::decompress_len(input).map_err(|e| WireError::Snappy(e.to_string()))?;
    if size > input.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(WireError::Snappy(format!(
            "header declares {size} bytes, more than a {}-byte block can hold",
            input.len()
        )));
    }
    Ok(size)
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

/// Compresses with gzip at the fastest level (1), as the OpenTelemetry Collector's exporters
/// do (`gzip.BestSpeed`): telemetry compresses well even so, and level 6 took over half of the
/// OTLP writer's CPU.
pub fn gzip_compress(input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(input.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(input);
    enc.finish().unwrap_or_default()
}

/// Decompresses gzip, refusing output over `limit` bytes.
pub fn gzip_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    gzip_decompress_metered(input, limit, &mut |_| Ok::<(), WireError>(()))
}

/// [`gzip_decompress`], asking `reserve` for the output buffer before allocating it (how a
/// receiver charges a memory budget before the memory is taken, not after the fact); see
/// [`read_metered`].
pub fn gzip_decompress_metered<E: From<WireError>>(
    input: &[u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    read_metered(
        || Ok(flate2::read::MultiGzDecoder::new(input)),
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
    read_metered(
        || Ok(flate2::read::ZlibDecoder::new(input)),
        limit,
        reserve,
        |e| WireError::Gzip(format!("deflate: {e}")),
    )
}

/// Decompresses what `open` reads in two passes: the first only counts the output (through a
/// 16 KiB buffer on the stack; more than `limit` bytes is [`WireError::TooLarge`], as soon as
/// it passes), then `reserve` is asked for exactly that size once, and the second pass fills a
/// buffer of that size. The output is held once, with no spare capacity and no growth copies
/// (a doubling buffer holds up to 1.5 times its content while it copies); the price is
/// decompressing twice. A read error is `err` of it.
pub fn read_metered<E: From<WireError>, R: Read>(
    open: impl Fn() -> std::io::Result<R>,
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> Result<(), E>,
    err: impl Fn(std::io::Error) -> WireError,
) -> Result<Vec<u8>, E> {
    let mut r = open().map_err(&err)?;
    let mut chunk = [0u8; 16 << 10];
    let mut size = 0usize;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e).into()),
        };
        size = size.saturating_add(n);
        if size > limit {
            return Err(WireError::TooLarge { size, limit }.into());
        }
    }
    drop(r);
    reserve(size)?;
    let mut out = vec![0u8; size];
    open()
        .and_then(|mut r| r.read_exact(&mut out))
        .map_err(&err)?;
    Ok(out)
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
        // Asked once, for exactly the output.
        assert_eq!((granted, out.capacity()), (data.len(), data.len()));
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

    /// The heap peak of a metered decompression is the output (granted once) plus the
    /// decoder's state: no doubling buffer's spare capacity, no growth copy beside it.
    #[test]
    fn metered_gzip_peak_is_the_output_plus_the_decoder() {
        let data = vec![7u8; 4 << 20];
        let c = gzip_compress(&data);
        let mut granted = 0usize;
        let info = allocation_counter::measure(|| {
            let out = gzip_decompress_metered(&c, 8 << 20, &mut |n| {
                granted += n;
                Ok::<(), WireError>(())
            });
            assert_eq!(out.map(|o| o.len()).ok(), Some(data.len()));
        });
        let peak = info.bytes_max as usize;
        assert!(
            peak <= granted + (256 << 10),
            "peak {peak}, {granted} granted"
        );
    }

    #[test]
    fn snappy_declared_length_must_fit_the_block() {
        // Four bytes declaring 64 MiB.
        let lie = [0x80, 0x80, 0x80, 0x20];
        assert_eq!(snap::raw::decompress_len(&lie).ok(), Some(64 << 20));
        assert!(matches!(
            snappy_decompressed_len(&lie),
            Err(WireError::Snappy(_))
        ));
        // The most compressible input still passes.
        let zeros = vec![0u8; 8 << 20];
        let c = snappy_compress(&zeros);
        assert_eq!(snappy_decompressed_len(&c).unwrap(), zeros.len());
        assert_eq!(snappy_decompress(&c, 16 << 20).unwrap(), zeros);
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
