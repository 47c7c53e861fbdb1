//! Typed clients for the query APIs of Loki, Prometheus/Mimir and Tempo (stub).
