//! The one error type of this crate: what was wrong with the bytes, said so a client can fix it.

/// Why a payload could not be decoded. Causes are part of the messages (they are what a client
/// reads in a 400), not also `source()`s, so an error chain prints each once.
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
    Protobuf(prost::DecodeError),
    #[error("json: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelError),
    #[error("invalid timestamp {value:?}: {reason}")]
    Timestamp { value: String, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("line {line}: {reason}")]
    Exposition { line: usize, reason: String },
    #[error(transparent)]
    Id(#[from] crate::otlp::IdError),
}

impl From<prost::DecodeError> for WireError {
    fn from(e: prost::DecodeError) -> Self {
        WireError::Protobuf(e)
    }
}

impl From<serde_json::Error> for WireError {
    fn from(e: serde_json::Error) -> Self {
        WireError::Json(e)
    }
}
