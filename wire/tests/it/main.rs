//! wire's integration tests, one binary (each module was its own binary before): the OTLP/JSON
//! example payloads and the codecs' property tests.

mod otlp_json;
mod props;
