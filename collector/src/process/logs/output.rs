//! `logs.output`: an extracted field becomes the log line, as Alloy's `stage.output`.
//!
//! ```toml
//! type = "logs.output"
//! source = "msg"
//! ```
//!
//! When the field is missing the line is left as it is.

use serde::Deserialize;

use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    source: String,
}

/// The `logs.output` stage.
pub struct Output {
    source: String,
}

impl Output {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        if c.source.is_empty() {
            return Err(super::invalid("source", "must name an extracted field"));
        }
        Ok(Output { source: c.source })
    }
}

impl Stage<LogBatch> for Output {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        for record in batch.iter_mut() {
            if let Some(v) = record.fields.get(&self.source) {
                record.line.clone_from(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{record, table};

    #[test]
    fn field_becomes_the_line() {
        let stage = Output::build(table(r#"source = "msg""#)).unwrap();
        let mut a = record(r#"{"msg":"hello"}"#);
        a.fields.insert("msg".into(), "hello".into());
        let mut batch = vec![a, record("kept")];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].line, "hello");
        assert_eq!(batch[1].line, "kept");
        assert!(Output::build(table("")).is_err());
    }
}
