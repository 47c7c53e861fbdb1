//! The results of a load run and their presentation.
//!
//! | module | what it holds |
//! |---|---|
//! | [`results`] | the versioned `results.json` schema every consumer reads (CLI summary, SLO verdicts, HTML report, compare, merge) |
//! | [`histogram`] | latency histograms stored exactly (HdrHistogram V2 + base64) so shard results merge exactly |
//!
//! The HTML renderer lands with the report work: one self-contained file, inline SVG charts.

pub mod histogram;
pub mod results;

pub use histogram::{HistogramData, HistogramError};
pub use results::{Results, SCHEMA_VERSION};
