//! Combining `results.json` files: [`merge`] adds shards of one run into one result (counts
//! summed, histograms merged exactly, intervals aligned by time), [`compare`] prints per-signal
//! deltas between a baseline and a new run: it names the settings in which the runs differ
//! ([`setting_differences`]) and calls a difference better or worse only beyond the noise of
//! the figures ([`reports::html::change`]: 5 %, Poisson bands of counts, latency resolution).
//! Both take run folders as well as files ([`results_path`]). [`compare_capacity`] puts two
//! capacity searches' knees side by side (`loadgen compare` on two `capacity.json`, or on two
//! capacity folders: [`capacity_path`]).
//!
//! Before adding, [`merge`] checks the inputs are shards of one run: all shards or none, the
//! same seed, shard count and rate, distinct indexes, and device counts that fit one fleet
//! (shard `i` of `n` of an `N`-device fleet has `ceil((N - i) / n)` devices). A partial set
//! is merged with a warning; results that are not shards are added as they are, with a warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use reports::histogram::{HistogramData, HistogramError};
pub use reports::html::setting_differences;
use reports::html::{SIGNAL_FIGURES, change};
use reports::results::{Interval, SignalResults, Verification};
use reports::{Results, SCHEMA_VERSION};

use reports::verdict::Objectives;

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Two inputs are not shards of one run.
    #[error("{a} and {b} are not shards of the same run: {why}")]
    NotSameRun { a: String, b: String, why: String },
    /// Some inputs are shards, some are not.
    #[error("{shard} is a shard but {whole} is not: merge shards of one run only")]
    Mixed { shard: String, whole: String },
    #[error("{what}: {source}")]
    Histogram {
        what: String,
        #[source]
        source: HistogramError,
    },
}

fn merge_hist(
    what: &str,
    a: &HistogramData,
    b: &HistogramData,
) -> Result<HistogramData, MergeError> {
    a.merge(b).map_err(|source| MergeError::Histogram {
        what: what.to_string(),
        source,
    })
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn merge_verification(
    a: &Verification,
    b: &Verification,
    what: &str,
) -> Result<Verification, MergeError> {
    Ok(Verification {
        canaries: a.canaries + b.canaries,
        found: a.found + b.found,
        lost: a.lost + b.lost,
        duplicated: a.duplicated + b.duplicated,
        out_of_order: a.out_of_order + b.out_of_order,
        write_to_query_latency: merge_hist(
            what,
            &a.write_to_query_latency,
            &b.write_to_query_latency,
        )?,
        query_errors: a.query_errors + b.query_errors,
        last_query_error: b
            .last_query_error
            .clone()
            .or_else(|| a.last_query_error.clone()),
        // Shards poll alike; should they not, the coarser resolution holds for the sum.
        poll_interval_ms: a.poll_interval_ms.max(b.poll_interval_ms),
        stack_evicted: a.stack_evicted + b.stack_evicted,
    })
}

fn merge_signal(
    name: &str,
    a: &SignalResults,
    b: &SignalResults,
) -> Result<SignalResults, MergeError> {
    let mut errors = a.errors.clone();
    add_counts(&mut errors, &b.errors);
    Ok(SignalResults {
        sent: a.sent + b.sent,
        acknowledged: a.acknowledged + b.acknowledged,
        errors,
        send_latency: merge_hist(
            &format!("{name} send latency"),
            &a.send_latency,
            &b.send_latency,
        )?,
        verification: merge_verification(
            &a.verification,
            &b.verification,
            &format!("{name} write-to-query latency"),
        )?,
        items_per_second: a.items_per_second + b.items_per_second,
        target_items_per_second: a.target_items_per_second + b.target_items_per_second,
        requests: a.requests + b.requests,
        bytes: a.bytes + b.bytes,
    })
}

/// Interval start in ms, the key intervals are aligned on.
fn interval_key(t_s: f64) -> i64 {
    (t_s * 1000.0).round() as i64
}

fn merge_into(acc: &mut Results, r: &Results) -> Result<(), MergeError> {
    acc.run.devices += r.run.devices;
    acc.run.duration_s = acc.run.duration_s.max(r.run.duration_s);
    acc.run.shards_merged += r.run.shards_merged.max(1);
    add_counts(&mut acc.fleet.by_type, &r.fleet.by_type);
    add_counts(&mut acc.fleet.by_region, &r.fleet.by_region);
    // A store's devices spread over the shards: the largest shard count is the best bound.
    acc.fleet.stores = acc.fleet.stores.max(r.fleet.stores);
    acc.fleet.problem_devices += r.fleet.problem_devices;
    let (d, e) = (&mut acc.fleet.dynamics, &r.fleet.dynamics);
    d.churn_per_min = d.churn_per_min.max(e.churn_per_min);
    d.offline_share = d.offline_share.max(e.offline_share);
    d.offline_from_s = d.offline_from_s.max(e.offline_from_s);
    d.offline_for_s = d.offline_for_s.max(e.offline_for_s);
    d.replaced += e.replaced;
    d.offline_devices += e.offline_devices;
    d.backfilled_items += e.backfilled_items;
    d.backfill_dropped += e.backfill_dropped;

    for (name, s) in &r.signals {
        let merged = match acc.signals.get(name) {
            Some(a) => merge_signal(name, a, s)?,
            None => s.clone(),
        };
        acc.signals.insert(name.clone(), merged);
    }

    let mut by_t: BTreeMap<i64, Interval> = std::mem::take(&mut acc.intervals)
        .into_iter()
        .map(|i| (interval_key(i.t_s), i))
        .collect();
    for i in &r.intervals {
        match by_t.get_mut(&interval_key(i.t_s)) {
            Some(a) => {
                add_counts(&mut a.sent, &i.sent);
                add_counts(&mut a.errors, &i.errors);
                add_counts(&mut a.scheduled, &i.scheduled);
                add_counts(&mut a.requests, &i.requests);
                add_counts(&mut a.bytes, &i.bytes);
                a.send_latency =
                    merge_hist("interval send latency", &a.send_latency, &i.send_latency)?;
            }
            None => {
                by_t.insert(interval_key(i.t_s), i.clone());
            }
        }
    }
    acc.intervals = by_t.into_values().collect();

    for b in &r.breakdown {
        match acc
            .breakdown
            .iter_mut()
            .find(|a| a.device_type == b.device_type && a.region == b.region)
        {
            Some(a) => {
                a.devices += b.devices;
                a.errors += b.errors;
                add_counts(&mut a.sent, &b.sent);
            }
            None => acc.breakdown.push(b.clone()),
        }
    }
    acc.resources.extend(r.resources.iter().cloned());
    Ok(())
}

/// The fleet sizes `N` (inclusive range) for which shard `[i, n]` has `devices` devices.
fn fleet_sizes(devices: u64, [i, n]: [u32; 2]) -> (u64, u64) {
    let (i, n) = (u64::from(i), u64::from(n));
    let lo = if devices == 0 {
        0
    } else {
        (devices - 1).saturating_mul(n).saturating_add(i + 1)
    };
    (lo, devices.saturating_mul(n).saturating_add(i))
}

/// Checks `all` are shards of one run (see the module docs); warns about a partial set.
fn check_shards(all: &[Results]) -> Result<(), MergeError> {
    let shards: Vec<(&Results, [u32; 2])> = all
        .iter()
        .filter_map(|r| r.run.shard.map(|s| (r, s)))
        .collect();
    let Some(&(first, [_, n])) = shards.first() else {
        tracing::warn!("none of the inputs is a shard result; adding them as they are");
        return Ok(());
    };
    if let Some(whole) = all.iter().find(|r| r.run.shard.is_none()) {
        return Err(MergeError::Mixed {
            shard: first.run.id.clone(),
            whole: whole.run.id.clone(),
        });
    }
    let mut seen = BTreeMap::new();
    let mut sizes = (0, u64::MAX);
    for &(r, shard) in &shards {
        let differ = |why: String| MergeError::NotSameRun {
            a: first.run.id.clone(),
            b: r.run.id.clone(),
            why,
        };
        if r.run.seed != first.run.seed {
            return Err(differ(format!(
                "seeds {} and {}",
                first.run.seed, r.run.seed
            )));
        }
        if shard[1] != n {
            return Err(differ(format!("{n} and {} shards", shard[1])));
        }
        if r.run.rate_multiplier != first.run.rate_multiplier {
            return Err(differ(format!(
                "rate multipliers {} and {}",
                first.run.rate_multiplier, r.run.rate_multiplier
            )));
        }
        if let Some(other) = seen.insert(shard[0], &r.run.id) {
            return Err(MergeError::NotSameRun {
                a: other.clone(),
                b: r.run.id.clone(),
                why: format!("both are shard {}/{n}", shard[0]),
            });
        }
        let (lo, hi) = fleet_sizes(r.run.devices, shard);
        sizes = (sizes.0.max(lo), sizes.1.min(hi));
        if sizes.0 > sizes.1 {
            return Err(differ(format!(
                "their device counts ({} in shard {}/{n}) do not fit one fleet",
                r.run.devices, shard[0]
            )));
        }
    }
    if seen.len() < n as usize {
        let missing: Vec<String> = (0..n)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        tracing::warn!(
            missing = %missing.join(","),
            "merging {} of {n} shards: the result covers part of the fleet",
            seen.len()
        );
    }
    Ok(())
}

/// `id` less a trailing `-shard<i>of<n>` (the default run folder of a shard).
fn run_id_of_shard(id: &str, shard: Option<[u32; 2]>) -> &str {
    shard
        .and_then(|[i, n]| id.strip_suffix(&format!("-shard{i}of{n}")))
        .unwrap_or(id)
}

/// The sum of several results (shards of one run, checked as the module docs say). The SLOs
/// of the first are checked again on the sum.
pub fn merge(all: &[Results]) -> Result<Results, MergeError> {
    let (first, rest) = all.split_first().ok_or(MergeError::Empty)?;
    check_shards(all)?;
    let mut acc = first.clone();
    acc.schema_version = SCHEMA_VERSION;
    acc.run.shard = None;
    acc.run.shards_merged = first.run.shards_merged.max(1);
    for r in rest {
        merge_into(&mut acc, r)?;
    }
    acc.run.id = format!(
        "{}-merged{}",
        run_id_of_shard(&first.run.id, first.run.shard),
        acc.run.shards_merged
    );
    acc.breakdown
        .sort_by(|a, b| (&a.device_type, &a.region).cmp(&(&b.device_type, &b.region)));
    acc.resources.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Objectives::of(first).judge(&mut acc);
    Ok(acc)
}

/// The `results.json` of `path`: the file itself, or the one in a run folder.
pub fn results_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    }
}

/// The `capacity.json` a path names: the file itself, or the one in a capacity folder; `None`
/// when the path is a run's (results.json or a run folder).
pub fn capacity_path(path: &Path) -> Option<PathBuf> {
    let file = if path.is_dir() {
        path.join("capacity.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).ok()?;
    reports::Capacity::is_capacity_json(&text).then_some(file)
}

/// Two capacity searches side by side: their knees (last passing and first failing load, with
/// the items/s, p99s, CPU and RSS at the last passing load) and what broke.
pub fn compare_capacity(base: &reports::Capacity, new: &reports::Capacity) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "base: {}", base.verdict_line());
    let _ = writeln!(out, "new:  {}", new.verdict_line());
    if base.search.by != new.search.by {
        let _ = writeln!(
            out,
            "warning: the searches ramp different loads ({} against {}); the knees are not comparable",
            base.search.by, new.search.by
        );
    }
    for (what, b, n) in [
        ("target", &base.target, &new.target),
        (
            "objectives",
            &base.objectives.join(", "),
            &new.objectives.join(", "),
        ),
    ] {
        if b != n {
            let _ = writeln!(out, "warning: the searches differ in {what}: {b} | {n}");
        }
    }
    let knee_stage = |c: &reports::Capacity| c.knee.last_pass.and_then(|l| c.stage_at(l)).cloned();
    let (bs, ns) = (knee_stage(base), knee_stage(new));
    type Of = fn(&reports::capacity::Stage) -> Option<f64>;
    let at_knee: [(&str, Of); 6] = [
        ("items/s at the knee", |s| Some(s.total_items_per_second())),
        ("p99 send ms at the knee", |s| Some(s.p99_send_ms)),
        ("p99 w2q ms at the knee", |s| Some(s.p99_write_to_query_ms)),
        ("p99 query ms at knee", |s| s.p99_query_ms),
        ("CPU cores at the knee", |s| Some(s.cpu_cores)),
        ("RSS MiB at the knee", |s| Some(s.rss_mb)),
    ];
    let mut rows: Vec<(&str, Option<f64>, Option<f64>)> = vec![
        ("last passing load", base.knee.last_pass, new.knee.last_pass),
        (
            "first failing load",
            base.knee.first_fail,
            new.knee.first_fail,
        ),
    ];
    rows.extend(
        at_knee
            .iter()
            .map(|(label, of)| (*label, bs.as_ref().and_then(of), ns.as_ref().and_then(of))),
    );
    let _ = writeln!(
        out,
        "{:<24} {:>14} {:>14} {:>9}",
        "figure", "base", "new", "delta"
    );
    for (label, b, n) in rows {
        let show = |v: Option<f64>| v.map_or("–".into(), reports::html::fmt_f);
        let d = match (b, n) {
            (Some(b), Some(n)) => delta(b, n),
            _ => "n/a".into(),
        };
        let _ = writeln!(out, "{label:<24} {:>14} {:>14} {d:>9}", show(b), show(n));
    }
    let _ = writeln!(
        out,
        "broke first: base {} | new {}",
        reports::capacity::broken_names(&base.knee.broken),
        reports::capacity::broken_names(&new.knee.broken)
    );
    out
}

fn delta(base: f64, new: f64) -> String {
    if base == 0.0 {
        "n/a".into()
    } else {
        format!("{:+.1}%", (new - base) / base * 100.0)
    }
}

/// Per-signal deltas of `new` against `base`, as printable text: first a warning line for each
/// setting the runs differ in, then one row per figure with its change (`better`, `worse`,
/// `≈ same` within the noise, `n/a`).
pub fn compare(base: &Results, new: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "base {}  new {}", base.run.id, new.run.id);
    let (bh, nh) = column_heads(base, new);
    if bh != "base" {
        let _ = writeln!(out, "agents: base {bh}, new {nh}");
    }
    let differences = setting_differences(base, new);
    for w in &differences {
        let _ = writeln!(out, "warning: the runs differ in {w}");
    }
    if !differences.is_empty() {
        let _ = writeln!(
            out,
            "warning: runs with different settings measure different things; read the deltas with care"
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:<24} {:>14} {:>14} {:>9}  change",
        "signal", "figure", bh, nh, "delta"
    );
    let names: std::collections::BTreeSet<&String> =
        base.signals.keys().chain(new.signals.keys()).collect();
    for name in names {
        for f in &SIGNAL_FIGURES {
            let b = base.signals.get(name).and_then(|s| (f.get)(base, s));
            let n = new.signals.get(name).and_then(|s| (f.get)(new, s));
            let show =
                |v: Option<reports::html::Figure>| v.map_or("–".into(), |v| (f.fmt)(v.value));
            let d = match (b, n) {
                (Some(b), Some(n)) => delta(b.value, n.value),
                _ => "n/a".into(),
            };
            let _ = writeln!(
                out,
                "{name:<8} {:<24} {:>14} {:>14} {:>9}  {}",
                f.label,
                show(b),
                show(n),
                d,
                change(b, n, f.better).word()
            );
        }
    }
    out
}

/// The column heads: the agents' names when the runs name different agents (runs of Alloy and
/// our collector side by side), `base` and `new` otherwise.
fn column_heads(base: &Results, new: &Results) -> (String, String) {
    let (b, n) = (&base.run.agent, &new.run.agent);
    if b.is_empty() || n.is_empty() || b == n {
        ("base".into(), "new".into())
    } else {
        (b.clone(), n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, acked: u64, p99_us: u64) -> Results {
        let mut h = reports::histogram::new_histogram();
        for v in 1..=100u64 {
            h.record(v * p99_us / 99).unwrap();
        }
        let hist = HistogramData::from_histogram(&h, "us");
        let signal = SignalResults {
            sent: acked,
            acknowledged: acked,
            errors: BTreeMap::new(),
            send_latency: hist.clone(),
            verification: Verification {
                canaries: 1000,
                found: 1000,
                poll_interval_ms: 1000,
                stack_evicted: 0,
                ..Verification::empty("ms")
            },
            items_per_second: acked as f64 / 60.0,
            target_items_per_second: 0.0,
            requests: acked / 100,
            bytes: acked * 200,
        };
        serde_json::from_str::<Results>(&format!(
            r#"{{"schema_version":1,"run":{{"id":"{id}","started_at":"","duration_s":60,
            "warmup_s":0,"seed":1,"devices":100,"shard":null,"shards_merged":1,
            "target":"embedded","rate_multiplier":1.0,"loadgen_version":"0.1.0","command":""}},
            "fleet":{{"by_type":{{}},"by_region":{{}},"stores":0,"problem_devices":0}},
            "signals":{{}},"intervals":[],"breakdown":[],"resources":[],"slos":[]}}"#
        ))
        .map(|mut r| {
            r.signals.insert("logs".into(), signal);
            r
        })
        .unwrap()
    }

    fn row<'a>(text: &'a str, figure: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with("logs") && l.contains(figure))
            .unwrap_or_else(|| panic!("no {figure} row in\n{text}"))
    }

    #[test]
    fn noise_sized_differences_read_the_same() {
        // 2 % more items and 3 % more p99: run-to-run noise.
        let text = compare(&run("a", 600_000, 10_000), &run("b", 612_000, 10_300));
        assert!(row(&text, "items/s").ends_with("≈ same"), "{text}");
        assert!(row(&text, "p99 send").ends_with("≈ same"), "{text}");
        assert!(!text.contains("warning"), "{text}");
        // 20 % more throughput, twice the p99: real changes.
        let text = compare(&run("a", 600_000, 10_000), &run("b", 720_000, 20_000));
        assert!(row(&text, "items/s").ends_with("better"), "{text}");
        assert!(row(&text, "p99 send").ends_with("worse"), "{text}");
        assert!(row(&text, "requests/s").ends_with("higher"), "{text}");
        // No canaries found: no write-to-query figure to compare.
        assert!(row(&text, "p99 write-to-query").ends_with("n/a"), "{text}");
    }

    #[test]
    fn different_settings_are_warned_about() {
        let a = run("a", 600_000, 10_000);
        let mut b = run("b", 600_000, 10_000);
        b.run.devices = 5000;
        b.run.rate_multiplier = 2.0;
        b.run.duration_s = 120.0;
        b.run.target = "embedded, delivery otlp".into();
        let text = compare(&a, &b);
        for w in [
            "warning: the runs differ in devices: 100 and 5,000",
            "warning: the runs differ in duration: 60 s and 120 s",
            "warning: the runs differ in rate multiplier: 1 and 2",
            "warning: the runs differ in delivery: push and otlp",
        ] {
            assert!(text.contains(w), "{w} in\n{text}");
        }
        assert!(!text.contains("differ in target"), "{text}");
    }

    #[test]
    fn runs_of_different_agents_are_headed_by_their_names() {
        let mut a = run("a", 600_000, 10_000);
        let mut b = run("b", 600_000, 10_000);
        a.run.agent = "collector".into();
        b.run.agent = "prometheus-agent".into();
        a.run.target = "embedded stack, agent collector, delivery push".into();
        b.run.target =
            "embedded stack, agent prometheus-agent (metrics; direct to the stack: logs, traces), delivery push"
                .into();
        let text = compare(&a, &b);
        // Different agents are the point of the comparison: only a different stack is warned of.
        assert!(!text.contains("differ in"), "{text}");
        let mut c = b.clone();
        c.run.target =
            "external stack (Loki http://l), agent prometheus-agent, delivery push".into();
        assert!(
            compare(&a, &c).contains("differ in stack"),
            "{}",
            compare(&a, &c)
        );
        assert!(
            text.contains("agents: base collector, new prometheus-agent"),
            "{text}"
        );
        let head = text.lines().find(|l| l.starts_with("signal")).unwrap();
        assert!(
            head.contains("collector") && head.contains("prometheus-agent"),
            "{head}"
        );
        // Old results name no agent: base and new, as before.
        b.run.agent.clear();
        assert!(
            compare(&a, &b)
                .lines()
                .any(|l| l.starts_with("signal") && l.contains(" base "))
        );
    }

    #[test]
    fn run_folders_stand_for_their_results() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(results_path(dir.path()), dir.path().join("results.json"));
        let file = dir.path().join("other.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(results_path(&file), file);
    }
    /// A capacity search of two stages whose knee is between `pass` and `fail` devices.
    fn capacity(pass: f64, fail: f64) -> reports::Capacity {
        use reports::capacity::*;
        let stage = |index: u32, load: f64, ok: bool| Stage {
            index,
            load,
            devices: load as u64,
            rate_multiplier: 1.0,
            dir: format!("stage-{index:02}-{load}d"),
            outcome: if ok {
                reports::Outcome::Pass
            } else {
                reports::Outcome::Fail
            },
            broken: if ok {
                vec![]
            } else {
                vec!["p99_send_ms: 1500 > 1000 (logs: p99 send latency 1500.0 ms)".into()]
            },
            items_per_second: BTreeMap::from([("logs".to_string(), load)]),
            target_items_per_second: BTreeMap::new(),
            p99_send_ms: 10.0,
            p99_write_to_query_ms: 1000.0,
            loss: 0.0,
            errors: 0.0,
            p99_query_ms: None,
            resources_of: "loadgen".into(),
            cpu_cores: 0.5,
            rss_mb: 100.0,
        };
        let stages = vec![stage(1, pass, true), stage(2, fail, false)];
        Capacity {
            schema_version: CAPACITY_SCHEMA_VERSION,
            kind: CAPACITY_KIND.into(),
            started_at: String::new(),
            command: String::new(),
            target: "embedded stack".into(),
            search: SearchSettings {
                by: "devices".into(),
                start: pass,
                factor: 2.0,
                max: 10_000.0,
                resolution: 0.1,
                stage_duration_s: 10.0,
                devices: pass as u64,
                rate_multiplier: 1.0,
            },
            objectives: vec!["loss=0".into()],
            knee: Knee {
                outcome: KneeOutcome::Found,
                last_pass: Some(pass),
                first_fail: Some(fail),
                broken: stages[1].broken.clone(),
                detail: String::new(),
            },
            stages,
        }
    }

    #[test]
    fn capacity_compare_puts_the_knees_side_by_side() {
        let text = compare_capacity(&capacity(400.0, 440.0), &capacity(800.0, 880.0));
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("base: KNEE 400 devices"));
        assert!(lines.next().unwrap().starts_with("new:  KNEE 800 devices"));
        let knee = text
            .lines()
            .find(|l| l.starts_with("last passing load"))
            .unwrap();
        assert!(knee.ends_with("+100.0%"), "{knee}");
        assert!(text.contains("broke first: base p99_send_ms | new p99_send_ms"));
    }

    #[test]
    fn capacity_path_tells_capacity_files_from_results() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("capacity.json"),
            capacity(1.0, 2.0).to_json(),
        )
        .unwrap();
        assert_eq!(
            capacity_path(dir.path()),
            Some(dir.path().join("capacity.json"))
        );
        let results = dir.path().join("results.json");
        std::fs::write(&results, run("a", 1, 1000).to_json()).unwrap();
        assert_eq!(capacity_path(&results), None);
    }
}
