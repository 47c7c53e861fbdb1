//! The dashboards in `deploy/grafana/` read as data: the model lives in loadgen
//! ([`loadgen::read::dashboard`], where the viewers of `loadgen --viewers` use it); the
//! dashboard scenarios and `tests/it/deploy.rs` reach it through this name.

pub use loadgen::read::dashboard::*;
