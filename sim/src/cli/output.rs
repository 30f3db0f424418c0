//! What the command line prints and writes: run summaries, trace files,
//! campaign progress and summaries, JUnit XML and the CI step summary.

use crate::record::RunRecord;
use crate::runner::RunOutcome;
use crate::shard::Shard;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// GitHub drops a step summary over 1 MiB whole; stay well below.
const STEP_SUMMARY_BUDGET_BYTES: usize = 512 << 10;
/// Failures listed in summaries before "N more".
const FAILURES_LISTED: usize = 20;

/// stdout, or a file.
pub(super) fn sink(path: Option<&Path>) -> io::Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(BufWriter::new(File::create(path)?)),
        None => Box::new(BufWriter::new(io::stdout())),
    })
}

/// The human summary of one run.
pub(super) fn summary(record: &RunRecord, outcome: &RunOutcome) -> String {
    let mut out = String::new();
    let m = &record.metrics;
    let verdict = if record.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "{verdict}  {} seed {}  (scx {}, scenario {})",
        record.scenario, record.seed, record.scx_version, record.scenario_hash
    );
    let converged = match record.converged_at_ms {
        Some(ms) => format!("converged {ms} ms after the last heal at {} ms", record.quiescent_at_ms),
        None => "did not converge".to_owned(),
    };
    let _ = writeln!(out, "  {converged}; run stopped at {} ms", record.ended_at_ms);
    let finals: Vec<String> = outcome
        .samples
        .last()
        .map(|sample| {
            sample
                .nodes
                .iter()
                .enumerate()
                .map(|(i, node)| format!("n{i}={}", if node.chain.is_empty() { "down" } else { &node.chain }))
                .collect()
        })
        .unwrap_or_default();
    if !finals.is_empty() {
        let _ = writeln!(out, "  chain hashes: {}", finals.join(" "));
    }
    for fault in &record.faults {
        let end = fault.end_ms.map_or_else(|| "never".to_owned(), |end| format!("{end} ms"));
        let _ = writeln!(out, "  fault {:<18} {} ms .. {end}  nodes {:?}", fault.kind, fault.start_ms, fault.nodes);
    }
    let ratio = if m.bytes_missing > 0 { m.bytes_sent as f64 / m.bytes_missing as f64 } else { 0.0 };
    let _ = writeln!(
        out,
        "  {} lanes, {} sessions ({} abandoned), {} round trips; {} bytes sent for {} bytes of missing lanes ({ratio:.2}x)",
        m.lanes, m.sessions, m.sessions_abandoned, m.round_trips, m.bytes_sent, m.bytes_missing
    );
    let _ = writeln!(
        out,
        "  {} messages, {} dropped; {} crashes; {} snapshots; {} rollbacks; {} conflicts",
        m.messages_sent, m.messages_dropped, m.crashes, m.snapshots, m.rollbacks, m.conflicts
    );
    let _ = writeln!(out, "  trace {}", record.trace_hash);
    for violation in &record.violations {
        let node = violation.node.map_or_else(String::new, |node| format!(" at n{node}"));
        let _ = writeln!(
            out,
            "  VIOLATION {} ({}){node} at {} ms: {}",
            violation.checker, violation.kind, violation.at_ms, violation.message
        );
    }
    if !record.passed() {
        let _ = writeln!(out, "  reproduce: {}", record.reproduce);
    }
    out
}

/// The trace of a run in the report model: record, samples, traffic, events.
pub(super) fn trace_of(record: &RunRecord, outcome: &RunOutcome) -> scx_reports::model::Trace {
    use scx_reports::model::{NodeSample, Sample, TraceEvent, TrafficSample};
    scx_reports::model::Trace {
        record: record.clone(),
        nodes: outcome.spec.nodes,
        samples: outcome
            .samples
            .iter()
            .map(|sample| Sample {
                t_ms: sample.at_ns / 1_000_000,
                nodes: sample
                    .nodes
                    .iter()
                    .map(|node| NodeSample {
                        up: node.life != crate::world::Life::Down,
                        paused: node.life == crate::world::Life::Paused,
                        partitioned: node.partitioned,
                        lane_index: node.lane_index,
                        state_hash: node.chain.clone(),
                    })
                    .collect(),
            })
            .collect(),
        traffic: outcome
            .samples
            .iter()
            .map(|sample| TrafficSample {
                t_ms: sample.at_ns / 1_000_000,
                bytes_sent: sample.bytes_sent,
                bytes_missing: sample.bytes_missing,
            })
            .collect(),
        events: outcome
            .events
            .iter()
            .map(|stamped| TraceEvent {
                t_ms: stamped.at_ns / 1_000_000,
                node: stamped.event.node(),
                kind: stamped.event.kind().to_owned(),
                detail: stamped.event.to_string(),
            })
            .collect(),
        events_total: outcome.events_total,
    }
}

/// Writes the trace of a run as JSON.
pub(super) fn write_trace(path: &Path, trace: &scx_reports::model::Trace) -> anyhow::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    serde_json::to_writer(&mut file, trace)?;
    file.flush()?;
    Ok(())
}

/// Progress of a campaign on stderr (hidden when stderr is not a terminal)
/// and its wall-clock budget. The only wall clock in scx: it bounds the
/// campaign and never reaches a simulation.
pub(super) struct CampaignProgress {
    bar: ProgressBar,
    started: Instant,
    budget: Option<Duration>,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl CampaignProgress {
    #[allow(
        clippy::disallowed_methods,
        reason = "the campaign's wall-clock budget and seeds/s, outside any simulation"
    )]
    pub(super) fn start(total: u64, budget: Option<Duration>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if !io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds  {per_sec}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self { bar, started: Instant::now(), budget, failed: AtomicU64::new(0), first_failure: Mutex::new(None) }
    }

    pub(super) fn keep_going(&self) -> bool {
        self.budget.is_none_or(|budget| self.started.elapsed() < budget)
    }

    pub(super) fn finished(&self, record: &RunRecord) {
        if !record.passed() {
            let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(format!("{failed} failed"));
            let mut first = self.first_failure.lock().expect("progress lock");
            if first.is_none() {
                *first = Some(record.reproduce.clone());
                self.bar.println(format!("first failure: {}", record.reproduce));
            }
        }
        self.bar.inc(1);
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub(super) fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The campaign summary printed on stderr.
pub(super) fn campaign_summary(records: &[RunRecord], planned: usize, shard: Shard, elapsed_secs: f64) -> String {
    let failed: Vec<&RunRecord> = records.iter().filter(|record| !record.passed()).collect();
    let mut out = String::new();
    let rate = records.len() as f64 / elapsed_secs.max(1e-9);
    let _ = writeln!(
        out,
        "{} seeds run (of {planned} planned, shard {shard}): {} passed, {} failed; {rate:.1} seeds/s",
        records.len(),
        records.len() - failed.len(),
        failed.len()
    );
    for record in failed.iter().take(FAILURES_LISTED) {
        let checker = record.violations.first().map_or("?", |violation| violation.checker.as_str());
        let _ = writeln!(out, "  FAIL {checker}: {}", record.reproduce);
    }
    if failed.len() > FAILURES_LISTED {
        let _ = writeln!(out, "  {} more failures in the results file", failed.len() - FAILURES_LISTED);
    }
    out
}

/// Appends a Markdown summary to `$GITHUB_STEP_SUMMARY` when CI sets it.
pub(super) fn append_step_summary(records: &[RunRecord], shard: Shard) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else { return };
    let failed: Vec<&RunRecord> = records.iter().filter(|record| !record.passed()).collect();
    let mut out = format!(
        "## scx fuzz (shard {shard})\n\n{} seeds: {} passed, {} failed\n\n",
        records.len(),
        records.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        out.push_str("| scenario | seed | checker | reproduce |\n| --- | --- | --- | --- |\n");
    }
    for (listed, record) in failed.iter().enumerate() {
        let row = format!(
            "| {} | {} | {} | `{}` |\n",
            record.scenario,
            record.seed,
            record.violations.first().map_or("?", |violation| violation.checker.as_str()),
            record.reproduce
        );
        if out.len() + row.len() > STEP_SUMMARY_BUDGET_BYTES {
            let _ = writeln!(out, "\n{} more in the artifact", failed.len() - listed);
            break;
        }
        out.push_str(&row);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
        let _ = file.write_all(out.as_bytes());
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML with one test case per seed, as most CI dashboards read it.
pub(super) fn write_junit(path: &Path, records: &[RunRecord]) -> io::Result<()> {
    let failures = records.iter().filter(|record| !record.passed()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"scx fuzz\" tests=\"{}\" failures=\"{failures}\">", records.len());
    let _ = writeln!(out, "  <testsuite name=\"scx\" tests=\"{}\" failures=\"{failures}\">", records.len());
    for record in records {
        let name = xml_escape(&format!("{} seed {}", record.scenario, record.seed));
        let _ = write!(out, "    <testcase classname=\"{}\" name=\"{name}\"", xml_escape(&record.scenario_path));
        if record.passed() {
            out.push_str("/>\n");
            continue;
        }
        let message = record
            .violations
            .first()
            .map_or_else(String::new, |violation| format!("{}: {}", violation.checker, violation.message));
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
            xml_escape(&message),
            xml_escape(&record.reproduce)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    std::fs::write(path, out)
}
