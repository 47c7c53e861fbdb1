//! The cucumber world: one per scenario. It holds the shared stack's endpoints, the scenario's
//! own collectors, devices, proxies and Docker engine, the values steps pass on (trace ids,
//! counters read before an action), and the last query with its answer, which a failing step
//! shows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cucumber::World;
use stack::Endpoints;

use crate::collectors::ScenarioCollector;
use crate::device::{Node, NodeIdentity};
use crate::docker_engine::FakeDockerEngine;
use crate::eventually::TimedOut;
use crate::proxy::FaultProxy;
use crate::query::{Api, Exchange};

static SCENARIOS: AtomicU64 = AtomicU64::new(0);

/// One scenario's state.
#[derive(World)]
#[world(init = Self::new)]
pub struct StepsWorld {
    /// Unique within this run and across runs against one stack: label values are built from
    /// it so concurrent scenarios (and earlier runs against an external stack) never mix.
    pub id: String,
    /// Set by the first step that needs the stack.
    pub endpoints: Option<Endpoints>,
    pub collectors: BTreeMap<String, ScenarioCollector>,
    pub nodes: BTreeMap<String, Node>,
    /// Nodes that were removed, still known by name for the steps that follow.
    pub identities: BTreeMap<String, NodeIdentity>,
    pub proxies: BTreeMap<String, FaultProxy>,
    pub docker: Option<FakeDockerEngine>,
    /// Scratch space (log files, data dirs, sockets); removed with the world.
    pub dir: tempfile::TempDir,
    /// Values steps hand on: trace ids, lines written, counters read before an action.
    pub vars: BTreeMap<String, String>,
    /// Lines this scenario wrote, by file.
    pub written: BTreeMap<String, Vec<String>>,
    /// The last query and what came back.
    pub last: Option<Exchange>,
    /// A stack of this scenario's own (one with TLS and credentials), stopped with the world.
    pub own_stack: Option<stack::EmbeddedStack>,
    /// The certificates of this scenario's TLS servers.
    pub pki: Option<testkit::pki::TestPki>,
}

impl std::fmt::Debug for StepsWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepsWorld")
            .field("id", &self.id)
            .field("collectors", &self.collectors.keys().collect::<Vec<_>>())
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("vars", &self.vars)
            .field("last", &self.last.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl StepsWorld {
    fn new() -> Self {
        let n = SCENARIOS.fetch_add(1, Ordering::Relaxed);
        let run = chrono::Utc::now().timestamp() % 100_000;
        StepsWorld {
            id: format!("{run:05}-{n:03}"),
            endpoints: None,
            collectors: BTreeMap::new(),
            nodes: BTreeMap::new(),
            identities: BTreeMap::new(),
            proxies: BTreeMap::new(),
            docker: None,
            // Only fails when the temp dir is not writable, and then nothing could run.
            #[allow(clippy::expect_used)]
            dir: tempfile::Builder::new()
                .prefix("steps-")
                .tempdir()
                .expect("a temporary directory for the scenario"),
            vars: BTreeMap::new(),
            written: BTreeMap::new(),
            last: None,
            own_stack: None,
            pki: None,
        }
    }

    /// The stack under test (started on first use).
    pub async fn endpoints(&mut self) -> anyhow::Result<Endpoints> {
        if let Some(e) = &self.endpoints {
            return Ok(e.clone());
        }
        let s = crate::target::shared()
            .await
            .map_err(|e| anyhow::anyhow!("the stack under test is not available: {e}"))?;
        self.endpoints = Some(s.endpoints().clone());
        Ok(s.endpoints().clone())
    }

    /// The query APIs of the stack under test.
    pub async fn api(&mut self) -> anyhow::Result<Api> {
        Ok(Api::new(&self.endpoints().await?))
    }

    /// A value unique to this scenario, e.g. `store-<id>`.
    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.id)
    }

    /// Keeps the exchange and turns a timeout into the step's error.
    pub fn record(&mut self, r: Result<Exchange, TimedOut>) -> anyhow::Result<Exchange> {
        match r {
            Ok(ex) => {
                self.last = Some(ex.clone());
                Ok(ex)
            }
            Err(t) => {
                self.last = t.exchange.clone();
                Err(t.into())
            }
        }
    }

    /// A collector of this scenario by name.
    pub fn collector(&mut self, name: &str) -> anyhow::Result<&mut ScenarioCollector> {
        let known: Vec<String> = self.collectors.keys().cloned().collect();
        self.collectors.get_mut(name).ok_or_else(|| {
            anyhow::anyhow!("no collector {name:?} in this scenario (have {known:?})")
        })
    }

    /// The identity of a node of this scenario, running or removed.
    pub fn identity(&self, name: &str) -> anyhow::Result<NodeIdentity> {
        self.identities
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no node {name:?} in this scenario"))
    }

    /// Stops everything the scenario started (collectors drain, devices stop).
    pub async fn teardown(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.collectors) {
            c.stop().await;
        }
        for (_, n) in std::mem::take(&mut self.nodes) {
            n.stop().await;
        }
        self.proxies.clear();
        self.docker = None;
    }
}
