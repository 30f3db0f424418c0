//! Goal: a campaign's results mean what they say however it ends: streamed
//! in order, valid after SIGINT/SIGTERM, completed byte-identically by
//! `--resume`, never stale, never blamed on the engine when the harness or
//! the budget is at fault, and merged only when shards agree.
//! Method: run the built `scx` binary on shipped scenarios, interrupt it
//! with real signals, and compare files byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
    let dir = std::env::temp_dir().join(format!("scx-campaign-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The records of a results file (or of `scx fuzz` stdout), after
/// checking that the first line is the campaign manifest.
fn records(text: &str) -> impl Iterator<Item = &str> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with("{\"campaign\":{\"format\":1,"), "the first line is the manifest: {first}");
    lines
}

/// (seed, scenario path) of every record, checking each line is one.
fn keys(file: &Path) -> Vec<(u64, String)> {
    records(&std::fs::read_to_string(file).unwrap())
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("every line is a record");
            (value["seed"].as_u64().unwrap(), value["scenario_path"].as_str().unwrap().to_owned())
        })
        .collect()
}

const CAMPAIGN: [&str; 5] =
    ["fuzz", "scenarios/partition-heal-mesh.toml", "scenarios/quickstart.toml", "--seeds", "0..40"];

/// Starts the campaign writing to `out`, waits until it has written a few
/// records, sends `signal`, and returns how it ended.
fn interrupt(out: &Path, signal: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_scx"))
        .args(CAMPAIGN)
        .args(["--jobs", "2", "--out", path(out)])
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scx binary starts");
    let mut waited = 0;
    while std::fs::read_to_string(out).map_or(0, |text| text.lines().count()) < 4 {
        assert!(waited < 600, "the campaign wrote nothing within a minute");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let sent = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    child.wait_with_output().expect("the campaign ends")
}

#[test]
fn an_interrupted_campaign_leaves_sorted_results_that_resume_completes_byte_identically() {
    let dir = temp("interrupt");
    let whole = dir.join("whole.jsonl");
    let out = scx(&[&CAMPAIGN[..], &["--jobs", "2", "--out", path(&whole)]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = keys(&whole);
    assert_eq!(all.len(), 80);
    assert!(all.windows(2).all(|pair| pair[0] < pair[1]), "results are sorted by seed, then scenario");

    let partial = dir.join("partial.jsonl");
    let stopped = interrupt(&partial, "-INT");
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped.stderr));
    let stderr = text(&stopped.stderr);
    assert!(stderr.contains("interrupted after") && stderr.contains("--resume"), "{stderr}");
    let kept = keys(&partial);
    assert!(!kept.is_empty() && kept.len() < all.len(), "interrupted part-way: {} records", kept.len());
    assert!(kept.windows(2).all(|pair| pair[0] < pair[1]), "what was written is sorted");
    assert!(kept.iter().all(|key| all.contains(key)));

    let resumed = scx(&[&CAMPAIGN[..], &["--jobs", "1", "--out", path(&partial), "--resume"]].concat());
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(text(&resumed.stderr).contains(&format!("{} from the earlier results", kept.len())));
    assert_eq!(std::fs::read(&partial).unwrap(), std::fs::read(&whole).unwrap(), "resumed = uninterrupted");
}

#[test]
fn sigterm_stops_a_campaign_with_exit_143_and_valid_results() {
    let dir = temp("sigterm");
    let out = dir.join("results.jsonl");
    let stopped = interrupt(&out, "-TERM");
    assert_eq!(stopped.status.code(), Some(143), "{}", text(&stopped.stderr));
    let kept = keys(&out);
    assert!(kept.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn resume_drops_a_torn_last_line_and_refuses_another_campaigns_file() {
    let dir = temp("torn");
    let whole = dir.join("whole.jsonl");
    let args = ["fuzz", "scenarios/quickstart.toml", "--seeds", "0..12"];
    assert_eq!(scx(&[&args[..], &["--out", path(&whole)]].concat()).status.code(), Some(0));
    let text_whole = std::fs::read_to_string(&whole).unwrap();
    let torn = dir.join("torn.jsonl");
    let head: String = text_whole.lines().take(5).map(|line| format!("{line}\n")).collect();
    std::fs::write(&torn, format!("{head}{}", &text_whole.lines().nth(5).unwrap()[..40])).unwrap();
    let out = scx(&[&args[..], &["--out", path(&torn), "--resume"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("a torn last line of 40 bytes dropped"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&torn).unwrap(), text_whole);

    let other = scx(&["fuzz", "scenarios/p2p-gossip.toml", "--seeds", "0..12", "--out", path(&torn), "--resume"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr)
            .contains("torn.jsonl:1: the file is another campaign's (it does not run scenarios/p2p-gossip.toml)"),
        "{}",
        text(&other.stderr)
    );
    assert_eq!(std::fs::read_to_string(&torn).unwrap(), text_whole, "a refused resume leaves the file alone");
    for (args, why) in [
        (
            ["fuzz", "scenarios/quickstart.toml", "--seeds", "0..13"],
            "it runs scenarios/quickstart.toml seeds 0..12, not 0..13",
        ),
        (["fuzz", "scenarios/quickstart.toml", "--shard", "1/2"], "it is shard 1/1, not shard 1/2"),
    ] {
        let other = scx(&[&args[..], &["--out", path(&torn), "--resume"]].concat());
        assert_eq!(other.status.code(), Some(2));
        assert!(text(&other.stderr).contains(why), "{}", text(&other.stderr));
    }
    // A file from before manifests (records from its first line) is not resumed.
    let bare = dir.join("bare.jsonl");
    let body: String = text_whole.lines().skip(1).map(|line| format!("{line}\n")).collect();
    std::fs::write(&bare, body).unwrap();
    let out = scx(&[&args[..], &["--out", path(&bare), "--resume"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bare.jsonl:1: not a campaign manifest"), "{}", text(&out.stderr));
    // A manifest torn before its newline is an empty campaign: it starts over.
    let cut = dir.join("cut.jsonl");
    std::fs::write(&cut, &text_whole[..30]).unwrap();
    let out = scx(&[&args[..], &["--out", path(&cut), "--resume"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&cut).unwrap(), text_whole);
}

#[test]
fn a_new_campaign_never_leaves_an_older_results_file_looking_current() {
    let dir = temp("stale");
    let out = dir.join("results.jsonl");
    std::fs::write(&out, "stale\nstale\nstale\n").unwrap();
    let run = scx(&["fuzz", "scenarios/quickstart.toml", "--seeds", "0..2", "--out", path(&out)]);
    assert_eq!(run.status.code(), Some(0));
    assert_eq!(keys(&out).len(), 2);
}

#[test]
fn outputs_are_checked_before_any_seed_runs() {
    let dir = temp("outputs");
    let scenario = dir.join("x.toml");
    std::fs::copy(workspace().join("scenarios/quickstart.toml"), &scenario).unwrap();
    let before = std::fs::read(&scenario).unwrap();
    let same = format!("{}/./x.toml", dir.display());
    let out = scx(&["fuzz", path(&scenario), "--out", &same]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is the scenario file"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&scenario).unwrap(), before, "the scenario is untouched");

    let missing = dir.join("no/such/dir/results.jsonl");
    let out = scx(&["fuzz", "scenarios/quickstart.toml", "--out", path(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("creating the results file {}", missing.display())));
    assert!(out.stdout.is_empty() && !text(&out.stderr).contains("seeds run"), "no seed ran");

    let both = dir.join("both.xml");
    let out = scx(&["fuzz", "scenarios/quickstart.toml", "--out", path(&both), "--junit", path(&both)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--out and --junit both name"));
}

#[test]
fn a_seed_past_its_wall_clock_limit_is_a_timeout_not_a_pass() {
    let out = scx(&["fuzz", "scenarios/partition-heal-mesh.toml", "--seeds", "0..1", "--timeout", "1ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let record: serde_json::Value = serde_json::from_str(records(&stdout).next().unwrap()).unwrap();
    assert_eq!(record["status"], "timeout");
    assert!(record["note"].as_str().unwrap().contains("wall-clock limit of 1ms"), "{record}");
    assert!(text(&out.stderr).contains("0 passed, 0 failed, 1 timed out"), "{}", text(&out.stderr));
}

#[test]
fn a_budget_that_leaves_a_scenario_untested_fails_the_campaign() {
    let out = scx(&[
        "fuzz",
        "scenarios/quickstart.toml",
        "scenarios/p2p-gossip.toml",
        "scenarios/partition-heal-mesh.toml",
        "--seeds",
        "0..1000",
        "--jobs",
        "1",
        "--duration",
        "1ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the --duration budget ended after"), "{stderr}");
    assert!(stderr.contains("NOT TESTED: scenario scenarios/quickstart.toml ran 0 of 1000 planned seeds"), "{stderr}");
}

#[test]
fn merge_refuses_conflicting_records_and_mixed_versions_and_keeps_exact_duplicates_once() {
    let dir = temp("merge");
    let results = dir.join("a.jsonl");
    assert_eq!(
        scx(&["fuzz", "scenarios/quickstart.toml", "--seeds", "0..3", "--out", path(&results)]).status.code(),
        Some(0)
    );
    let text_a = std::fs::read_to_string(&results).unwrap();
    let merged = dir.join("merged.jsonl");
    let out = scx(&["merge", path(&results), path(&results), "--out", path(&merged)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("3 exact duplicates dropped"));
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), text_a);

    let conflicting = dir.join("b.jsonl");
    std::fs::write(&conflicting, text_a.replacen("\"status\":\"pass\"", "\"status\":\"fail\"", 1)).unwrap();
    let out = scx(&["merge", path(&results), path(&conflicting), "--out", path(&merged)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("disagree about scenarios/quickstart.toml seed 0 (pass vs fail)"));
    assert!(!merged.exists(), "a merge stopped by a conflict leaves no partial output");

    let older = dir.join("c.jsonl");
    std::fs::write(&older, text_a.replace("\"scx_version\":\"", "\"scx_version\":\"0.0.1-")).unwrap();
    let out = scx(&["merge", path(&results), path(&older)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("c.jsonl is not a shard of the campaign")
            && text(&out.stderr).contains("(it was written by scx 0.0.1-0.1.0, not scx 0.1.0)"),
        "{}",
        text(&out.stderr)
    );
    // A record that its own manifest does not vouch for.
    let relabelled = dir.join("d.jsonl");
    let mut lines: Vec<&str> = text_a.lines().collect();
    let changed = lines[2].replace("\"scx_version\":\"", "\"scx_version\":\"0.0.1-");
    lines[2] = &changed;
    std::fs::write(&relabelled, lines.join("\n") + "\n").unwrap();
    let out = scx(&["merge", path(&relabelled)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("d.jsonl:3: the record was written by scx 0.0.1-0.1.0"),
        "{}",
        text(&out.stderr)
    );

    let out = scx(&["merge", path(&results), "--out", path(&results)]);
    assert_eq!(out.status.code(), Some(2), "the output may not be an input");
}

#[test]
fn failures_files_name_one_scenario_however_its_path_is_spelled() {
    let dir = temp("spelling");
    let file = dir.join("scx.failures");
    std::fs::write(&file, "./sim/tests/fixtures/failing/never-heals.toml seed 5 # earlier\n").unwrap();
    let out =
        scx(&["fuzz", "sim/tests/fixtures/failing/never-heals.toml", "--seeds", "0..1", "--failures", path(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let seeds: Vec<u64> = records(&stdout)
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [0, 5], "the listed seed ran although its path was spelled ./sim/...");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2, "seed 5 was not appended again");
}

#[test]
fn a_campaign_whose_declared_effect_never_happens_fails_with_a_coverage_line() {
    let dir = temp("coverage");
    let scenario = dir.join("quiet.toml");
    let quickstart = std::fs::read_to_string(workspace().join("scenarios/quickstart.toml")).unwrap();
    // A snapshot is installed from a peer only by a node behind the prune
    // point: no node of the quickstart cluster ever is.
    std::fs::write(
        &scenario,
        format!("{quickstart}\n[coverage]\nexpect = [\"partition-drops\", \"snapshots-installed\"]\n"),
    )
    .unwrap();
    let out = scx(&["fuzz", path(&scenario), "--seeds", "0..3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("3 passed, 0 failed"), "every run passed: {stderr}");
    assert!(
        stderr.contains("COVERAGE: ")
            && stderr.contains("`snapshots-installed`")
            && stderr.contains("never happened in 3 seeds"),
        "{stderr}"
    );
    assert!(!stderr.contains("`partition-drops`"), "the partition did drop datagrams: {stderr}");
}

/// `scx` with the scale-out engines' variables cleared, then `env` set.
fn scx_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scx"));
    for name in scx_sim::shard::ENV_NAMES {
        command.env_remove(name);
    }
    command.args(args).envs(env.iter().copied()).current_dir(workspace()).output().expect("the scx binary runs")
}

#[test]
fn shard_auto_reads_the_engine_variables_and_says_where_from() {
    let dir = temp("shard-auto");
    let (auto, fixed, whole) = (dir.join("auto.jsonl"), dir.join("fixed.jsonl"), dir.join("whole.jsonl"));
    let campaign = ["fuzz", "scenarios/quickstart.toml", "--seeds", "0..9", "--jobs", "2"];
    let kubernetes = [("JOB_COMPLETION_INDEX", "1"), ("SCX_SHARD_COUNT", "3")];
    // Kubernetes index 1 of 3 is shard 2/3: the records of --shard 2/3.
    let ran = scx_env(&[&campaign[..], &["--shard", "auto", "--out", path(&auto)]].concat(), &kubernetes);
    let stderr = text(&ran.stderr);
    assert_eq!(ran.status.code(), Some(0), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("shard 2/3 (from JOB_COMPLETION_INDEX=1, SCX_SHARD_COUNT=3)"), "{first}");
    let ran = scx_env(&[&campaign[..], &["--shard", "2/3", "--out", path(&fixed)]].concat(), &[]);
    assert!(text(&ran.stderr).lines().next().unwrap_or_default().contains("shard 2/3 (from --shard)"));
    assert_eq!(keys(&auto).iter().map(|(seed, _)| *seed).collect::<Vec<_>>(), [1, 4, 7]);
    assert_eq!(std::fs::read(&auto).unwrap(), std::fs::read(&fixed).unwrap());
    // Without --shard the variables are not read: the whole campaign, and a note.
    let ran = scx_env(&[&campaign[..], &["--out", path(&whole)]].concat(), &kubernetes);
    assert_eq!(ran.status.code(), Some(0));
    assert!(text(&ran.stderr).contains("pass --shard auto to run one shard"), "{}", text(&ran.stderr));
    assert_eq!(keys(&whole).len(), 9);
    // A variable set but malformed, or none set: exit 2 naming it, nothing written.
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("SCX_SHARD", "4/3")], "SCX_SHARD"),
        (&[("SCX_SHARD", "two")], "SCX_SHARD"),
        (&[("JOB_COMPLETION_INDEX", "x"), ("SCX_SHARD_COUNT", "3")], "JOB_COMPLETION_INDEX"),
        (&[("SLURM_ARRAY_TASK_ID", "1")], "SLURM_ARRAY_TASK_COUNT"),
        (&[], "found none of SCX_SHARD"),
    ];
    for (env, named) in cases {
        let out = dir.join("bad.jsonl");
        let ran = scx_env(&[&campaign[..], &["--shard", "auto", "--out", path(&out)]].concat(), env);
        let stderr = text(&ran.stderr);
        assert_eq!(ran.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(named), "{env:?}: {stderr}");
        assert!(!out.exists(), "{env:?}: a results file was written");
    }
}

#[test]
fn resume_of_a_results_file_not_there_yet_starts_the_campaign() {
    // A retried shard passes --resume every time, also when its first
    // attempt died before writing anything.
    let dir = temp("resume-missing");
    let (resumed, plain) = (dir.join("resumed.jsonl"), dir.join("plain.jsonl"));
    let campaign = ["fuzz", "scenarios/quickstart.toml", "--seeds", "0..6", "--jobs", "2"];
    let ran = scx(&[&campaign[..], &["--out", path(&resumed), "--resume"]].concat());
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    assert!(text(&ran.stderr).contains("nothing to resume at"), "{}", text(&ran.stderr));
    scx(&[&campaign[..], &["--out", path(&plain)]].concat());
    assert_eq!(std::fs::read(&resumed).unwrap(), std::fs::read(&plain).unwrap());
    assert_eq!(keys(&resumed).len(), 6);
}

#[test]
fn merge_names_the_runs_no_shard_holds_and_leaves_no_incomplete_output() {
    let dir = temp("missing");
    let args = ["fuzz", "scenarios/quickstart.toml", "--seeds", "0..9"];
    let part = |shard: &str| dir.join(format!("p{}.jsonl", &shard[..1]));
    for shard in ["1/3", "2/3", "3/3"] {
        let out = scx(&[&args[..], &["--shard", shard, "--out", path(&part(shard))]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // Shard 2 stopped after one run; shard 3 was lost.
    let second = std::fs::read_to_string(part("2/3")).unwrap();
    let cut = dir.join("p2-cut.jsonl");
    std::fs::write(&cut, second.lines().take(2).map(|line| format!("{line}\n")).collect::<String>()).unwrap();
    let merged = dir.join("merged.jsonl");
    std::fs::write(&merged, "an older merge\n").unwrap();
    let out = scx(&["merge", path(&part("1/3")), path(&cut), "--out", path(&merged)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the merge lacks 5 runs of the campaign:"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "shard 2/3 ({}): 2 of 3 runs missing: scenarios/quickstart.toml seed 4, scenarios/quickstart.toml seed 7",
            cut.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("shard 3/3: no results file given (3 runs)"), "{stderr}");
    assert!(stderr.contains("--allow-missing"), "{stderr}");
    assert!(!merged.exists(), "an incomplete merge must not look like a campaign's results");

    let out = scx(&["merge", path(&part("1/3")), path(&cut), "--out", path(&merged), "--allow-missing"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("warning: the merge lacks 5 runs"), "{}", text(&out.stderr));
    assert_eq!(keys(&merged).iter().map(|(seed, _)| *seed).collect::<Vec<_>>(), [0, 1, 3, 6]);

    // A record filed under the wrong shard is refused where it stands.
    let first = std::fs::read_to_string(part("1/3")).unwrap();
    let stray = dir.join("stray.jsonl");
    std::fs::write(&stray, format!("{}{}\n", first, second.lines().nth(2).unwrap())).unwrap();
    let out = scx(&["merge", path(&stray)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("stray.jsonl:5: scenarios/quickstart.toml seed 4 is not a run of shard 1/3 (seeds 0..9)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn shards_with_a_failures_file_merge_to_the_unsharded_campaign() {
    let dir = temp("replayed");
    let fixture = "sim/tests/fixtures/failing/never-heals.toml";
    let failures = dir.join("scx.failures");
    let listed = format!("{fixture} seed 9 # earlier\n{fixture} seed 2 # earlier\n");
    let campaign = |failures: &Path, out: &Path, shard: &str| {
        std::fs::write(failures, &listed).unwrap();
        let args =
            ["fuzz", fixture, "--seeds", "0..4", "--shard", shard, "--failures", path(failures), "--out", path(out)];
        assert_eq!(scx(&args).status.code(), Some(1), "the fixture fails every seed");
    };
    let whole = dir.join("whole.jsonl");
    campaign(&failures, &whole, "1/1");
    let manifest = std::fs::read_to_string(&whole).unwrap().lines().next().unwrap().to_owned();
    assert!(
        manifest.contains(&format!("\"replayed_first\":[{{\"scenario\":\"{fixture}\",\"seed\":9}}],")),
        "only the seed outside the plan is listed: {manifest}"
    );
    let parts: Vec<PathBuf> = ["1/2", "2/2"]
        .iter()
        .map(|shard| {
            let out = dir.join(format!("part-{}.jsonl", &shard[..1]));
            campaign(&dir.join(format!("failures-{}", &shard[..1])), &out, shard);
            out
        })
        .collect();
    let merged = dir.join("merged.jsonl");
    let out = scx(&["merge", path(&parts[1]), path(&parts[0]), "--out", path(&merged)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), std::fs::read_to_string(&whole).unwrap());
}
