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

/// Decompresses a snappy block, refusing one that claims more than `limit` bytes.
pub fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let size = snap::raw::decompress_len(input).map_err(|e| WireError::Snappy(e.to_string()))?;
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
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(input).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| WireError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(WireError::TooLarge {
            size: out.len(),
            limit,
        });
    }
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
