//! Goal: real mode runs the same nodes as processes and judges them with
//! the same checkers: a 3-node cluster on 127.0.0.1 with a partition, a
//! kill -9 and a SIGSTOP converges and loses no acknowledged lane; the
//! planted send-before-durable bug (appends never synced, so a SIGKILL
//! really loses acknowledged lanes) is found; no node process outlives a
//! run, a failed run, an interrupted supervisor or a SIGKILLed one; and a
//! key only the simulator honours is refused with its location.
//! Method: run the built `scx cluster` on fixtures in a fresh directory,
//! read its record, and look in /proc for processes naming that directory.
//! Every run is bounded by a generous timeout that fails the test; no test
//! asserts wall time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Far above any real run here (its run time plus stopping), so only a hang trips it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const FIXTURE: &str = "sim/tests/fixtures/real/partition-and-kill.toml";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace").to_path_buf()
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scx-real-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scx"))
        .args(args)
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scx binary starts")
}

/// Waits for `child`, killing it and failing the test past `limit`.
fn finish(mut child: Child, limit: Duration) -> Output {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while child.try_wait().expect("waiting for scx").is_none() {
        if waited > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("scx output");
            panic!("scx ran longer than {limit:?}; stderr:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(step);
        waited += step;
    }
    child.wait_with_output().expect("scx output")
}

fn cluster(out: &Path, extra: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut args = vec!["cluster", FIXTURE, "--seed", "1", "--out", &out, "--format", "json"];
    args.extend_from_slice(extra);
    finish(start(&args), RUN_TIMEOUT)
}

/// Live processes (not zombies) whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
        if cmdline.contains(&needle) && !zombie {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Waits (bounded) until no live process names `dir`; fails the test otherwise.
fn assert_no_process_names(dir: &Path) {
    for _ in 0..100 {
        if processes_naming(dir).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("processes outlived the run: {:?}", processes_naming(dir));
}

fn record(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("no JSON record ({error}); stderr:\n{}", String::from_utf8_lossy(&output.stderr))
    })
}

#[test]
fn real_cluster_of_3_with_a_partition_a_kill_9_and_a_pause_converges_and_loses_no_lane() {
    let out = fresh("pass");
    let output = cluster(&out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let value = record(&output);
    assert_eq!(value["status"], "pass", "{value:#}\n{stderr}");
    assert_eq!(output.status.code(), Some(0));
    assert!(value["converged_at_ms"].is_u64(), "{value:#}");
    let metrics = &value["metrics"];
    assert!(metrics["lanes"].as_u64() > Some(20), "{metrics:#}");
    assert_eq!(metrics["crashes"], 1, "{metrics:#}");
    assert!(metrics["partition_drops"].as_u64() > Some(0), "the partition bit: {metrics:#}");
    assert!(metrics["reads"].as_u64() > Some(0), "{metrics:#}");
    assert!(value["note"].as_str().is_some_and(|note| note.contains("real mode")), "{value:#}");
    assert!(value["reproduce"].as_str().is_some_and(|line| line.starts_with("scx cluster ")), "{value:#}");
    // The restarted node's log shows its second boot, from its own data directory.
    let log = std::fs::read_to_string(out.join("n1/observations.jsonl")).unwrap();
    assert!(log.contains("\"kind\":\"booted\",\"boot\":2"), "n1 never rebooted");
    for file in ["record.json", "trace.json", "report/report.html", "report/report.md"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let markdown = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(markdown.contains("real processes") && markdown.contains("not deterministic"), "{markdown}");
    assert_no_process_names(&out);
}

#[test]
fn real_mode_finds_the_planted_send_before_durable_bug_after_a_kill_9() {
    let out = fresh("bug");
    let output = cluster(&out, &["--bug", "send-before-durable"]);
    let value = record(&output);
    assert_eq!(output.status.code(), Some(1), "{value:#}");
    let violations = value["violations"].as_array().expect("violations");
    assert!(
        violations.iter().any(|violation| violation["checker"] == "durability"),
        "the kill -9 lost acknowledged lanes, and durability must say so: {violations:#?}"
    );
    assert_no_process_names(&out);
}

#[test]
fn no_node_outlives_a_supervisor_stopped_by_sigterm_or_sigkill() {
    for (signal, expected_code) in [(libc::SIGTERM, Some(143)), (libc::SIGKILL, None)] {
        let out = fresh(&format!("signal-{signal}"));
        let out_arg = out.display().to_string();
        let child = start(&["cluster", FIXTURE, "--seed", "1", "--out", &out_arg]);
        // Wait (bounded) until every node has booted, then signal the supervisor.
        let booted = |node: u32| {
            std::fs::read_to_string(out.join(format!("n{node}/observations.jsonl")))
                .is_ok_and(|log| log.contains("\"kind\":\"booted\""))
        };
        let mut waited = 0;
        while !(0..3).all(booted) {
            assert!(waited < 600, "the nodes never booted");
            std::thread::sleep(Duration::from_millis(50));
            waited += 1;
        }
        assert_eq!(processes_naming(&out).len(), 4, "a supervisor and three nodes: {:?}", processes_naming(&out));
        assert_eq!(send_signal(child.id(), signal), 0);
        let output = finish(child, RUN_TIMEOUT);
        assert_eq!(output.status.code(), expected_code, "{}", String::from_utf8_lossy(&output.stderr));
        assert_no_process_names(&out);
    }
}

/// Sends `signal` to `pid` with the `kill` command (the crate forbids unsafe code).
fn send_signal(pid: u32, signal: i32) -> i32 {
    let status = Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status().expect("kill runs");
    status.code().unwrap_or(-1)
}

#[test]
fn a_sim_only_key_is_refused_with_its_location_and_left_out_with_allow_sim_only() {
    let scenario = "sim/tests/fixtures/real/clock-skew.toml";
    let out = fresh("skew");
    let out_arg = out.display().to_string();
    let refused = finish(start(&["cluster", scenario, "--out", &out_arg]), RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("clock-skew.toml:17:8") && stderr.contains("simulator-only"), "{stderr}");
    assert!(!out.exists(), "a refused scenario starts nothing");
    let allowed = finish(start(&["cluster", scenario, "--out", &out_arg, "--allow-sim-only"]), RUN_TIMEOUT);
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert!(stderr.contains("warning: ") && stderr.contains("(left out)"), "{stderr}");
    assert_eq!(allowed.status.code(), Some(0), "{stderr}\n{}", String::from_utf8_lossy(&allowed.stdout));
    assert_no_process_names(&out);
}
