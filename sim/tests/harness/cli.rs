//! Goal: the `scx` binary keeps its contract: exit codes (0 pass, 1
//! violation, 2 bad input), located errors for bad scenario files, JSON
//! output keys, shard + merge equal to the unsharded run, replay's
//! determinism check, and shrink writing a smaller scenario that still fails.
//! Method: run the built binary on shipped scenarios and fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scx")).args(args).current_dir(workspace()).output().expect("the scx binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace").to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scx-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn run_passes_with_exit_0_and_prints_a_summary() {
    let out = scx(&["run", "scenarios/quickstart.toml", "--seed", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("PASS  quickstart seed 3"), "{stdout}");
    assert!(stdout.contains("converged") && stdout.contains("trace "), "{stdout}");
}

#[test]
fn run_json_has_the_contract_keys() {
    let out = scx(&["run", "scenarios/quickstart.toml", "--seed", "1", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["scenario", "seed", "status", "trace_hash", "converged_at_ms", "violations", "metrics"] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    for key in ["bytes_sent", "bytes_missing", "round_trips", "lanes"] {
        assert!(value["metrics"].get(key).is_some(), "missing metrics.{key}");
    }
    assert_eq!(value["status"], "pass");
}

#[test]
fn a_violation_exits_1_with_the_reproduce_command() {
    let out = scx(&["run", "sim/tests/fixtures/failing/never-heals.toml", "--seed", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("VIOLATION convergence (eventually)"), "{stdout}");
    assert!(
        stdout.contains("reproduce: scx run sim/tests/fixtures/failing/never-heals.toml --seed 0  # scx "),
        "{stdout}"
    );
}

#[test]
fn bad_scenario_files_exit_2_with_located_errors() {
    let cases = [
        ("syntax", "4:9", "unclosed table"),
        ("unknown-key", "10:1", "unknown field `latncy`"),
        ("probability", "10:8", "loss must be a probability in [0, 1], not 1.5"),
        ("duration", "2:12", "`ten seconds` is not a duration"),
        ("zero-nodes", "6:9", "nodes must be between 1 and"),
        ("topology", "7:12", "unknown topology `ring`"),
        ("node-range", "12:9", "node index 7 out of range (cluster has 3 nodes)"),
        ("overlapping-groups", "12:10", "share 2 nodes"),
        ("fault-after-duration", "10:6", "the fault starts at 12s but the faulty phase ends at 10s"),
        ("overlapping-crashes", "16:6", "node 1 is already crashed or paused"),
        ("fault-kind", "11:8", "unknown fault kind `meteor`"),
        ("zero-settle", "3:10", "settle must be longer than zero"),
        ("wrong-window-key", "13:17", "`restart_after` does not apply to a partition fault"),
        ("skew", "13:8", "`soon` is not a clock skew"),
        ("hub", "8:8", "node index 5 out of range"),
        ("latency-order", "10:33", "latency.max is below latency.min"),
    ];
    for (name, at, message) in cases {
        let path = format!("sim/tests/fixtures/bad/{name}.toml");
        let out = scx(&["run", &path]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = text(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("error: {path}:{at}: ")), "{name}: {first}");
        assert!(first.contains(message), "{name}: {first}");
    }
}

#[test]
fn usage_errors_and_missing_files_exit_2() {
    assert_eq!(scx(&["run"]).status.code(), Some(2));
    assert_eq!(scx(&["fuzz", "scenarios/quickstart.toml", "--shard", "3/2"]).status.code(), Some(2));
    assert_eq!(scx(&["fuzz", "scenarios/quickstart.toml", "--seeds", "5..5"]).status.code(), Some(2));
    let out = scx(&["run", "scenarios/no-such-file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the scenario"));
}

#[test]
fn shards_merged_equal_the_unsharded_campaign() {
    let dir = temp("shards");
    let whole = dir.join("whole.jsonl");
    let args = ["fuzz", "scenarios/quickstart.toml", "scenarios/p2p-gossip.toml", "--seeds", "0..7"];
    let out = scx(&[&args[..], &["--jobs", "2", "--out", whole.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut parts = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let part = dir.join(format!("part-{}.jsonl", &shard[..1]));
        let out = scx(&[&args[..], &["--jobs", "1", "--shard", shard, "--out", part.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(0));
        parts.push(part);
    }
    let merged = dir.join("merged.jsonl");
    let mut merge_args = vec!["merge".to_owned()];
    merge_args.extend(parts.iter().rev().map(|part| part.display().to_string()));
    merge_args.extend(["--out".to_owned(), merged.display().to_string()]);
    let merge_refs: Vec<&str> = merge_args.iter().map(String::as_str).collect();
    assert_eq!(scx(&merge_refs).status.code(), Some(0));
    let whole_text = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(whole_text.lines().count(), 1 + 14, "the manifest, then a record per run");
    assert_eq!(
        std::fs::read_to_string(&merged).unwrap(),
        whole_text,
        "merge of all shards = unsharded run, byte for byte"
    );
}

#[test]
fn fuzz_reports_failures_with_exit_1_and_junit() {
    let dir = temp("fuzz-fail");
    let junit = dir.join("junit.xml");
    let out = scx(&["fuzz", "sim/tests/fixtures/failing/never-heals.toml", "--junit", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("2 seeds run (of 2 planned, shard 1/1): 0 passed, 2 failed"), "{stderr}");
    assert!(
        stderr.contains("FAIL convergence: scx run sim/tests/fixtures/failing/never-heals.toml --seed 1"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    // Well-formed XML: every element parses and closes, one failing case a seed.
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut texts, mut depth) = (0, 0, Vec::new(), 0i32);
    loop {
        match reader.read_event().expect("the JUnit file is well-formed XML") {
            quick_xml::events::Event::Start(element) => {
                depth += 1;
                cases += usize::from(element.name().as_ref() == "testcase");
                failures += usize::from(element.name().as_ref() == "failure");
            }
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Text(text) if depth == 3 => texts.push(text.into_inner().into_owned()),
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!((cases, failures, depth), (2, 2, 0), "{xml}");
    assert!(
        texts.iter().all(|text| text.starts_with("scx run sim/tests/fixtures/failing/never-heals.toml")),
        "{texts:?}"
    );
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 1 + 2, "the manifest, then one JSON line per seed on stdout");
}

#[test]
fn replay_prints_the_trace_and_checks_determinism() {
    let out = scx(&["replay", "scenarios/quickstart.toml", "--seed", "2", "--check-determinism", "--limit", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let is_event =
        |line: &&str| line.trim_start().split_once("s ").is_some_and(|(time, _)| time.parse::<f64>().is_ok());
    assert_eq!(stdout.lines().filter(is_event).count(), 50);
    assert!(stdout.contains("determinism: ok, both runs hashed"), "{stdout}");
}

#[test]
fn shrink_writes_a_smaller_scenario_that_still_fails() {
    let dir = temp("shrink");
    let minimal = dir.join("minimal.toml");
    let out = scx(&[
        "shrink",
        "sim/tests/fixtures/failing/never-heals.toml",
        "--seed",
        "0",
        "--out",
        minimal.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shrunk = scx_sim::scenario::Scenario::from_path(&minimal).expect("shrink writes a valid scenario");
    assert!(shrunk.faults.len() < 3, "the crash and the loss burst do not matter: {:?}", shrunk.faults);
    assert_eq!(shrunk.seeds, 0..1);
    let again = scx(&["run", minimal.to_str().unwrap(), "--seed", "0"]);
    assert_eq!(again.status.code(), Some(1), "the shrunk scenario still fails");
    assert!(text(&again.stdout).contains("VIOLATION convergence"));
    let passing = scx(&["shrink", "scenarios/quickstart.toml", "--seed", "0"]);
    assert_eq!(passing.status.code(), Some(2), "a passing seed has nothing to shrink");
}

#[test]
fn rust_log_prints_node_and_simulated_time_on_each_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_scx"))
        .args(["run", "scenarios/quickstart.toml", "--seed", "1"])
        .current_dir(workspace())
        .env("RUST_LOG", "scx_sim=debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| line.contains("scx_sim")).collect();
    assert!(lines.len() > 10, "{stderr}");
    assert!(lines.iter().all(|line| line.contains("t_ms=")), "{stderr}");
    assert!(lines.iter().any(|line| line.contains("session completed") && line.contains("node=")));
    assert!(lines.iter().any(|line| line.contains("fault started")));
    let quiet = scx(&["run", "scenarios/quickstart.toml", "--seed", "1"]);
    assert!(text(&quiet.stderr).is_empty(), "no RUST_LOG, no log lines");
}

#[test]
fn reports_come_from_runs_traces_and_compared_campaigns() {
    let dir = temp("reports");
    let run_dir = dir.join("run");
    let trace = dir.join("trace.json");
    let out = scx(&[
        "run",
        "scenarios/quickstart.toml",
        "--seed",
        "4",
        "--trace",
        trace.to_str().unwrap(),
        "--report",
        run_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    let from_trace = dir.join("from-trace");
    assert_eq!(scx(&["report", trace.to_str().unwrap(), "--out", from_trace.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(
        std::fs::read(from_trace.join("report.html")).unwrap(),
        html.as_bytes(),
        "the trace holds everything the report shows"
    );
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    for (file, scenario) in [(&a, "scenarios/quickstart.toml"), (&b, "scenarios/p2p-gossip.toml")] {
        assert_eq!(scx(&["fuzz", scenario, "--count", "4", "--out", file.to_str().unwrap()]).status.code(), Some(0));
    }
    let compare = dir.join("compare");
    let out = scx(&["report", a.to_str().unwrap(), b.to_str().unwrap(), "--out", compare.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after_write = std::fs::read_to_string(compare.join("convergence-after-write-cdf.csv")).unwrap();
    assert!(after_write.contains("a.jsonl,") && after_write.contains("b.jsonl,"), "{after_write}");
    let after_heal = std::fs::read_to_string(compare.join("convergence-cdf.csv")).unwrap();
    assert!(after_heal.contains("a.jsonl,"), "quickstart heals a partition: {after_heal}");
    assert!(!after_heal.contains("b.jsonl,"), "p2p-gossip has no heal to measure from: {after_heal}");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"nope\": 1}\n").unwrap();
    let out = scx(&["report", bad.to_str().unwrap(), "--out", dir.join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad.jsonl:1: not a result record"), "{}", text(&out.stderr));
}

#[test]
fn failing_seeds_are_recorded_and_replayed_first() {
    let dir = temp("failures");
    let file = dir.join("scx.failures");
    let fixture = "sim/tests/fixtures/failing/never-heals.toml";
    let out = scx(&["fuzz", fixture, "--seeds", "1..2", "--failures", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(recorded.starts_with(&format!("{fixture} seed 1 # convergence: ")), "{recorded}");
    // A later campaign over other seeds replays the recorded one first.
    let out = scx(&["fuzz", fixture, "--seeds", "0..1", "--failures", file.to_str().unwrap()]);
    let seeds: Vec<u64> = text(&out.stdout)
        .lines()
        .skip(1) // the campaign manifest
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [0, 1]);
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert_eq!(recorded.lines().count(), 2, "seed 0 is new, seed 1 was listed: {recorded}");
    std::fs::write(&file, "oops\n").unwrap();
    let out = scx(&["fuzz", fixture, "--failures", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("scx.failures:1: expected"));
}

#[test]
fn a_report_on_two_campaigns_names_the_parameter_that_differs_and_judges_the_change() {
    let dir = temp("compare");
    let variant = dir.join("quickstart-lossy.toml");
    let original = std::fs::read_to_string(workspace().join("scenarios/quickstart.toml")).unwrap();
    assert!(original.contains("\nloss = 0.01\n"), "the quickstart's loss line moved; update this test");
    std::fs::write(&variant, original.replace("\nloss = 0.01\n", "\nloss = 0.2\n")).unwrap();
    let (base_out, variant_out) = (dir.join("base.jsonl"), dir.join("lossy.jsonl"));
    for (scenario, out) in [("scenarios/quickstart.toml", &base_out), (variant.to_str().unwrap(), &variant_out)] {
        let ran = scx(&["fuzz", scenario, "--seeds", "0..40", "--out", out.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    }
    let cmp = dir.join("cmp");
    let out =
        scx(&["report", base_out.to_str().unwrap(), variant_out.to_str().unwrap(), "--out", cmp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let markdown = std::fs::read_to_string(cmp.join("report.md")).unwrap();
    assert!(markdown.contains("Parameters that differ: `network.loss`: 0.01 → 0.2."), "{markdown}");
    // Each campaign's own section has a row of the same name; the verdict is in the changes that follow them.
    let changes = markdown.split("## Changes:").nth(1).expect("a comparison has a changes section");
    let heal = changes.lines().find(|line| line.starts_with("| converged after the last heal (ms) |")).unwrap();
    assert!(heal.ends_with("| regressed |"), "20% loss slows convergence after the heal: {heal}");
    let abandoned = changes.lines().find(|line| line.starts_with("| sessions abandoned per run |")).unwrap();
    assert!(abandoned.ends_with("| regressed |"), "20% loss abandons more sessions: {abandoned}");
    assert!(markdown.contains("### What a pass means") && markdown.contains("| `reads` | always |"), "{markdown}");
    assert!(!markdown.contains("`determinism`"), "determinism is checked only with --check-determinism");

    let same = scx(&["report", base_out.to_str().unwrap(), base_out.to_str().unwrap(), "--out", cmp.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(2));
    assert!(text(&same.stderr).contains("are one file: a comparison needs two campaigns"), "{}", text(&same.stderr));
}
