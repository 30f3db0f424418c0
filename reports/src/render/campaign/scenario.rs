//! One section per scenario of a campaign page: its runs and verdicts,
//! convergence after the last heal and after the last write, the other
//! counters per run, its parameters and fault kinds, its coverage, its
//! failures grouped by checker and message, its slowest seeds, and its
//! charts. Scenarios are the aggregate's keys (name, content hash, path),
//! so one name with two contents gets two sections.
//!
//! Invariant: a section reads one `ScenarioStats` and the manifests'
//! parameters, nothing else, so the page stays bounded by the aggregate.

use super::super::table::{Cell, Table, figures, md_cell, text};
use super::{
    CDF_POINTS, Chart, Markup, at, cdf_chart, chart_html, histogram_chart, interval, parameter_groups, slugify, steps,
    thousands,
};
use crate::aggregate::{
    CampaignAggregate, CountMetric, FailureGroup, FailureKind, MAX_SCENARIOS, ScenarioKey, ScenarioStats, SlowRun,
};
use crate::charts::Series;
use crate::distribution::Distribution;
use maud::html;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// Scenarios of one campaign that get charts in their section; the rest
/// have their figures in tables only, so a campaign of a thousand
/// scenarios does not draw two thousand charts.
pub(super) const SECTIONS_CHARTED: usize = 32;

/// One scenario's section (or the pooled overflow's).
pub(super) struct Section<'a> {
    /// Its HTML anchor, also the stem of its charts' files.
    pub(super) anchor: String,
    /// The scenario, or `None` for the pooled overflow.
    pub(super) key: Option<&'a ScenarioKey>,
    pub(super) stats: &'a ScenarioStats,
    /// Its parameters from the manifest, if one listed them.
    params: Option<&'a BTreeMap<String, String>>,
    /// Its charts in the report's chart list.
    pub(super) charts: Range<usize>,
}

/// The sections of `campaign`, in key order, the pooled overflow last;
/// `prefix` tells campaigns of a comparison apart in anchors.
pub(super) fn sections<'a>(campaign: &'a CampaignAggregate, prefix: &str) -> Vec<Section<'a>> {
    let mut out: Vec<Section<'a>> = campaign
        .scenarios()
        .enumerate()
        .map(|(index, (key, stats))| {
            let hash: String = key.scenario_hash.chars().take(8).collect();
            Section {
                anchor: format!("scenario-{prefix}{}-{}-{}", index + 1, slugify(&key.scenario), slugify(&hash)),
                key: Some(key),
                stats,
                params: campaign.scenario_parameters(&key.scenario_hash),
                charts: 0..0,
            }
        })
        .collect();
    if let Some(stats) = campaign.scenarios_overflow() {
        out.push(Section { anchor: format!("scenario-{prefix}other"), key: None, stats, params: None, charts: 0..0 });
    }
    out
}

impl Section<'_> {
    /// The heading's words: "mesh (aaaa000000000000)".
    fn name(&self) -> String {
        match self.key {
            Some(key) => format!("{} ({})", key.scenario, key.scenario_hash),
            None => format!("other scenarios (beyond the first {MAX_SCENARIOS}), pooled"),
        }
    }

    /// Its charts: convergence after the last heal and after the last
    /// write as CDFs, and a histogram of the first of them with values.
    pub(super) fn charts(&self) -> Vec<Chart> {
        let name = self.name();
        let series = vec![
            Series {
                name: "after the last heal".into(),
                points: steps(&self.stats.after_last_heal_ms().cdf(CDF_POINTS, 1.0)),
            },
            Series {
                name: "after the last write".into(),
                points: steps(&self.stats.after_last_write_ms().cdf(CDF_POINTS, 1.0)),
            },
        ];
        let cdf = cdf_chart(
            &format!("{}-cdf", self.anchor),
            &format!("Convergence CDF of {name}"),
            "ms after the event",
            "Fraction of the scenario's runs converged within x ms of the last heal and of the last write.",
            series,
            "after",
        );
        let (event, distribution) = match self.stats.after_last_heal_ms().count() {
            0 => ("write", self.stats.after_last_write_ms()),
            _ => ("heal", self.stats.after_last_heal_ms()),
        };
        let histogram = histogram_chart(
            format!("{}-histogram", self.anchor),
            format!("Convergence of {name} after the last {event}"),
            &format!("ms after the last {event}"),
            distribution,
            1.0,
        );
        vec![cdf, histogram]
    }
}

// ---- tables ----------------------------------------------------------------------

/// "612 runs: 560 pass, 30 fail, ...; 590 converged; sampled every 100 ms."
fn runs_line(stats: &ScenarioStats) -> String {
    let v = stats.verdicts();
    format!(
        "{} runs: {} pass, {} fail, {} timeout, {} harness error, {} nothing tested; {} converged; sampled every {}.",
        thousands(v.runs()),
        thousands(v.pass),
        thousands(v.fail),
        thousands(v.timeout),
        thousands(v.harness_error),
        thousands(v.nothing_tested),
        thousands(stats.converged()),
        interval(stats.sample_interval_ms())
    )
}

/// Convergence, bytes ratio and round trips: runs and percentiles.
pub(super) fn figures_table(stats: &ScenarioStats) -> Table {
    let mut table = Table::new(vec![
        text("figure"),
        figures("runs"),
        figures("p50"),
        figures("p95"),
        figures("p99"),
        figures("max"),
        figures("mean"),
    ]);
    for (name, distribution, scale, decimals) in [
        ("converged after the last heal (ms)", stats.after_last_heal_ms(), 1.0, 0),
        ("converged after the last write (ms)", stats.after_last_write_ms(), 1.0, 0),
        ("bytes sent / bytes missing", stats.bytes_ratio_thousandths(), super::RATIO_SCALE, 3),
        ("round trips", stats.round_trips(), 1.0, 0),
    ] {
        let mut row = vec![Cell::Text(name.into()), Cell::Number(thousands(distribution.count()))];
        row.extend(percentile_cells(distribution, scale, decimals));
        table.row(row);
    }
    table
}

/// p50, p95, p99, max and mean, or dashes when there is no value.
fn percentile_cells(distribution: &Distribution, scale: f64, decimals: usize) -> Vec<Cell> {
    let mut cells: Vec<Cell> =
        [5_000, 9_500, 9_900, 10_000].map(|p| Cell::Number(at(distribution, p, scale, decimals))).into();
    let mean = distribution.mean().map_or("-".into(), |mean| super::number(mean / scale, decimals.max(2)));
    cells.push(Cell::Number(mean));
    cells
}

/// Runs whose value is above zero: all but the zero bucket (exact).
fn runs_with_any(distribution: &Distribution) -> u64 {
    let zeros = distribution.buckets().first().filter(|(value, _)| *value == 0).map_or(0, |(_, runs)| *runs);
    distribution.count() - zeros
}

/// The counters shown per run (drops, crashes, rollbacks, ...).
pub(super) fn counts_table(stats: &ScenarioStats) -> Table {
    let mut table = Table::new(vec![
        text("per run"),
        figures("runs with any"),
        figures("p50"),
        figures("p95"),
        figures("p99"),
        figures("max"),
        figures("mean"),
        figures("total"),
    ]);
    for metric in CountMetric::ALL {
        let distribution = stats.count(metric);
        let mut row = vec![Cell::Text(metric.name().into()), Cell::Number(thousands(runs_with_any(distribution)))];
        row.extend(percentile_cells(distribution, 1.0, 0));
        row.push(Cell::Number(thousands(metric.of(stats.metrics()))));
        table.row(row);
    }
    table
}

fn fault_kinds_table(stats: &ScenarioStats) -> Option<Table> {
    let (kinds, other) = stats.fault_kinds();
    let runs = stats.verdicts().runs();
    let rows: Vec<(&str, u64)> = kinds.into_iter().chain(other.map(|runs| ("(other kinds)", runs))).collect();
    if rows.is_empty() {
        return None;
    }
    let mut table = Table::new(vec![text("fault kind"), figures("runs with one"), figures("share of runs")]);
    for (kind, with) in rows {
        let share = if runs == 0 { 0.0 } else { with as f64 * 100.0 / runs as f64 };
        table.row(vec![Cell::Text(kind.into()), Cell::Number(thousands(with)), Cell::Number(format!("{share:.1}%"))]);
    }
    Some(table)
}

fn coverage_table(stats: &ScenarioStats) -> Option<Table> {
    let (named, other) = stats.coverage();
    let rows: Vec<_> = named.into_iter().chain(other.map(|count| ("(other names)", count))).collect();
    if rows.is_empty() {
        return None;
    }
    let mut table =
        Table::new(vec![text("property"), figures("seeds reached"), figures("of runs"), figures("times in all")]);
    for (name, count) in rows {
        table.row(vec![
            Cell::Text(name.into()),
            Cell::Number(thousands(count.seeds_reached)),
            Cell::Number(thousands(stats.verdicts().runs())),
            Cell::Number(thousands(count.total)),
        ]);
    }
    Some(table)
}

/// Failure groups: one row per (verdict, checker, message pattern) with
/// its count, example seeds and their reproduce commands.
pub(super) fn groups_table(rows: &[(Option<&FailureKind>, &FailureGroup)]) -> Table {
    let mut table = Table::new(vec![
        text("verdict"),
        text("checker"),
        text("message (numbers and ids as #)"),
        figures("runs"),
        text("example seeds"),
        text("reproduce"),
    ]);
    for (kind, group) in rows {
        let examples = group.examples();
        table.row(vec![
            Cell::Text(kind.map_or("(other groups)", |k| k.verdict.name()).into()),
            Cell::Text(kind.map_or("-", |k| if k.checker.is_empty() { "-" } else { k.checker.as_str() }).into()),
            Cell::Text(kind.map_or("-", |k| k.message.as_str()).into()),
            Cell::Number(thousands(group.runs)),
            Cell::Text(examples.iter().map(|row| row.seed.to_string()).collect::<Vec<_>>().join(", ")),
            Cell::Codes(examples.iter().map(|row| row.reproduce.clone()).collect()),
        ]);
    }
    table
}

fn slowest_table(stats: &ScenarioStats) -> Option<Table> {
    let rows: Vec<(&str, &SlowRun)> = (stats.slowest_after_last_heal().iter().map(|run| ("the last heal", run)))
        .chain(stats.slowest_after_last_write().iter().map(|run| ("the last write", run)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut table = Table::new(vec![text("converged after"), figures("ms"), figures("seed"), text("reproduce")]);
    for (after, run) in rows {
        table.row(vec![
            Cell::Text(after.into()),
            Cell::Number(thousands(run.ms)),
            Cell::Number(run.seed.to_string()),
            Cell::Code(run.reproduce.clone()),
        ]);
    }
    Some(table)
}

fn failures_of(stats: &ScenarioStats) -> Vec<(Option<&FailureKind>, &FailureGroup)> {
    let (groups, other) = stats.failure_groups();
    groups.into_iter().map(|(kind, group)| (Some(kind), group)).chain(other.map(|group| (None, group))).collect()
}

/// "Faulty phase 10000 ms, settle bound ...; faults of seed 0: ...".
fn parameters_line(stats: &ScenarioStats) -> Option<String> {
    let p = stats.parameters()?;
    Some(format!(
        "Faulty phase {} ms, settle bound {} ms. Faults of seed {} (the smallest): {}.",
        p.duration_ms,
        p.settle_ms,
        p.seed,
        super::fault_summary(p)
    ))
}

// ---- pages -----------------------------------------------------------------------

const FAILURES_NOTE: &str = "Non-passing runs grouped by verdict, first checker and message; numbers and ids in the \
message are masked (#) so runs that failed alike at different times are one row.";

/// The section in Markdown; `charts` are its own, `png` whether they were
/// written as images beside the page.
pub(super) fn markdown(md: &mut String, section: &Section<'_>, charts: &[Chart], png: bool) {
    let stats = section.stats;
    let _ = writeln!(md, "\n### Scenario: {}\n", md_cell(&section.name()));
    if let Some(key) = section.key {
        let _ = write!(md, "File `{}`. ", md_cell(&key.scenario_path));
    }
    md.push_str(&runs_line(stats));
    md.push('\n');
    figures_table(stats).markdown(md);
    counts_table(stats).markdown(md);
    md.push_str("\n#### Parameters\n\n");
    md.push_str(&parameters_line(stats).unwrap_or_else(|| "Unknown (no run).".into()));
    md.push('\n');
    if let Some(table) = fault_kinds_table(stats) {
        table.markdown(md);
    }
    if let Some(params) = section.params {
        md.push('\n');
        for (group, values) in parameter_groups(params) {
            let _ = writeln!(md, "- {group}: {}", md_cell(&values));
        }
    }
    md.push_str("\n#### Coverage\n");
    match coverage_table(stats) {
        Some(table) => table.markdown(md),
        None => md.push_str("\nNo \"sometimes\" counters were recorded.\n"),
    }
    md.push_str("\n#### Failures\n");
    let failures = failures_of(stats);
    if failures.is_empty() {
        md.push_str("\nEvery run passed.\n");
    } else {
        let _ = writeln!(md, "\n{FAILURES_NOTE}");
        groups_table(&failures).markdown(md);
    }
    if let Some(table) = slowest_table(stats) {
        md.push_str("\n#### Slowest seeds\n");
        table.markdown(md);
    }
    markdown_charts(md, "#### Charts", charts, png);
}

/// A list of `charts` under `heading`, each as an image too when `png`.
pub(super) fn markdown_charts(md: &mut String, heading: &str, charts: &[Chart], png: bool) {
    if charts.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n{heading}\n");
    for chart in charts {
        if png {
            let _ = writeln!(md, "![{}]({}.png)\n", md_cell(&chart.title), chart.id);
        }
        let _ = writeln!(md, "- {} (in report.html; data `{}.csv`)", md_cell(&chart.title), chart.id);
    }
}

/// The section in HTML, with its charts drawn (`svgs` beside `charts`).
pub(super) fn html(section: &Section<'_>, charts: &[Chart], svgs: &[String]) -> Markup {
    let stats = section.stats;
    let failures = failures_of(stats);
    html! {
        section id=(section.anchor) {
            h3 { "Scenario: " @if let Some(key) = section.key { (key.scenario) " " code { (key.scenario_hash) } } @else { (section.name()) } }
            p { @if let Some(key) = section.key { "File " code { (key.scenario_path) } ". " } (runs_line(stats)) }
            (figures_table(stats).html())
            (counts_table(stats).html())
            h4 { "Parameters" }
            p { (parameters_line(stats).unwrap_or_else(|| "Unknown (no run).".into())) }
            @if let Some(table) = fault_kinds_table(stats) { (table.html()) }
            @if let Some(params) = section.params {
                ul.params { @for (group, values) in parameter_groups(params) { li { b { (group) } ": " (values) } } }
            }
            h4 { "Coverage" }
            @match coverage_table(stats) {
                Some(table) => { (table.html()) }
                None => { p { "No \"sometimes\" counters were recorded." } }
            }
            h4 { "Failures" }
            @if failures.is_empty() { p { "Every run passed." } } @else { p.note { (FAILURES_NOTE) } (groups_table(&failures).html()) }
            @if let Some(table) = slowest_table(stats) { h4 { "Slowest seeds" } (table.html()) }
            @for (chart, svg) in charts.iter().zip(svgs) { (chart_html(chart, svg)) }
        }
    }
}
