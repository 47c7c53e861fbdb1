//! Latency histograms as stored in `results.json`: the exact HdrHistogram (V2 serialization,
//! base64) plus a summary for humans and quick reads. Merging two [`HistogramData`] adds the
//! histograms exactly, which is what `loadgen merge` needs to combine shards.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// Why a stored histogram cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram is not valid base64: {0}")]
    Base64(String),
    #[error("histogram does not deserialize: {0}")]
    Decode(String),
    #[error("histograms cannot be added: {0}")]
    Add(String),
}

/// A histogram of values in one unit (`unit` says which: "us" or "ms").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramData {
    pub unit: String,
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    /// HdrHistogram V2 serialization, base64 (standard alphabet).
    pub hdr: String,
}

/// A new histogram covering 1 to `max` (3 significant digits, auto-resizing).
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| {
        Histogram::new_with_bounds(1, u64::MAX >> 1, 3).unwrap_or_else(|_| unreachable!())
    });
    h.auto(true);
    h
}

impl HistogramData {
    /// Captures `h` (exactly) with its summary.
    pub fn from_histogram(h: &Histogram<u64>, unit: &str) -> Self {
        let mut buf = Vec::new();
        // Serializing into a Vec cannot fail for a valid histogram.
        let _ = V2Serializer::new().serialize(h, &mut buf);
        HistogramData {
            unit: unit.to_string(),
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            max: h.max(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            hdr: base64::engine::general_purpose::STANDARD.encode(buf),
        }
    }

    /// An empty histogram.
    pub fn empty(unit: &str) -> Self {
        HistogramData::from_histogram(&new_histogram(), unit)
    }

    /// The exact histogram back.
    pub fn histogram(&self) -> Result<Histogram<u64>, HistogramError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.hdr)
            .map_err(|e| HistogramError::Base64(e.to_string()))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
        h.auto(true);
        Ok(h)
    }

    /// The sum of two histograms of the same unit (exact).
    pub fn merge(&self, other: &HistogramData) -> Result<HistogramData, HistogramError> {
        if self.unit != other.unit {
            return Err(HistogramError::Add(format!(
                "units differ: {} and {}",
                self.unit, other.unit
            )));
        }
        let mut a = self.histogram()?;
        let b = other.histogram()?;
        a.add(&b)
            .map_err(|e| HistogramError::Add(format!("{e:?}")))?;
        Ok(HistogramData::from_histogram(&a, &self.unit))
    }

    /// (percentile, value) pairs for a percentile-spectrum plot.
    pub fn spectrum(&self) -> Result<Vec<(f64, u64)>, HistogramError> {
        let h = self.histogram()?;
        if h.is_empty() {
            return Ok(Vec::new());
        }
        Ok(h.iter_quantiles(2)
            .map(|v| (v.quantile_iterated_to() * 100.0, v.value_iterated_to()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=1000u64 {
            a.record(v).unwrap();
            b.record(v * 1000).unwrap();
        }
        let (da, db) = (
            HistogramData::from_histogram(&a, "us"),
            HistogramData::from_histogram(&b, "us"),
        );
        assert_eq!(da.histogram().unwrap(), a);
        let m = da.merge(&db).unwrap();
        assert_eq!(m.count, 2000);
        assert_eq!(m.max, b.max());
        let mut both = a.clone();
        both.add(&b).unwrap();
        assert_eq!(m.histogram().unwrap(), both);
        assert!(da.merge(&HistogramData::empty("ms")).is_err());
        assert!(!da.spectrum().unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = HistogramData::empty("us");
        d.hdr = "!!!".into();
        assert!(matches!(d.histogram(), Err(HistogramError::Base64(_))));
        d.hdr = base64::engine::general_purpose::STANDARD.encode(b"not a histogram");
        assert!(matches!(d.histogram(), Err(HistogramError::Decode(_))));
    }
}
