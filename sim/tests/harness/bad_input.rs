//! Goal: bad scenario input exits 2 with the location of the value at
//! fault, its message printed once, a caret and a help line; never a panic
//! (exit 101), an engine "violation" (exit 1) or a run too large to finish.
//! Method: run the built `scx` on one fixture per mistake in
//! `sim/tests/fixtures/bad/` (times near `u64::MAX`, runs beyond the
//! limits, scenarios that cannot test anything, keys that do not apply),
//! and feed the parser scenarios with extreme values in every time and size
//! key: whatever it accepts is inside the limits and resolves to a plan.

use proptest::prelude::*;
use scx_sim::plan;
use scx_sim::scenario::{self, Scenario};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scx")).args(args).current_dir(workspace()).output().expect("the scx binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace").to_path_buf()
}

/// Runs `scx run` on fixture `name` and checks the exit code, the first
/// line (`error: file:line:column: message`), that the message is printed
/// once, and the caret and help line below it.
fn assert_refused(name: &str, at: &str, message: &str) {
    let path = format!("sim/tests/fixtures/bad/{name}.toml");
    let out = scx(&["run", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("error: {path}:{at}: ")), "{name}: {first}");
    assert!(first.contains(message), "{name}: {first}");
    let full_message = first.split_once(&format!("{at}: ")).map_or("", |(_, message)| message);
    assert_eq!(stderr.matches(full_message).count(), 1, "{name}: the message is printed once:\n{stderr}");
    let (line, column) = at.split_once(':').unwrap();
    let caret_line = stderr
        .lines()
        .skip_while(|text| !text.trim_start().starts_with(&format!("{line} |")) && !text.contains(&format!("{line} │")))
        .nth(1)
        .unwrap_or_default();
    assert!(
        caret_line.contains('^') || caret_line.contains('┬') || caret_line.contains('─'),
        "{name}: no caret under line {line}:\n{stderr}"
    );
    let caret_column = caret_line.find(['^', '┬', '─']).unwrap_or_default();
    let source_line =
        stderr.lines().find(|text| text.trim_start().starts_with(&format!("{line} "))).unwrap_or_default();
    let gutter = source_line.find(['|', '│']).unwrap_or_default() + 2;
    assert_eq!(
        caret_column + 1 - gutter,
        column.parse::<usize>().unwrap(),
        "{name}: the caret is under column {column}:\n{stderr}"
    );
    assert!(stderr.contains("help: "), "{name}: no help line:\n{stderr}");
}

#[test]
fn a_scenario_error_is_printed_once_with_its_caret_and_help() {
    assert_refused("node-range", "12:9", "node index 7 out of range (cluster has 3 nodes)");
    assert_refused("unknown-key", "10:1", "unknown field `latncy`");
}

#[test]
fn times_near_u64_max_are_located_errors_not_panics() {
    let cases = [
        ("restart-after-overflow", "13:17", "restart_after is `18446744073709551615s`, above the limit of 1day"),
        ("heal-after-overflow", "13:14", "heal_after is `18446744073709551615s`, above the limit of 1day"),
        ("resume-after-overflow", "13:16", "resume_after is `18446744073709551615s`, above the limit of 1day"),
        ("duration-overflow", "2:12", "duration is `18446744073709551615s`, above the limit of 1day"),
        ("settle-overflow", "3:10", "settle is `18446744073709551615s`, above the limit of 1day"),
        ("latency-overflow", "10:32", "latency.max is `18446744073709551615s`, above the limit of 1m"),
        ("fault-latency-overflow", "12:19", "latency.min is `18446744073709551615s`, above the limit of 1m"),
        ("skew-overflow", "13:8", "a clock skew of `-18446744073709551615s` is above the limit of 1h"),
        ("session-timeout-overflow", "8:19", "session_timeout is `18446744073709551615s`, above the limit of 1day"),
        ("heal-past-run-limit", "13:14", "the fault heals at 1day 9s, so the run would last 1day 14s"),
    ];
    for (name, at, message) in cases {
        assert_refused(name, at, message);
    }
}

#[test]
fn runs_beyond_this_machine_are_refused_with_the_limit() {
    let cases = [
        ("ten-years", "2:12", "duration is `10years`, above the limit of 1day"),
        ("run-time", "3:10", "duration + settle is 1day 1h, above the limit of 1day for one run"),
        ("nodes-limit", "6:9", "nodes must be between 1 and 10000, not 10001"),
        ("p2p-1000-nodes", "6:9", "the cluster would hold 300000000 lanes (nodes × 300000 lanes written)"),
        ("sync-ticks", "8:17", "the run has 10980000 sync ticks (nodes × run time / sync_interval)"),
        ("sync-work", "6:9", "the run's sync work is 4.40e9 (sync ticks × lanes written: 22000 × 200000)"),
        ("sample-states", "8:19", "the run samples 10980000 node states (nodes × run time / sample_interval)"),
        (
            "lane-rate",
            "10:15",
            "is 2000 lanes per second per node, above the limit of 100: a node would write only 47% of it",
        ),
        ("interval-too-short", "8:17", "sync_interval must be at least 1ms"),
    ];
    for (name, at, message) in cases {
        assert_refused(name, at, message);
    }
}

#[test]
fn scenarios_that_cannot_test_anything_are_refused() {
    let cases = [
        ("zero-duration", "2:12", "duration is zero: nodes write only during the faulty phase"),
        ("zero-rate", "10:15", "ops_per_sec is 0: no node writes"),
        ("all-crashed-forever", "16:8", "every node is crashed at the end of the run (no restart_after)"),
        ("nobody-writes", "16:6", "no node can write: each one is crashed or paused for the whole faulty phase"),
        ("zero-window", "13:17", "restart_after is zero: the fault would heal as it starts"),
        ("zero-skew", "13:8", "a clock skew of `+0ms` shifts nothing"),
        ("overlapping-pauses", "16:6", "node 1 is already crashed or paused by fault 1 during this window"),
        (
            "rejoin-never-ends",
            "16:8",
            "the replace nodes of this fault rejoin only after every other node synced with them, but fault 1 keeps node 3 down for good",
        ),
        ("sync-interval-above-settle", "8:17", "sync_interval (10s) is longer than settle (5s)"),
        ("sample-interval-above-settle", "8:19", "sample_interval (6s) is longer than settle (5s)"),
        ("settle-below-default-interval", "3:10", "settle (50ms) is shorter than the default sync_interval of 100ms"),
    ];
    for (name, at, message) in cases {
        assert_refused(name, at, message);
    }
}

#[test]
fn keys_that_do_not_apply_are_refused_at_the_key() {
    let cases = [
        ("hubs-on-mesh", "8:8", "`hubs` does not apply to the mesh topology"),
        ("server-on-mesh", "8:10", "`server` does not apply to the mesh topology"),
        ("bundle-after-run", "10:6", "the bundle is carried at 20s, after the run ends at 15s"),
        ("bundle-on-mesh", "9:1", "bundles are for the air-gapped topology"),
        ("loss-on-air-gapped", "11:8", "`loss` does not apply to the air-gapped topology"),
        ("session-timeout-on-air-gapped", "8:19", "`session_timeout` does not apply to the air-gapped topology"),
        ("partition-on-air-gapped", "11:8", "a partition fault does not apply to the air-gapped topology"),
        (
            "swarm-kind-on-air-gapped",
            "11:9",
            "swarm.kinds names `loss`, which does not apply to the air-gapped topology",
        ),
        ("swarm-not-enabled", "10:14", "`max_faults` does not apply to a swarm that is not enabled"),
        ("swarm-no-kinds", "11:9", "swarm.kinds names no fault kind"),
        ("groups-on-crash", "13:10", "`groups` does not apply to a crash fault"),
        ("nodes-on-loss", "13:9", "`nodes` does not apply to a loss fault"),
        ("tear-on-pause", "13:8", "`tear` does not apply to a pause fault"),
        ("rot-on-client-server", "13:7", "`rot` needs a mesh or p2p topology"),
        ("replace-on-edge", "12:8", "`replace` needs a mesh or p2p topology"),
        (
            "rot-without-restart",
            "13:7",
            "`rot` flips a bit of the disk the node restarts from, and this crash never restarts",
        ),
        ("wrong-window-key", "13:17", "`restart_after` does not apply to a partition fault"),
    ];
    for (name, at, message) in cases {
        assert_refused(name, at, message);
    }
}

#[test]
fn every_bad_fixture_is_exercised_here_or_in_the_cli_tests() {
    let dir = workspace().join("sim/tests/fixtures/bad");
    let this = include_str!("bad_input.rs");
    let cli = include_str!("cli.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned();
        let quoted = format!("\"{name}\",");
        assert!(this.contains(&quoted) || cli.contains(&quoted), "fixture {name}.toml is not checked by a test");
    }
}

#[test]
fn a_path_is_named_the_same_way_however_it_is_written() {
    for written in ["./sim/tests/fixtures/bad/zero-rate.toml", "sim/./tests/../tests/fixtures/bad/zero-rate.toml"] {
        let out = scx(&["run", written]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: sim/tests/fixtures/bad/zero-rate.toml:10:15: "), "{written}: {stderr}");
    }
}

/// A scenario text with every time and size key set from the arguments.
#[allow(clippy::too_many_arguments, reason = "one argument per key the property varies")]
fn extreme_scenario(
    times: &[&str; 8],
    nodes: u64,
    ops_per_sec: &str,
    ops_per_lane: u64,
    topology: &str,
    kind: &str,
) -> String {
    let [duration, settle, sync, sample, at, lasts, latency, skew] = times;
    let window = match kind {
        "crash" | "replace" => "restart_after",
        "pause" => "resume_after",
        _ => "heal_after",
    };
    let specific = match kind {
        "crash" | "replace" | "pause" | "hostile" => "nodes = [0]".to_owned(),
        "clock-skew" => format!("nodes = [0]\nskew = \"-{skew}\""),
        "latency" => format!("latency = {{ min = \"1ms\", max = \"{latency}\" }}"),
        "loss" => "probability = 0.5".to_owned(),
        _ => "groups = [[0], [1]]".to_owned(),
    };
    format!(
        "name = \"x\"\nduration = \"{duration}\"\nsettle = \"{settle}\"\n[cluster]\nnodes = {nodes}\ntopology = \"{topology}\"\n\
         sync_interval = \"{sync}\"\nsample_interval = \"{sample}\"\n[workload]\nops_per_sec = {ops_per_sec}\n\
         ops_per_lane = {ops_per_lane}\n[[faults]]\nat = \"{at}\"\nkind = \"{kind}\"\n{specific}\n{window} = \"{lasts}\"\n"
    )
}

const TIMES: [&str; 13] = [
    "0s",
    "1ns",
    "999us",
    "1ms",
    "10ms",
    "1s",
    "10s",
    "1h",
    "23h59m",
    "1day",
    "10years",
    "18446744073709551615s",
    "18446744073709551615s 999999999ns",
];

#[test]
fn the_extreme_template_accepts_a_scenario_at_sane_values() {
    // So the property below explores accepted scenarios too, not only refusals.
    for kind in scenario::FAULT_KINDS {
        let times = ["1h", "1h", "10s", "10s", "1s", "1s", "1s", "1s"];
        let text = extreme_scenario(&times, 3, "0.1", 4, "mesh", kind);
        Scenario::from_toml(&text, "sane.toml").unwrap_or_else(|error| panic!("{kind}: {error}\n{text}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whatever_the_parser_accepts_fits_the_limits_and_plans(
        times in prop::array::uniform8(prop::sample::select(&TIMES[..])),
        nodes in prop::sample::select(&[0u64, 1, 2, 3, 64, 65, 999, 1_000, 1_001, 10_000, 10_001, 4_294_967_295, 4_294_967_296][..]),
        ops_per_sec in prop::sample::select(&["0", "1e-9", "0.1", "20", "400", "401", "1e6", "1e300", "-1", "nan", "inf"][..]),
        ops_per_lane in prop::sample::select(&[0u64, 1, 4, 4_096, 4_097][..]),
        topology in prop::sample::select(&scenario::TOPOLOGIES[..]),
        kind in prop::sample::select(&scenario::FAULT_KINDS[..]),
        seed in any::<u64>(),
    ) {
        let text = extreme_scenario(&times, nodes, ops_per_sec, ops_per_lane, topology, kind);
        match Scenario::from_toml(&text, "extreme.toml") {
            Err(error) => prop_assert!(error.to_string().starts_with("extreme.toml:"), "{error}"),
            Ok(parsed) => {
                let size = parsed.size();
                prop_assert!(size.run_time <= scenario::MAX_RUN_TIME);
                prop_assert!(size.sync_ticks <= scenario::MAX_SYNC_TICKS);
                prop_assert!(size.lanes_held <= scenario::MAX_HELD_LANES as f64);
                prop_assert!(size.sync_work <= scenario::MAX_SYNC_WORK as f64);
                prop_assert!(size.sampled_states <= scenario::MAX_SAMPLED_STATES);
                let spec = plan::resolve(&parsed, seed, None);
                prop_assert!(spec.run_time() <= scenario::MAX_RUN_TIME);
                prop_assert_eq!(Scenario::from_toml(&parsed.to_toml_string(), "again.toml").unwrap(), parsed);
            }
        }
    }
}
