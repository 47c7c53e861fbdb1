//! Debian's `prometheus` and `prometheus-node-exporter`, started on free 127.0.0.1 ports (stub).
