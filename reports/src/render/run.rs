//! The report of one run: charts of its trace (distinct states, per-node
//! timeline, lane index, traffic), its faults, violations and the command
//! that reproduces it.

use super::{Chart, Drawing, ReportData, ReportFiles, ReportOptions, after_ms, csv, fault_bands, finish, lines, secs};
use super::{chart_html, summary_cards};
use crate::charts::{NodeState, Series, Timeline};
use crate::input::ReportError;
use crate::model::{RunRecord, Trace};
use maud::{Markup, html};
use std::fmt::Write as _;
use std::path::Path;

fn run_charts(trace: &Trace) -> Result<Vec<Chart>, ReportError> {
    let record = &trace.record;
    let bands = fault_bands(record);
    let converged = record.converged_at_ms.map(secs);
    let distinct: Vec<(f64, f64)> = trace
        .samples
        .iter()
        .map(|sample| {
            let mut hashes: Vec<&str> = sample
                .nodes
                .iter()
                .filter(|node| node.up && !node.state_hash.is_empty())
                .map(|node| node.state_hash.as_str())
                .collect();
            hashes.sort_unstable();
            hashes.dedup();
            (secs(sample.t_ms), hashes.len() as f64)
        })
        .collect();
    let mut charts = Vec::new();
    charts.push(Chart {
        id: "distinct-states".into(),
        title: "Distinct state hashes over time".into(),
        caption: "Live nodes with different chain hashes; shaded: fault windows; line: convergence.".into(),
        drawing: lines(
            "Distinct state hashes over time",
            "simulated time (s)",
            "distinct hashes",
            &[Series { name: "distinct chain hashes".into(), points: distinct.clone() }],
            &bands,
            converged.map(|x| (x, "converged")),
        ),
        csv: csv("t_s,distinct_hashes", distinct.iter().map(|(t, n)| format!("{t:.3},{n}"))),
    });
    let mut rows = Vec::new();
    for node in 0..trace.nodes {
        let mut current: Option<(f64, NodeState)> = None;
        for (index, sample) in trace.samples.iter().enumerate() {
            let Some(state) = sample.nodes.get(node as usize) else { continue };
            let state = match (state.up, state.paused, state.partitioned) {
                (false, _, _) => NodeState::Down,
                (true, true, _) => NodeState::Paused,
                (true, false, true) => NodeState::Partitioned,
                _ => NodeState::Up,
            };
            let t = secs(sample.t_ms);
            let last = index + 1 == trace.samples.len();
            match current {
                Some((start, open)) if open != state || last => {
                    rows.push((node, start, t, open));
                    current = Some((t, state));
                }
                None => current = Some((t, state)),
                _ => {}
            }
        }
    }
    charts.push(Chart {
        id: "node-timeline".into(),
        title: "Per-node timeline".into(),
        caption: "Each node's state over simulated time: up, partitioned, paused or down.".into(),
        drawing: Drawing::Timeline(Timeline {
            title: "Per-node timeline".into(),
            nodes: trace.nodes,
            rows: rows.clone(),
        }),
        csv: csv(
            "node,start_s,end_s,state",
            rows.iter().map(|(n, s, e, st)| format!("{n},{s:.3},{e:.3},{}", st.name())),
        ),
    });
    let shown = lagging_nodes(trace, LANE_NODES);
    let lane_series: Vec<Series> = (shown.iter().copied())
        .map(|node| Series {
            name: format!("n{node}"),
            points: trace
                .samples
                .iter()
                .filter_map(|s| s.nodes.get(node as usize).map(|n| (secs(s.t_ms), n.lane_index as f64)))
                .collect(),
        })
        .collect();
    charts.push(Chart {
        id: "lane-index".into(),
        title: "Lane index per node".into(),
        caption: if shown.len() as u32 == trace.nodes {
            "Lanes each node holds in canonical order.".to_owned()
        } else {
            format!(
                "Lanes held in canonical order by the {} nodes that lagged the most of {} (the most lanes × samples behind the cluster's front, which is where a partitioned minority shows); the CSV has every node.",
                shown.len(),
                trace.nodes
            )
        },
        drawing: lines(
            "Lane index per node",
            "simulated time (s)",
            "lane index",
            &lane_series,
            &bands,
            converged.map(|x| (x, "converged")),
        ),
        csv: csv(
            "t_s,node,lane_index",
            trace.samples.iter().flat_map(|s| {
                s.nodes.iter().enumerate().map(move |(n, node)| format!("{:.3},{n},{}", secs(s.t_ms), node.lane_index))
            }),
        ),
    });
    let sent: Vec<(f64, f64)> = trace.traffic.iter().map(|t| (secs(t.t_ms), t.bytes_sent as f64)).collect();
    let missing: Vec<(f64, f64)> = trace.traffic.iter().map(|t| (secs(t.t_ms), t.bytes_missing as f64)).collect();
    charts.push(Chart {
        id: "traffic".into(),
        title: "Bytes sent vs bytes missing".into(),
        caption: "Cumulative datagram bytes against the bytes of the lanes receivers lacked.".into(),
        drawing: lines(
            "Bytes sent vs bytes missing",
            "simulated time (s)",
            "bytes",
            &[
                Series { name: "bytes sent".into(), points: sent },
                Series { name: "bytes of missing lanes".into(), points: missing },
            ],
            &bands,
            None,
        ),
        csv: csv(
            "t_ms,bytes_sent,bytes_missing",
            trace.traffic.iter().map(|t| format!("{},{},{}", t.t_ms, t.bytes_sent, t.bytes_missing)),
        ),
    });
    Ok(charts)
}

/// Writes the report of one run into `out_dir`.
pub fn write_run_report(trace: &Trace, out_dir: &Path, options: &ReportOptions) -> Result<ReportFiles, ReportError> {
    let record = &trace.record;
    let title = options.title.clone().unwrap_or_else(|| format!("{} seed {}", record.scenario, record.seed));
    let charts = run_charts(trace)?;
    let markdown = run_markdown(&title, record, &charts);
    let svgs = charts.iter().map(Chart::svg).collect::<Result<Vec<_>, _>>()?;
    let body = html! {
        (summary_cards(&[
            ("verdict", record.status.name().to_uppercase()),
            ("converged after the last heal", after_ms(record.converged_after_last_heal_ms, record.converged_at_ms)),
            ("converged after the last write", after_ms(record.converged_after_last_write_ms, record.converged_at_ms)),
            ("bytes sent / missing", record.bytes_ratio().map_or("-".into(), |r| format!("{r:.2}x"))),
            ("round trips", record.metrics.round_trips.to_string()),
            ("lanes", record.metrics.lanes.to_string()),
        ]))
        (violations_html(record))
        @for (chart, svg) in charts.iter().zip(&svgs) { (chart_html(chart, svg)) }
        @if let Some(table) = super::bytes::run_table(&record.metrics) {
            h2 { "Where the bytes went" }
            p.note { (super::bytes::NOTE) }
            (table.html())
        }
        h2 { "Faults" }
        table { tr { th { "kind" } th { "start" } th { "heal" } th { "nodes" } }
            @for fault in &record.faults { tr { td { (fault.kind) } td { (fault.start_ms) " ms" } td { (fault.end_ms.map_or("never".into(), |e| format!("{e} ms"))) } td { (fault.nodes_text()) } } }
        }
        h2 { "Run" }
        p { "scx " (record.scx_version) ", scenario " code { (record.scenario_hash) } ", trace " code { (record.trace_hash) } }
        p { "Reproduce: " code { (record.reproduce) } }
    };
    let data = ReportData {
        kind: "run",
        title: title.clone(),
        charts: charts.iter().map(|c| c.title.as_str()).collect(),
        run: Some(record),
        campaigns: Vec::new(),
    };
    finish(out_dir, &title, body, &markdown, &data, &charts, options)
}

fn run_markdown(title: &str, record: &RunRecord, charts: &[Chart]) -> String {
    let mut md = format!("# {title}\n\n| | |\n| --- | --- |\n");
    let _ = writeln!(md, "| verdict | {} |", record.status.name().to_uppercase());
    if let Some(note) = &record.note {
        let _ = writeln!(md, "| note | {} |", note.replace('|', "\\|").replace('\n', " "));
    }
    let _ = writeln!(
        md,
        "| converged after the last heal | {} |\n| converged after the last write | {} |\n| sampled every | {} ms |",
        after_ms(record.converged_after_last_heal_ms, record.converged_at_ms),
        after_ms(record.converged_after_last_write_ms, record.converged_at_ms),
        record.sample_interval_ms
    );
    let _ = writeln!(
        md,
        "| bytes sent / bytes missing | {} / {} |",
        record.metrics.bytes_sent, record.metrics.bytes_missing
    );
    let _ = writeln!(md, "| round trips | {} |", record.metrics.round_trips);
    let _ = writeln!(md, "| trace hash | `{}` |", record.trace_hash);
    if let Some(table) = super::bytes::run_table(&record.metrics) {
        let _ = writeln!(md, "\n## Where the bytes went\n\n{}", super::bytes::NOTE);
        table.markdown(&mut md);
    }
    for violation in &record.violations {
        let _ = writeln!(
            md,
            "\n**Violation** `{}` ({}) at {} ms: {}",
            violation.checker, violation.kind, violation.at_ms, violation.message
        );
    }
    let _ = writeln!(
        md,
        "\nReproduce: `{}`\n\nCharts (in report.html, data in CSV): {}",
        record.reproduce,
        charts.iter().map(|c| c.title.as_str()).collect::<Vec<_>>().join(", ")
    );
    md
}

/// The run's violations, or the note of a run that ended without a
/// verdict on the engine.
fn violations_html(record: &RunRecord) -> Markup {
    html! {
        @if !record.violations.is_empty() {
            h2.fail { "Violations (" (record.violations.len()) ")" }
            table {
                tr { th { "checker" } th { "kind" } th { "at" } th { "node" } th { "violation" } }
                @for violation in &record.violations {
                    tr { td { (violation.checker) } td { (violation.kind) } td.n { (violation.at_ms) " ms" }
                         td { (violation.node.map_or("-".into(), |node| format!("n{node}"))) } td { (violation.message) } }
                }
            }
        }
        @if let Some(note) = &record.note {
            p.note { (record.status.name()) ": " (note) }
        }
    }
}

/// Nodes drawn in the lane-index chart at most (one colour each).
const LANE_NODES: usize = 8;

/// Every node when there are at most `limit`; otherwise the `limit` that
/// lagged the most: the largest sum over samples of how many lanes the node
/// was behind the most advanced node (ties by node), in node order.
fn lagging_nodes(trace: &Trace, limit: usize) -> Vec<u32> {
    if trace.nodes as usize <= limit {
        return (0..trace.nodes).collect();
    }
    let mut lag = vec![0u64; trace.nodes as usize];
    for sample in &trace.samples {
        let front = sample.nodes.iter().map(|node| node.lane_index).max().unwrap_or(0);
        for (index, node) in sample.nodes.iter().enumerate().take(lag.len()) {
            lag[index] += front - node.lane_index;
        }
    }
    let mut order: Vec<u32> = (0..trace.nodes).collect();
    order.sort_by_key(|node| (std::cmp::Reverse(lag[*node as usize]), *node));
    order.truncate(limit);
    order.sort_unstable();
    order
}
