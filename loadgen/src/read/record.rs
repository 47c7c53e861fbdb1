//! What the viewers measured, per query kind and per panel: queries, answers, failures by
//! status and HdrHistograms of latency in µs (the recorder's unit and histograms, see
//! [`crate::recorder`]), turned into [`reports::read_path::ReadPath`] at the end.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use reports::histogram::{HistogramData, new_histogram};
use reports::read_path::{PanelResults, QueryKindResults};

use crate::recorder::LATENCY_UNIT;

/// Thread-safe; one per run, shared by every viewer.
#[derive(Default)]
pub(crate) struct QueryRecorder {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    kinds: BTreeMap<&'static str, Totals>,
    /// Keyed by (dashboard, panel) index; the names come with the first record.
    panels: BTreeMap<(usize, usize), PanelTotals>,
    refreshes: u64,
}

/// A panel's names, query kinds and totals.
struct PanelTotals {
    dashboard: String,
    title: String,
    kinds: Vec<&'static str>,
    totals: Totals,
}

struct Totals {
    /// Not sent: a variable the query uses had no value.
    skipped: u64,
    queries: u64,
    answered: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            skipped: 0,
            queries: 0,
            answered: 0,
            errors: BTreeMap::new(),
            latency: new_histogram(),
        }
    }
}

impl Totals {
    fn add(&mut self, latency_us: u64, error: Option<&str>) {
        self.queries += 1;
        match error {
            None => self.answered += 1,
            Some(e) => *self.errors.entry(e.to_string()).or_default() += 1,
        }
        // Out of range only past u64 auto-resize limits: clamp rather than lose the query.
        if self.latency.record(latency_us.max(1)).is_err() {
            let _ = self.latency.record(self.latency.high());
        }
    }
}

impl State {
    /// The totals of the panel a query came from (`None` for a variable query), noting its kind.
    fn panel(&mut self, kind: &'static str, origin: &Origin<'_>) -> Option<&mut Totals> {
        let (p, title) = origin.panel?;
        let entry = self
            .panels
            .entry((origin.dashboard.0, p))
            .or_insert_with(|| PanelTotals {
                dashboard: origin.dashboard.1.to_string(),
                title: title.to_string(),
                kinds: Vec::new(),
                totals: Totals::default(),
            });
        if !entry.kinds.contains(&kind) {
            entry.kinds.push(kind);
        }
        Some(&mut entry.totals)
    }
}

/// Where a query came from: a panel, or a template variable (no panel).
pub(crate) struct Origin<'a> {
    pub(crate) dashboard: (usize, &'a str),
    pub(crate) panel: Option<(usize, &'a str)>,
}

impl QueryRecorder {
    /// One query's outcome: `error` `None` when answered.
    pub(crate) fn record(
        &self,
        kind: &'static str,
        origin: &Origin<'_>,
        latency_us: u64,
        error: Option<&str>,
    ) {
        let mut st = self.state.lock();
        st.kinds.entry(kind).or_default().add(latency_us, error);
        if let Some(t) = st.panel(kind, origin) {
            t.add(latency_us, error);
        }
    }

    /// A panel query not sent because a variable it uses had no value.
    pub(crate) fn skipped(&self, kind: &'static str, origin: &Origin<'_>) {
        let mut st = self.state.lock();
        st.kinds.entry(kind).or_default().skipped += 1;
        if let Some(t) = st.panel(kind, origin) {
            t.skipped += 1;
        }
    }

    /// One dashboard refresh done (every panel queried).
    pub(crate) fn refreshed(&self) {
        self.state.lock().refreshes += 1;
    }

    /// Per kind, per panel (dashboard order), refreshes.
    pub(crate) fn report(&self) -> (BTreeMap<String, QueryKindResults>, Vec<PanelResults>, u64) {
        let st = self.state.lock();
        let kinds = st
            .kinds
            .iter()
            .map(|(k, t)| {
                (
                    (*k).to_string(),
                    QueryKindResults {
                        skipped: t.skipped,
                        queries: t.queries,
                        answered: t.answered,
                        errors: t.errors.clone(),
                        latency: HistogramData::from_histogram(&t.latency, LATENCY_UNIT),
                    },
                )
            })
            .collect();
        let panels = st
            .panels
            .values()
            .map(
                |PanelTotals {
                     dashboard,
                     title,
                     kinds,
                     totals: t,
                 }| PanelResults {
                    dashboard: dashboard.clone(),
                    panel: title.clone(),
                    kinds: kinds.iter().map(|k| (*k).to_string()).collect(),
                    skipped: t.skipped,
                    queries: t.queries,
                    answered: t.answered,
                    errors: t.queries - t.answered,
                    latency: HistogramData::from_histogram(&t.latency, LATENCY_UNIT),
                },
            )
            .collect();
        (kinds, panels, st.refreshes)
    }
}
