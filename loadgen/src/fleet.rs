//! The emulated fleet: every device's identity and labels. Every series, stream and span a
//! device emits carries [`Device::labels`]: `region`, `location` (store), `node_type`, `device`,
//! `brand`, `problem_mode` (`healthy` | `problem`).
//!
//! A [`FleetSpec`] (TOML, given with `--fleet fleet.toml`) says how many devices, the weights of
//! the device types, the regions, how many stores, the brands, the share of devices in problem
//! mode and the seed. [`Fleet::generate`] builds the fleet from it; every device is a function of
//! `(spec, index)` only, so device `i` is the same whatever the fleet size and a shard
//! ([`Fleet::generate_shard`], `--shard i/n`) builds its slice without building the rest.
//!
//! Placement: device `i` is in store `i % stores` (stores fill round-robin), at ordinal
//! `i / stores` within that store; store `s` is in region `s / stores_per_region` and has one
//! brand, drawn from `(seed, s)`. The type and the problem flag are drawn from `(seed, i)`.
//! Names: stores `store-0042`, devices `<type>-<store number>-<ordinal>` (`pos-0042-03`).

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
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
    /// Unique name, `<type>-<store number>-<ordinal in store>`, e.g. `pos-0042-03`.
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

/// What went wrong reading or checking a fleet spec; every variant names the key.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet spec {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type (toml's message names the key and line).
    #[error("fleet spec: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("fleet spec: `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("shard {index}/{count}: the index must be below the count, and the count above 0")]
    Shard { index: u64, count: u64 },
    /// A shard that is not `i/n` with whole numbers.
    #[error("shard `{0}`: expected i/n, e.g. 0/4")]
    ShardSyntax(String),
    /// `--shard-from-env` without the variables it reads, or with a bad value in one.
    #[error("shard from the environment: {0}")]
    ShardEnv(String),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> FleetError {
    FleetError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Relative weights of the device types (need not sum to 1; zero excludes a type).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TypeMix {
    pub server: f64,
    pub pos: f64,
    pub router: f64,
    pub switch: f64,
    pub custom: f64,
}

impl Default for TypeMix {
    /// A store: a handful of tills, one router, one switch, one back-office server, a sensor.
    fn default() -> Self {
        TypeMix {
            server: 1.0,
            pos: 6.0,
            router: 1.0,
            switch: 1.0,
            custom: 1.0,
        }
    }
}

impl TypeMix {
    /// The weight of one type.
    pub fn weight(&self, t: DeviceType) -> f64 {
        match t {
            DeviceType::Server => self.server,
            DeviceType::Pos => self.pos,
            DeviceType::Router => self.router,
            DeviceType::Switch => self.switch,
            DeviceType::Custom => self.custom,
        }
    }

    fn validate(&self) -> Result<(), FleetError> {
        let keys = [
            ("mix.server", self.server),
            ("mix.pos", self.pos),
            ("mix.router", self.router),
            ("mix.switch", self.switch),
            ("mix.custom", self.custom),
        ];
        for (key, w) in keys {
            if !w.is_finite() || w < 0.0 {
                return Err(invalid(key, format!("a weight is >= 0, got {w}")));
            }
        }
        if keys.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
            return Err(invalid("mix", "at least one weight must be above 0"));
        }
        Ok(())
    }

    /// The type for a uniform draw `u` in `[0, 1)`.
    fn pick(&self, u: f64) -> DeviceType {
        let total: f64 = DeviceType::ALL.iter().map(|t| self.weight(*t)).sum();
        let mut acc = 0.0;
        let mut last = DeviceType::Pos;
        for t in DeviceType::ALL {
            let w = self.weight(t);
            if w <= 0.0 {
                continue;
            }
            acc += w / total;
            last = t;
            if u < acc {
                return t;
            }
        }
        last
    }
}

/// The fleet to emulate (TOML; every key optional):
///
/// ```toml
/// seed = 42
/// devices = 1000
/// regions = ["eu-west", "us-east"]
/// stores_per_region = 20      # or: stores = 40 (spread over the regions)
/// brands = ["brand1", "brand2"]
/// problem_fraction = 0.05
/// [mix]
/// pos = 6
/// server = 1
/// router = 1
/// switch = 1
/// custom = 1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSpec {
    /// The seed everything is drawn from.
    pub seed: u64,
    /// How many devices in the whole fleet.
    pub devices: u64,
    /// Weights of the device types.
    pub mix: TypeMix,
    /// Region names.
    pub regions: Vec<String>,
    /// Stores in each region (ignored when `stores` is set).
    pub stores_per_region: u64,
    /// Total stores, spread evenly over the regions; overrides `stores_per_region`.
    pub stores: Option<u64>,
    /// Brand names; each store has one.
    pub brands: Vec<String>,
    /// Share of devices in problem mode, in `[0, 1]`.
    pub problem_fraction: f64,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            seed: 1,
            devices: 100,
            mix: TypeMix::default(),
            regions: ["eu-west", "eu-central", "us-east", "us-west", "ap-south"]
                .map(String::from)
                .to_vec(),
            stores_per_region: 10,
            stores: None,
            brands: ["brand1", "brand2", "brand3"].map(String::from).to_vec(),
            problem_fraction: 0.05,
        }
    }
}

impl FleetSpec {
    /// Parses and checks a spec.
    pub fn from_toml_str(s: &str) -> Result<Self, FleetError> {
        let spec: FleetSpec = toml::from_str(s)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and checks the spec file given with `--fleet`.
    pub fn load(path: &Path) -> Result<Self, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|source| FleetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks the values serde cannot: ranges, empty lists, names usable as label values.
    pub fn validate(&self) -> Result<(), FleetError> {
        self.mix.validate()?;
        if !(0.0..=1.0).contains(&self.problem_fraction) {
            return Err(invalid(
                "problem_fraction",
                format!("must be within [0, 1], got {}", self.problem_fraction),
            ));
        }
        check_names("regions", &self.regions)?;
        check_names("brands", &self.brands)?;
        if self.stores == Some(0) {
            return Err(invalid("stores", "must be above 0"));
        }
        if self.stores.is_none() && self.stores_per_region == 0 {
            return Err(invalid("stores_per_region", "must be above 0"));
        }
        Ok(())
    }

    /// Total number of stores.
    pub fn store_count(&self) -> u64 {
        self.stores
            .unwrap_or(self.stores_per_region * self.regions.len() as u64)
    }

    /// The device at `index`: a function of the spec (less `devices`) and the index only.
    pub fn device(&self, index: u64) -> Device {
        let stores = self.store_count().max(1);
        let store = index % stores;
        let ordinal = index / stores;
        // Stores per region, rounded up so every store has a region.
        let per_region = stores.div_ceil(self.regions.len().max(1) as u64).max(1);
        let region = pick_name(&self.regions, store / per_region, "region");
        let mut store_rng = rng_for(self.seed, STORE_STREAM, store);
        let brand = pick_name(
            &self.brands,
            store_rng.random_range(0..self.brands.len().max(1) as u64),
            "brand",
        );
        let mut rng = rng_for(self.seed, DEVICE_STREAM, index);
        let device_type = self.mix.pick(rng.random::<f64>());
        let problem = rng.random::<f64>() < self.problem_fraction;
        let number = store + 1;
        Device {
            index,
            id: format!("{}-{number:04}-{ordinal:02}", device_type.as_str()),
            device_type,
            region,
            location: format!("store-{number:04}"),
            brand,
            problem,
        }
    }
}

fn check_names(key: &'static str, names: &[String]) -> Result<(), FleetError> {
    if names.is_empty() {
        return Err(invalid(key, "needs at least one name"));
    }
    for n in names {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                key,
                format!("{n:?}: names are non-empty and use only [A-Za-z0-9_.-]"),
            ));
        }
    }
    Ok(())
}

fn pick_name(names: &[String], i: u64, fallback: &str) -> String {
    names
        .get(i as usize % names.len().max(1))
        .cloned()
        .unwrap_or_else(|| fallback.to_string())
}

/// Independent random streams derived from the seed: one per device, one per store, one per
/// device's signal generator.
pub(crate) const DEVICE_STREAM: u64 = 1;
pub(crate) const STORE_STREAM: u64 = 2;
pub(crate) const SIGNAL_STREAM: u64 = 3;

/// splitmix64's finaliser: spreads nearby inputs over the whole `u64` range.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A generator seeded from `(seed, stream, index)` only.
pub(crate) fn rng_for(seed: u64, stream: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(mix64(mix64(seed ^ mix64(stream)) ^ index))
}

/// The fleet (or a shard of it).
#[derive(Clone, Debug, PartialEq)]
pub struct Fleet {
    pub spec: FleetSpec,
    /// Ordered by index.
    pub devices: Vec<Device>,
}

impl Fleet {
    /// The whole fleet. Call [`FleetSpec::validate`] first on a spec not made by
    /// [`FleetSpec::from_toml_str`]/[`FleetSpec::load`] (an invalid one still gives devices,
    /// with fallback names).
    pub fn generate(spec: &FleetSpec) -> Fleet {
        Fleet {
            spec: spec.clone(),
            devices: (0..spec.devices).map(|i| spec.device(i)).collect(),
        }
    }

    /// Only shard `index` of `count`: the devices whose index % count == index, built directly.
    pub fn generate_shard(spec: &FleetSpec, index: u64, count: u64) -> Result<Fleet, FleetError> {
        check_shard(index, count)?;
        Ok(Fleet {
            spec: spec.clone(),
            devices: (index..spec.devices)
                .step_by(count as usize)
                .map(|i| spec.device(i))
                .collect(),
        })
    }

    /// This fleet's devices whose index % count == index.
    pub fn shard(&self, index: u64, count: u64) -> Result<Fleet, FleetError> {
        check_shard(index, count)?;
        Ok(Fleet {
            spec: self.spec.clone(),
            devices: self
                .devices
                .iter()
                .filter(|d| d.index % count == index)
                .cloned()
                .collect(),
        })
    }

    /// Counts for `results.json`.
    pub fn summary(&self) -> reports::results::FleetSummary {
        let mut by_type = BTreeMap::new();
        let mut by_region = BTreeMap::new();
        let mut stores = std::collections::BTreeSet::new();
        let mut problem_devices = 0;
        for d in &self.devices {
            *by_type
                .entry(d.device_type.as_str().to_string())
                .or_insert(0) += 1;
            *by_region.entry(d.region.clone()).or_insert(0) += 1;
            stores.insert(d.location.as_str());
            problem_devices += u64::from(d.problem);
        }
        reports::results::FleetSummary {
            by_type,
            by_region,
            stores: stores.len() as u64,
            problem_devices,
            dynamics: Default::default(),
        }
    }
}

/// Shard `index` of `count` (`--shard i/n`): the devices whose index % count == index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// Where `--shard-from-env` reads the shard index, first set wins: ours, then the one
/// Kubernetes gives every pod of an Indexed Job.
pub const SHARD_INDEX_VARS: [&str; 2] = ["LOADGEN_SHARD_INDEX", "JOB_COMPLETION_INDEX"];
/// Where `--shard-from-env` reads the shard count.
pub const SHARD_COUNT_VAR: &str = "LOADGEN_SHARDS";

impl Shard {
    /// A checked shard: `index < count`, `count > 0`.
    pub fn new(index: u64, count: u64) -> Result<Shard, FleetError> {
        check_shard(index, count)?;
        Ok(Shard { index, count })
    }

    /// The shard from environment variables ([`SHARD_INDEX_VARS`], [`SHARD_COUNT_VAR`]), read
    /// through `var` (`|k| std::env::var(k).ok()` in the binary).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard, FleetError> {
        let number = |name: &str, value: String| {
            value.trim().parse::<u64>().map_err(|_| {
                FleetError::ShardEnv(format!("{name}=`{value}` is not a whole number"))
            })
        };
        let (index_var, index) = SHARD_INDEX_VARS
            .iter()
            .find_map(|name| var(name).map(|v| (*name, v)))
            .ok_or_else(|| {
                FleetError::ShardEnv(format!("set {}", SHARD_INDEX_VARS.join(" or ")))
            })?;
        let count = var(SHARD_COUNT_VAR)
            .ok_or_else(|| FleetError::ShardEnv(format!("set {SHARD_COUNT_VAR}")))?;
        Shard::new(number(index_var, index)?, number(SHARD_COUNT_VAR, count)?)
    }

    /// `[index, count]` as `results.json` records it.
    pub fn to_results(self) -> Option<[u32; 2]> {
        Some([
            u32::try_from(self.index).ok()?,
            u32::try_from(self.count).ok()?,
        ])
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = FleetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || FleetError::ShardSyntax(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let i = i.trim().parse().map_err(|_| syntax())?;
        let n = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(i, n)
    }
}

fn check_shard(index: u64, count: u64) -> Result<(), FleetError> {
    if count == 0 || index >= count || u32::try_from(count).is_err() {
        return Err(FleetError::Shard { index, count });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_complete() {
        let d = Device {
            index: 7,
            id: "pos-0001-01".into(),
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

    fn spec(devices: u64) -> FleetSpec {
        FleetSpec {
            devices,
            seed: 7,
            ..FleetSpec::default()
        }
    }

    #[test]
    fn same_seed_same_fleet_other_seed_other_fleet() {
        assert_eq!(Fleet::generate(&spec(500)), Fleet::generate(&spec(500)));
        let other = FleetSpec {
            seed: 8,
            ..spec(500)
        };
        assert_ne!(
            Fleet::generate(&spec(500)).devices,
            Fleet::generate(&other).devices
        );
    }

    #[test]
    fn device_i_is_the_same_whatever_the_fleet_size() {
        let small = Fleet::generate(&spec(50));
        let big = Fleet::generate(&spec(5000));
        assert_eq!(small.devices[..], big.devices[..50]);
    }

    #[test]
    fn shards_parse_and_come_from_the_environment() {
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
        for bad in ["3/2", "a/b", "0/0", "1", "1/", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("LOADGEN_SHARDS", "4")]);
        assert_eq!(Shard::from_env(k8s).unwrap(), Shard::new(2, 4).unwrap());
        let ours_first = env(&[
            ("LOADGEN_SHARD_INDEX", "1"),
            ("JOB_COMPLETION_INDEX", "2"),
            ("LOADGEN_SHARDS", "4"),
        ]);
        assert_eq!(Shard::from_env(ours_first).unwrap().index, 1);
        assert!(Shard::from_env(env(&[("LOADGEN_SHARDS", "4")])).is_err());
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        assert!(
            Shard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "4"),
                ("LOADGEN_SHARDS", "4")
            ]))
            .is_err()
        );
    }

    #[test]
    fn shards_partition_the_fleet() {
        let fleet = Fleet::generate(&spec(1001));
        let n = 7;
        let mut all: Vec<Device> = Vec::new();
        for i in 0..n {
            let direct = Fleet::generate_shard(&fleet.spec, i, n).unwrap();
            assert_eq!(direct, fleet.shard(i, n).unwrap());
            assert!(direct.devices.iter().all(|d| d.index % n == i));
            all.extend(direct.devices);
        }
        all.sort_by_key(|d| d.index);
        assert_eq!(all, fleet.devices);
        assert!(fleet.shard(7, 7).is_err());
        assert!(Fleet::generate_shard(&fleet.spec, 0, 0).is_err());
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let fleet = Fleet::generate(&spec(2000));
        let ids: std::collections::BTreeSet<_> = fleet.devices.iter().map(|d| &d.id).collect();
        assert_eq!(ids.len(), 2000);
        let d = &fleet.devices[41];
        assert_eq!(d.location, "store-0042");
        assert!(d.id.ends_with("-0042-00"), "{}", d.id);
        let d = &fleet.devices[50 + 41];
        assert!(d.id.ends_with("-0042-01"), "{}", d.id);
        // Every store is in one region and has one brand.
        let mut store_meta = BTreeMap::new();
        for d in &fleet.devices {
            let prev = store_meta.insert(&d.location, (&d.region, &d.brand));
            assert!(prev.is_none() || prev == Some((&d.region, &d.brand)));
        }
        assert_eq!(fleet.summary().by_region.len(), 5);
    }

    #[test]
    fn type_mix_and_problem_fraction_hold_on_10k_devices() {
        let s = FleetSpec {
            devices: 10_000,
            mix: TypeMix {
                server: 1.0,
                pos: 5.0,
                router: 2.0,
                switch: 2.0,
                custom: 0.0,
            },
            problem_fraction: 0.2,
            ..spec(0)
        };
        let summary = Fleet::generate(&s).summary();
        let total = 10.0;
        for t in DeviceType::ALL {
            let want = s.mix.weight(t) / total;
            let got = *summary.by_type.get(t.as_str()).unwrap_or(&0) as f64 / 10_000.0;
            assert!((got - want).abs() < 0.02, "{t:?}: {got} vs {want}");
        }
        assert!(!summary.by_type.contains_key("custom"));
        let p = summary.problem_devices as f64 / 10_000.0;
        assert!((p - 0.2).abs() < 0.02, "{p}");
        assert_eq!(summary.stores, 50);
    }

    #[test]
    fn spec_parses_with_defaults() {
        let s = FleetSpec::from_toml_str(
            "seed = 3\ndevices = 20\nstores = 4\nregions = [\"north\"]\n[mix]\npos = 1\n",
        )
        .unwrap();
        assert_eq!(s.devices, 20);
        assert_eq!(s.store_count(), 4);
        assert_eq!(s.mix.server, 1.0);
        let f = Fleet::generate(&s);
        assert!(f.devices.iter().all(|d| d.region == "north"));
        assert_eq!(FleetSpec::from_toml_str("").unwrap(), FleetSpec::default());
    }

    #[test]
    fn spec_errors_name_the_key() {
        let cases = [
            ("devcies = 3", "devcies"),
            ("devices = \"many\"", "devices"),
            ("[mix]\nrouters = 1", "routers"),
            ("problem_fraction = 1.5", "problem_fraction"),
            ("regions = []", "regions"),
            ("brands = [\"a b\"]", "brands"),
            ("stores = 0", "stores"),
            ("stores_per_region = 0", "stores_per_region"),
            ("[mix]\npos = -1", "mix.pos"),
            (
                "[mix]\npos = 0\nserver = 0\nrouter = 0\nswitch = 0\ncustom = 0",
                "mix",
            ),
        ];
        for (text, key) in cases {
            let err = FleetSpec::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }
}
