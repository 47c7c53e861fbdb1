//! `docker`: placeholder.
use super::{BuildError, Source};
pub fn build(table: toml::Table) -> Result<Box<dyn Source>, BuildError> {
    let _ = table;
    Err(BuildError::UnknownType("docker".into()))
}
