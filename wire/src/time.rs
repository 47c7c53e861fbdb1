//! The wall clock in the unit every timestamp on these wires uses: nanoseconds since the Unix
//! epoch (Loki push entries, OTLP `time_unix_nano`, canary stamps). One function, so every crate
//! reads the clock the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch; 0 for a clock before 1970, `i64::MAX` past 2262.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_after_2026_and_moves_forward() {
        let a = now_ns();
        // 2026-01-01T00:00:00Z
        assert!(a > 1_767_225_600_000_000_000, "{a}");
        assert!(now_ns() >= a);
    }
}
