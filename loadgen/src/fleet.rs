//! The emulated fleet: every device's identity and labels. Every series, stream and span a
//! device emits carries [`Device::labels`]: `region`, `location` (store), `node_type`, `device`,
//! `brand`, `problem_mode` (`healthy` | `problem`).

use serde::{Deserialize, Serialize};

/// The kinds of device in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    Server,
    Pos,
    Router,
    Switch,
    Custom,
}

impl DeviceType {
    pub const ALL: [DeviceType; 5] = [
        DeviceType::Server,
        DeviceType::Pos,
        DeviceType::Router,
        DeviceType::Switch,
        DeviceType::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Server => "server",
            DeviceType::Pos => "pos",
            DeviceType::Router => "router",
            DeviceType::Switch => "switch",
            DeviceType::Custom => "custom",
        }
    }
}

/// One emulated device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Position in the whole fleet (0-based); stable for a seed, the basis of sharding.
    pub index: u64,
    /// Unique name, e.g. `pos-store-0042-01`.
    pub id: String,
    pub device_type: DeviceType,
    pub region: String,
    /// The store.
    pub location: String,
    pub brand: String,
    /// `problem` mode shifts its distributions (errors, latency, loss).
    pub problem: bool,
}

impl Device {
    /// `healthy` or `problem`.
    pub fn problem_mode(&self) -> &'static str {
        if self.problem { "problem" } else { "healthy" }
    }

    /// The labels every signal of this device carries, sorted by name.
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            ("brand".into(), self.brand.clone()),
            ("device".into(), self.id.clone()),
            ("location".into(), self.location.clone()),
            ("node_type".into(), self.device_type.as_str().into()),
            ("problem_mode".into(), self.problem_mode().into()),
            ("region".into(), self.region.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_complete() {
        let d = Device {
            index: 7,
            id: "pos-store-0001-01".into(),
            device_type: DeviceType::Pos,
            region: "eu-west".into(),
            location: "store-0001".into(),
            brand: "brand1".into(),
            problem: true,
        };
        let l = d.labels();
        let mut sorted = l.clone();
        sorted.sort();
        assert_eq!(l, sorted);
        assert!(l.contains(&("problem_mode".into(), "problem".into())));
        assert!(l.contains(&("node_type".into(), "pos".into())));
    }
}
