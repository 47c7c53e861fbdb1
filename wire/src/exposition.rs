//! Prometheus text exposition format 0.0.4 (placeholder until filled in).
