//! Loki client (being written).
