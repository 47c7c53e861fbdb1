//! The one error type of this crate: what was wrong with the bytes, said so a client can fix it.

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The snap crate's message, which already starts with "snappy: ".
    #[error("{0}")]
    Snappy(String),
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("decompressed size {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Labels(#[from] crate::labels::LabelError),
    #[error("invalid timestamp {value:?}: {reason}")]
    Timestamp { value: String, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("line {line}: {reason}")]
    Exposition { line: usize, reason: String },
    #[error("{0}")]
    Id(#[from] crate::otlp::IdError),
}
