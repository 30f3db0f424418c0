//! Synthetic records for the suite: a simple campaign of one scenario, and
//! a varied one (scenarios sharing a name, every verdict, values wide
//! enough to leave the histograms' exact range), all derived from seeds.

use scx_reports::CampaignAggregate;
use scx_reports::model::*;
use std::path::PathBuf;

pub(crate) fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scx-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub(crate) fn record(seed: u64, converged_ms: Option<u64>) -> RunRecord {
    let failed = converged_ms.is_none();
    RunRecord {
        scx_version: "0.1.0".into(),
        scenario: "synthetic".into(),
        scenario_path: "scenarios/synthetic.toml".into(),
        scenario_hash: "00112233aabbccdd".into(),
        seed,
        status: if failed { Verdict::Fail } else { Verdict::Pass },
        trace_hash: format!("{seed:064x}"),
        converged_at_ms: (converged_ms).map(|ms| ms + 10_000),
        converged_after_last_heal_ms: converged_ms,
        converged_after_last_write_ms: converged_ms,
        last_heal_at_ms: Some(10_000),
        last_write_at_ms: Some(10_000),
        sample_interval_ms: 100,
        duration_ms: 10_000,
        settle_ms: 10_000,
        quiescent_at_ms: 10_000,
        ended_at_ms: 12_000,
        violations: if failed {
            vec![ViolationRecord {
                checker: "convergence".into(),
                kind: "eventually".into(),
                message: format!("seed {seed} <did not> converge"),
                at_ms: 20_000,
                node: None,
            }]
        } else {
            Vec::new()
        },
        note: None,
        metrics: Metrics {
            bytes_sent: 1_000 + seed * 3,
            bytes_missing: 800,
            bytes_sent_handshake: 400 + seed * 3,
            bytes_sent_summary: 100,
            bytes_sent_lanes_needed: 400,
            bytes_sent_lanes_redundant: 100,
            round_trips: 40 + seed % 7,
            lanes: 100,
            ..Metrics::default()
        },
        coverage: Default::default(),
        faults: vec![FaultRecord {
            kind: "partition".into(),
            start_ms: 2_000,
            end_ms: Some(5_000),
            nodes: vec![0, 1],
            groups: Vec::new(),
        }],
        reproduce: format!("scx run scenarios/synthetic.toml --seed {seed}"),
    }
}

/// `count` runs of one scenario; seeds 13 mod 97 fail.
pub(crate) fn campaign(count: u64, slow: u64) -> Vec<RunRecord> {
    (0..count).map(|seed| record(seed, (seed % 97 != 13).then_some(100 + (seed * 7919 + slow) % 2_000))).collect()
}

/// SplitMix64: a well-mixed value per (seed, purpose).
pub(crate) fn mix(seed: u64, purpose: u64) -> u64 {
    let mut z = seed.wrapping_add(purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The scenarios of the varied campaign: two share a name and differ in
/// content hash, and one name appears under two paths.
pub(crate) const SCENARIOS: [(&str, &str, &str); 4] = [
    ("mesh", "aaaa000000000000", "scenarios/mesh.toml"),
    ("mesh", "bbbb000000000000", "scenarios/mesh-v2.toml"),
    ("gossip", "cccc000000000000", "scenarios/gossip.toml"),
    ("gossip", "cccc000000000000", "other/gossip.toml"),
];

/// A run of the varied campaign: every verdict, convergence after the
/// last heal quantised to 100 ms up to 150 s, after the last write not
/// quantised up to 5,000 s, runs with nothing healed, coverage counters.
pub(crate) fn varied(seed: u64) -> RunRecord {
    let (scenario, hash, path) = SCENARIOS[(mix(seed, 1) % 4) as usize];
    let roll = mix(seed, 2) % 100;
    let status = match roll {
        0..=5 => Verdict::Fail,
        6 => Verdict::Timeout,
        7 => Verdict::HarnessError,
        8 => Verdict::NothingTested,
        _ => Verdict::Pass,
    };
    let converged = matches!(status, Verdict::Pass) || roll == 5;
    let healed = !mix(seed, 3).is_multiple_of(5);
    let heal_ms = 100 * (1 + mix(seed, 4) % 1_500);
    let write_ms = 1 + mix(seed, 5) % 5_000_000;
    let mut base = record(seed, None);
    base.scenario = scenario.into();
    base.scenario_hash = hash.into();
    base.scenario_path = path.into();
    base.scx_version = if seed.is_multiple_of(3) { "0.1.1".into() } else { "0.1.0".into() };
    base.status = status;
    base.converged_at_ms = converged.then_some(60_000 + heal_ms);
    base.converged_after_last_heal_ms = (converged && healed).then_some(heal_ms);
    base.converged_after_last_write_ms = converged.then_some(write_ms);
    base.last_heal_at_ms = healed.then_some(60_000);
    base.sample_interval_ms = 100;
    base.violations = match status {
        Verdict::Fail => vec![ViolationRecord {
            checker: ["durability", "convergence", "forks"][(mix(seed, 6) % 3) as usize].into(),
            kind: "always".into(),
            message: format!("seed {seed}: lane <{}> | lost", mix(seed, 7) % 1_000),
            at_ms: 1_000,
            node: Some(1),
        }],
        _ => Vec::new(),
    };
    base.note = match status {
        Verdict::Timeout => Some("ran longer than 10s of wall-clock time".into()),
        Verdict::HarnessError => Some("panic in the harness: index out of bounds".into()),
        Verdict::NothingTested => Some("no write was acknowledged".into()),
        _ => None,
    };
    base.metrics = Metrics {
        bytes_sent: mix(seed, 8) % 10_000_000,
        bytes_missing: mix(seed, 9) % 1_000_000,
        round_trips: mix(seed, 10) % 100_000,
        lanes: mix(seed, 11) % 1_000,
        messages_sent: mix(seed, 12) % 100_000,
        messages_dropped: mix(seed, 13) % 1_000,
        crashes: mix(seed, 14) % 4,
        rollbacks: mix(seed, 15) % 50,
        conflicts: mix(seed, 16) % 30,
        sessions_abandoned: mix(seed, 17) % 3,
        snapshots_installed: mix(seed, 18) % 2,
        snapshots_rejected: mix(seed, 19) % 2,
        unsynced_bytes_lost: mix(seed, 20) % 4_096,
        ..Metrics::default()
    };
    base.coverage = [("partition-healed", mix(seed, 21) % 3), ("crash-recovered", mix(seed, 22) % 2)]
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count))
        .collect();
    base.reproduce = format!("scx run {path} --seed {seed}");
    base
}

pub(crate) fn aggregate<'a>(name: &str, records: impl IntoIterator<Item = &'a RunRecord>) -> CampaignAggregate {
    let mut aggregate = CampaignAggregate::new(name);
    for record in records {
        aggregate.add(record);
    }
    aggregate
}

/// The small multi-scenario campaign: "mesh" under two contents (two
/// files, two hashes) and "gossip", whose runs draw their own fault mix.
pub(crate) const THREE_SCENARIOS: [(&str, &str, &str); 3] = [
    ("mesh", "aaaa000000000000", "scenarios/mesh.toml"),
    ("mesh", "bbbb000000000000", "scenarios/mesh-v2.toml"),
    ("gossip", "cccc000000000000", "scenarios/gossip.toml"),
];

fn three_scenarios_manifest() -> CampaignManifest {
    let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let scenario = |index: usize, pairs: &[(&str, &str)]| ManifestScenario {
        path: THREE_SCENARIOS[index].2.into(),
        hash: THREE_SCENARIOS[index].1.into(),
        seeds: "0..24".into(),
        params: params(pairs),
    };
    CampaignManifest {
        format: CampaignManifest::FORMAT,
        scx_version: "0.1.0".into(),
        shard: "1/1".into(),
        scenarios: vec![
            scenario(0, &[("name", "mesh"), ("cluster.nodes", "5"), ("network.loss", "0.01")]),
            scenario(1, &[("name", "mesh"), ("cluster.nodes", "5"), ("network.loss", "0.05")]),
            scenario(2, &[("name", "gossip"), ("cluster.nodes", "3"), ("swarm.enabled", "true")]),
        ],
        replayed_first: Vec::new(),
        invariants: vec![ManifestInvariant {
            name: "convergence".into(),
            kind: "eventually".into(),
            property: "every live node reaches the same hashes".into(),
        }],
    }
}

/// A run of the small multi-scenario campaign. Seed s runs scenario s mod 3.
/// "mesh" v2 fails to converge from seed 10 on (messages that differ only
/// in their numbers), "gossip" seed 5 loses an acknowledged lane, and
/// "mesh" seed 9 times out.
fn three_scenarios_run(seed: u64) -> RunRecord {
    let (scenario, hash, path) = THREE_SCENARIOS[(seed % 3) as usize];
    let does_not_converge = hash.starts_with("bbbb") && seed >= 10;
    let mut run = record(seed, (!does_not_converge).then_some(100 * (2 + seed * 7 % 9)));
    (run.scenario, run.scenario_hash, run.scenario_path) = (scenario.into(), hash.into(), path.into());
    run.reproduce = format!("scx run {path} --seed {seed}");
    if does_not_converge {
        run.violations[0].message = format!(
            "live nodes did not converge within the settle bound of 10000 ms after the last heal at {} ms",
            5_000 + seed * 100
        );
    }
    if seed == 5 {
        run.status = Verdict::Fail;
        run.violations = vec![ViolationRecord {
            checker: "durability".into(),
            kind: "always".into(),
            message: "n2 acknowledged lane 3f2a01bc (seq 4) but holds a different lane at that seq".into(),
            at_ms: 9_000,
            node: Some(2),
        }];
    }
    if seed == 9 {
        (run.status, run.note) = (Verdict::Timeout, Some("ran longer than 10s of wall-clock time".into()));
        run.violations.clear();
        run.converged_at_ms = None;
        (run.converged_after_last_heal_ms, run.converged_after_last_write_ms) = (None, None);
    }
    run.metrics.crashes = seed % 3;
    run.metrics.messages_dropped = seed * 7 % 50;
    run.metrics.rollbacks = seed % 2;
    run.metrics.sessions_abandoned = u64::from(seed.is_multiple_of(5));
    run.metrics.conflicts = seed % 4;
    run.coverage = [("partition-healed", seed % 2), ("crash-recovered", u64::from(seed.is_multiple_of(3)))]
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count))
        .collect();
    if scenario == "gossip" {
        let fault = |kind: &str| FaultRecord {
            kind: kind.into(),
            start_ms: 1_000,
            end_ms: Some(3_000),
            nodes: vec![1],
            groups: Vec::new(),
        };
        run.faults = match seed % 4 {
            0 => vec![fault("crash")],
            1 => vec![fault("pause"), fault("partition")],
            2 => Vec::new(),
            _ => vec![fault("partition")],
        };
    }
    run
}

/// The small multi-scenario campaign: 24 seeds over three scenarios, with
/// its manifest.
pub(crate) fn three_scenarios() -> CampaignAggregate {
    let mut aggregate = CampaignAggregate::new("three-scenarios.jsonl");
    aggregate.add_manifest(&three_scenarios_manifest());
    for seed in 0..24 {
        aggregate.add(&three_scenarios_run(seed));
    }
    aggregate
}
