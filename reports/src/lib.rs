//! The results of a load run and their presentation.
//!
//! | module | what it holds |
//! |---|---|
//! | [`capacity`] | `capacity.json`: a capacity search's stages and knee, its summary (its page: [`html::capacity`]) |
//! | [`results`] | the versioned `results.json` schema every consumer reads (CLI summary, SLO verdicts, HTML report, compare, merge) |
//! | [`histogram`] | latency histograms stored exactly (HdrHistogram V2 + base64) so shard results merge exactly |
//! | [`html`] | the report: one self-contained HTML file (inline CSS, inline SVG, no scripts), optionally against a baseline |
//! | [`read_path`] | the read path under load (`--viewers`): dashboard queries per kind and per panel, their latency and errors |
//! | [`svg`] | the hand-written SVG line and bar charts the report uses |
//! | [`text`] | the plain-text summary the CLI prints |
//! | [`verdict`] | a run's objectives (default and `--slo`), their checks and the one verdict every output shows |

pub mod capacity;
pub mod histogram;
pub mod html;
pub mod read_path;
pub mod results;
pub mod svg;
pub mod text;
pub mod verdict;

pub use capacity::Capacity;
pub use histogram::{HistogramData, HistogramError};
pub use html::render;
pub use results::{Results, SCHEMA_VERSION};
pub use text::summary;
pub use verdict::{Objectives, Outcome, Slo, SloError, SloKind, Verdict};
