//! The three telemetry signals. loadgen uses the collector's own type, so one name and one
//! spelling (`"logs"`, `"metrics"`, `"traces"`, the `results.json` keys) serve the whole
//! workspace.

pub use collector::event::Signal;
