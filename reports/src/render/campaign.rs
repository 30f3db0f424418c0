//! The report of one or more campaigns, drawn from aggregates only: counts
//! by verdict, convergence after the last heal and after the last write,
//! per-scenario rows, failures grouped and listed with the commands that
//! reproduce them, the slowest runs, and charts from the HDR histograms.
//!
//! Invariant: the page is a pure function of the aggregates (and options):
//! every collection it walks is ordered, so rewriting it gives
//! byte-identical files.

use super::{Chart, Drawing, ReportData, ReportFiles, ReportOptions, chart_html, csv, finish, lines, summary_cards};
use crate::aggregate::{
    CampaignAggregate, CoverageCount, FailureGroup, FailureKind, FailureRow, MAX_SCENARIOS, ScenarioKey,
    ScenarioParameters, ScenarioStats, SlowRun, VerdictCounts,
};
use crate::charts::{Histogram, Series};
use crate::compare::{self, Change, parameter_diff};
use crate::distribution::{Distribution, PRECISION};
use crate::input::ReportError;
use crate::model::{Metrics, Verdict};
use crate::stats::Percentiles;
use maud::{Markup, html};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Points of a CDF chart per series.
const CDF_POINTS: usize = 400;
/// Bins of a histogram chart.
const HISTOGRAM_BINS: usize = 30;
/// Scenarios drawn in one per-scenario CDF (one colour each).
const SCENARIOS_CHARTED: usize = 8;
/// Bytes ratios are kept in thousandths.
const RATIO_SCALE: f64 = 1000.0;

/// The figures of a campaign in `report.json`.
#[derive(Serialize)]
pub(super) struct CampaignJson<'a> {
    name: &'a str,
    runs: u64,
    verdicts: VerdictCounts,
    seeds: Option<(u64, u64)>,
    versions: Vec<(&'a str, u64)>,
    precision: &'static str,
    #[serde(flatten)]
    overall: ScenarioJson<'a>,
    scenarios: Vec<ScenarioJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other_scenarios: Option<ScenarioJson<'a>>,
    failure_groups: Vec<GroupJson<'a>>,
    failures: &'a [FailureRow],
    inconclusive: &'a [FailureRow],
    slowest_after_last_heal: &'a [SlowRun],
    slowest_after_last_write: &'a [SlowRun],
}

#[derive(Serialize)]
struct ScenarioJson<'a> {
    #[serde(flatten)]
    key: Option<&'a ScenarioKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdicts: Option<VerdictCounts>,
    converged: u64,
    sample_interval_ms: Option<(u64, u64)>,
    convergence_after_last_heal_ms: Option<Percentiles>,
    convergence_after_last_write_ms: Option<Percentiles>,
    bytes_ratio: Option<Percentiles>,
    round_trips: Option<Percentiles>,
    metrics_total: Metrics,
    coverage: Vec<CoverageJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a ScenarioParameters>,
}

#[derive(Serialize)]
struct CoverageJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    count: CoverageCount,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    #[serde(flatten)]
    kind: Option<&'a FailureKind>,
    #[serde(flatten)]
    group: &'a FailureGroup,
}

fn scenario_json<'a>(key: Option<&'a ScenarioKey>, stats: &'a ScenarioStats, verdicts: bool) -> ScenarioJson<'a> {
    let (named, other) = stats.coverage();
    let mut coverage: Vec<CoverageJson<'a>> =
        named.into_iter().map(|(name, count)| CoverageJson { name, count }).collect();
    coverage.extend(other.map(|count| CoverageJson { name: "(other names)", count }));
    ScenarioJson {
        key,
        verdicts: verdicts.then(|| stats.verdicts()),
        converged: stats.converged(),
        sample_interval_ms: stats.sample_interval_ms(),
        convergence_after_last_heal_ms: stats.after_last_heal_ms().percentiles(1.0),
        convergence_after_last_write_ms: stats.after_last_write_ms().percentiles(1.0),
        bytes_ratio: stats.bytes_ratio_thousandths().percentiles(RATIO_SCALE),
        round_trips: stats.round_trips().percentiles(1.0),
        metrics_total: *stats.metrics(),
        coverage,
        parameters: stats.parameters(),
    }
}

fn campaign_json<'a>(campaign: &'a CampaignAggregate, overall: &'a ScenarioStats) -> CampaignJson<'a> {
    let (groups, other_groups) = campaign.failure_groups();
    let mut failure_groups: Vec<GroupJson<'a>> =
        groups.into_iter().map(|(kind, group)| GroupJson { kind: Some(kind), group }).collect();
    failure_groups.extend(other_groups.map(|group| GroupJson { kind: None, group }));
    CampaignJson {
        name: campaign.name(),
        runs: campaign.runs(),
        verdicts: campaign.verdicts(),
        seeds: campaign.seeds(),
        versions: campaign.versions().0,
        precision: PRECISION,
        overall: scenario_json(None, overall, false),
        scenarios: campaign.scenarios().map(|(key, stats)| scenario_json(Some(key), stats, true)).collect(),
        other_scenarios: campaign.scenarios_overflow().map(|stats| scenario_json(None, stats, true)),
        failure_groups,
        failures: campaign.failures(),
        inconclusive: campaign.inconclusive(),
        slowest_after_last_heal: campaign.slowest_after_last_heal(),
        slowest_after_last_write: campaign.slowest_after_last_write(),
    }
}

// ---- formatting ----------------------------------------------------------------

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A figure with `decimals` decimals; whole numbers get thousands separators.
fn number(value: f64, decimals: usize) -> String {
    if decimals == 0 { thousands(value.round() as u64) } else { format!("{value:.decimals$}") }
}

/// A percentile of a distribution (divided by `scale`, with `decimals`),
/// or "-" when it holds no value.
fn at(distribution: &Distribution, per_ten_thousand: u64, scale: f64, decimals: usize) -> String {
    distribution.percentile(per_ten_thousand).map_or("-".into(), |v| number(v as f64 / scale, decimals))
}

fn interval(sample_interval_ms: Option<(u64, u64)>) -> String {
    match sample_interval_ms {
        Some((low, high)) if low == high => format!("{low} ms"),
        Some((low, high)) => format!("{low} to {high} ms"),
        None => "-".into(),
    }
}

fn sampling_note(sample_interval_ms: Option<(u64, u64)>) -> String {
    format!(
        "Convergence is sampled every {} of simulated time, so every convergence time is rounded up to a multiple \
         of the sample interval. \"After the last heal\" counts from the moment the last fault healed (runs where \
         nothing healed have no value); \"after the last write\" counts from the last acknowledged write.",
        interval(sample_interval_ms)
    )
}

fn verdicts_line(v: &VerdictCounts) -> String {
    format!(
        "{} timeout, {} harness error, {} nothing tested",
        thousands(v.timeout),
        thousands(v.harness_error),
        thousands(v.nothing_tested)
    )
}

fn fault_summary(parameters: &ScenarioParameters) -> String {
    if parameters.faults.is_empty() {
        return "none (or chosen per seed by swarm)".into();
    }
    let mut text = parameters
        .faults
        .iter()
        .map(|f| {
            format!("{} {}..{} ms {:?}", f.kind, f.start_ms, f.end_ms.map_or("end".into(), |e| e.to_string()), f.nodes)
        })
        .collect::<Vec<_>>()
        .join("; ");
    if parameters.faults_total > parameters.faults.len() {
        let _ = write!(text, "; {} more", parameters.faults_total - parameters.faults.len());
    }
    text
}

/// "partition 12, crash 9 of 20 runs": how often each fault kind came up,
/// which for a swarm scenario (a mix drawn per seed) is its fault model.
fn fault_kinds_summary(stats: &ScenarioStats) -> String {
    let (kinds, other) = stats.fault_kinds();
    let mut parts: Vec<String> = kinds.iter().map(|(kind, runs)| format!("{kind} {runs}")).collect();
    if let Some(runs) = other {
        parts.push(format!("other kinds {runs}"));
    }
    if parts.is_empty() {
        return "none".to_owned();
    }
    format!("{} of {} runs", parts.join(", "), stats.verdicts().runs())
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn slugify(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn other_scenarios_label() -> String {
    format!("other scenarios (beyond the first {MAX_SCENARIOS} by name, hash and path), pooled")
}

// ---- charts ----------------------------------------------------------------------

/// A CDF's points as a step line starting at zero.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    let mut previous = 0.0;
    if let Some((first, _)) = points.first() {
        out.push((*first, 0.0));
    }
    for (x, fraction) in points {
        out.push((*x, previous));
        out.push((*x, *fraction));
        previous = *fraction;
    }
    out
}

fn cdf_chart(id: &str, title: &str, x_label: &str, caption: &str, series: Vec<Series>, first_column: &str) -> Chart {
    Chart {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        drawing: lines(title, x_label, "fraction of runs", &series, &[], None),
        csv: csv(
            &format!("{first_column},ms,fraction"),
            series.iter().flat_map(|s| s.points.iter().map(move |(x, y)| format!("{},{x},{y:.6}", s.name))),
        ),
    }
}

fn caption(p: Option<Percentiles>, unit: &str) -> String {
    match p {
        Some(p) => format!(
            "{} runs; p50 {:.2}, p95 {:.2}, p99 {:.2}, max {:.2} ({unit}); percentiles within 0.1%.",
            p.count, p.p50, p.p95, p.p99, p.max
        ),
        None => "No values.".into(),
    }
}

fn histogram_chart(id: String, title: String, unit: &str, distribution: &Distribution, scale: f64) -> Chart {
    let bins = distribution.bins(HISTOGRAM_BINS, scale);
    // The axis says how wide a bin is: never finer than the values' step.
    let x_label = match bins.first() {
        Some(bin) => format!("{unit} (bins {} wide)", crate::charts::tick(&(bin.high - bin.low))),
        None => unit.to_owned(),
    };
    Chart {
        id,
        caption: caption(distribution.percentiles(scale), unit),
        csv: csv("low,high,runs", bins.iter().map(|b| format!("{:.6},{:.6},{}", b.low, b.high, b.count))),
        drawing: Drawing::Histogram(Histogram { title: title.clone(), x_label, bins }),
        title,
    }
}

fn campaign_charts(campaigns: &[CampaignAggregate], overall: &[ScenarioStats]) -> Vec<Chart> {
    let mut charts = Vec::new();
    let series = |pick: fn(&ScenarioStats) -> &Distribution| -> Vec<Series> {
        campaigns
            .iter()
            .zip(overall)
            .map(|(c, all)| Series { name: c.name().to_owned(), points: steps(&pick(all).cdf(CDF_POINTS, 1.0)) })
            .collect()
    };
    charts.push(cdf_chart(
        "convergence-cdf",
        "Convergence after the last heal (CDF)",
        "ms after the last heal",
        "Fraction of runs converged within x ms of the last heal; further left converges faster.",
        series(ScenarioStats::after_last_heal_ms),
        "campaign",
    ));
    charts.push(cdf_chart(
        "convergence-after-write-cdf",
        "Convergence after the last write (CDF)",
        "ms after the last write",
        "Fraction of runs converged within x ms of the last acknowledged write.",
        series(ScenarioStats::after_last_write_ms),
        "campaign",
    ));
    for (index, (campaign, all)) in campaigns.iter().zip(overall).enumerate() {
        let many = campaigns.len() > 1;
        let suffix = if many { format!(" ({})", campaign.name()) } else { String::new() };
        // Numbered: two names that slug alike ("a/x.jsonl", "a-x.jsonl") keep their own files.
        let slug = if many { format!("-{}-{}", index + 1, slugify(campaign.name())) } else { String::new() };
        let scenarios: Vec<(&ScenarioKey, &ScenarioStats)> = campaign.scenarios().collect();
        if scenarios.len() > 1 {
            let shown: Vec<Series> = scenarios
                .iter()
                .take(SCENARIOS_CHARTED)
                .map(|(key, stats)| Series {
                    name: format!("{} ({})", key.scenario, key.scenario_hash),
                    points: steps(&stats.after_last_heal_ms().cdf(CDF_POINTS, 1.0)),
                })
                .collect();
            let more = scenarios.len().saturating_sub(SCENARIOS_CHARTED);
            let title = format!("Convergence after the last heal by scenario{suffix}");
            let note = if more > 0 {
                format!(" The first {SCENARIOS_CHARTED} scenarios; {more} more in the table.")
            } else {
                String::new()
            };
            charts.push(cdf_chart(
                &format!("scenario-cdf{slug}"),
                &title,
                "ms after the last heal",
                &format!("One line per scenario (name and hash).{note}"),
                shown,
                "scenario",
            ));
        }
        for (id, name, unit, distribution, scale) in [
            (
                "convergence-histogram",
                "Convergence after the last heal",
                "ms after the last heal",
                all.after_last_heal_ms(),
                1.0,
            ),
            (
                "convergence-after-write-histogram",
                "Convergence after the last write",
                "ms after the last write",
                all.after_last_write_ms(),
                1.0,
            ),
            (
                "bytes-ratio",
                "Bytes sent per byte of missing lanes",
                "ratio",
                all.bytes_ratio_thousandths(),
                RATIO_SCALE,
            ),
            ("round-trips", "Round trips per run", "round trips", all.round_trips(), 1.0),
        ] {
            charts.push(histogram_chart(format!("{id}{slug}"), format!("{name}{suffix}"), unit, distribution, scale));
        }
    }
    charts
}

// ---- HTML ------------------------------------------------------------------------

fn figures_table(all: &ScenarioStats) -> Markup {
    let row = |name: &str, p: Option<Percentiles>, decimals: usize| {
        html! {
            tr { td { (name) }
                @if let Some(p) = p {
                    td.n { (thousands(p.count as u64)) }
                    @for value in [p.p50, p.p95, p.p99, p.max] { td.n { (number(value, decimals)) } }
                    td.n { (format!("{:.decimals$}", p.mean, decimals = decimals.max(1))) }
                } @else { td.n { "0" } td colspan="5" { "-" } }
            }
        }
    };
    html! {
        table {
            tr { th { "figure" } th.n { "runs" } th.n { "p50" } th.n { "p95" } th.n { "p99" } th.n { "max" } th.n { "mean" } }
            (row("converged after the last heal (ms)", all.after_last_heal_ms().percentiles(1.0), 0))
            (row("converged after the last write (ms)", all.after_last_write_ms().percentiles(1.0), 0))
            (row("bytes sent / bytes missing", all.bytes_ratio_thousandths().percentiles(RATIO_SCALE), 3))
            (row("round trips", all.round_trips().percentiles(1.0), 0))
        }
    }
}

fn verdict_row(label: Markup, stats: &ScenarioStats) -> Markup {
    let v = stats.verdicts();
    html! {
        tr { (label)
            td.n { (thousands(v.runs())) } td.n { (thousands(v.pass)) } td.n.fail[v.fail > 0] { (thousands(v.fail)) }
            td.n { (thousands(v.timeout)) } td.n { (thousands(v.harness_error)) } td.n { (thousands(v.nothing_tested)) }
            td.n { (thousands(stats.converged())) } td.n { (interval(stats.sample_interval_ms())) }
        }
    }
}

fn convergence_row(label: Markup, stats: &ScenarioStats) -> Markup {
    let (heal, write) = (stats.after_last_heal_ms(), stats.after_last_write_ms());
    html! {
        tr { (label)
            @for (distribution, p) in [(heal, 5_000), (heal, 9_500), (heal, 9_900), (heal, 10_000), (write, 5_000), (write, 9_500), (write, 9_900), (write, 10_000)] {
                td.n { (at(distribution, p, 1.0, 0)) }
            }
        }
    }
}

fn key_cells(key: &ScenarioKey) -> Markup {
    html! { td { (key.scenario) } td { code { (key.scenario_path) } } td { code { (key.scenario_hash) } } }
}

fn other_cells() -> Markup {
    html! { td colspan="3" { (other_scenarios_label()) } }
}

fn scenarios_html(campaign: &CampaignAggregate) -> Markup {
    let overflow = campaign.scenarios_overflow();
    html! {
        h3 { "Scenarios (" (campaign.scenarios().count()) ")" }
        p.note { "One row per scenario name, file and content hash: two files with one name, or one name with two contents, are different rows." }
        div.scroll { table {
            tr { th { "scenario" } th { "file" } th { "hash" } th.n { "runs" } th.n { "pass" } th.n { "fail" } th.n { "timeout" }
                 th.n { "harness error" } th.n { "nothing tested" } th.n { "converged" } th.n { "sampled every" } }
            @for (key, stats) in campaign.scenarios() { (verdict_row(key_cells(key), stats)) }
            @if let Some(stats) = overflow { (verdict_row(other_cells(), stats)) }
        } }
        h3 { "Convergence per scenario (ms)" }
        div.scroll { table {
            tr { th rowspan="2" { "scenario" } th rowspan="2" { "file" } th rowspan="2" { "hash" }
                 th colspan="4" { "after the last heal" } th colspan="4" { "after the last write" } }
            tr { @for _ in 0..2 { th.n { "p50" } th.n { "p95" } th.n { "p99" } th.n { "max" } } }
            @for (key, stats) in campaign.scenarios() { (convergence_row(key_cells(key), stats)) }
            @if let Some(stats) = overflow { (convergence_row(other_cells(), stats)) }
        } }
        h3 { "Scenario parameters" }
        div.scroll { table {
            tr { th { "scenario" } th { "file" } th { "hash" } th { "faulty phase" } th { "settle bound" } th { "faults (smallest seed)" } th { "runs with each fault kind" } }
            @for (key, stats) in campaign.scenarios() {
                @if let Some(p) = stats.parameters() {
                    tr { (key_cells(key)) td.n { (p.duration_ms) " ms" } td.n { (p.settle_ms) " ms" } td { "seed " (p.seed) ": " (fault_summary(p)) } td { (fault_kinds_summary(stats)) } }
                }
            }
        } }
        h3 { "Totals per scenario" }
        div.scroll { table {
            tr { th { "scenario" } th { "hash" } @for (name, _) in metric_columns(&Metrics::default()) { th.n { (name) } } }
            @for (key, stats) in campaign.scenarios() { (totals_row(&key.scenario, &key.scenario_hash, stats)) }
            @if let Some(stats) = overflow { (totals_row("other scenarios", "-", stats)) }
        } }
        h3 { "Coverage per scenario" }
        p.note { "Seeds in which each \"sometimes\" property was reached (its counter above zero), of the scenario's runs." }
        div.scroll { table {
            tr { th { "scenario" } th { "hash" } th { "property" } th.n { "seeds reached" } th.n { "runs" } th.n { "times in all" } }
            @for (key, stats) in campaign.scenarios() { (coverage_rows(&key.scenario, &key.scenario_hash, stats)) }
            @if let Some(stats) = overflow { (coverage_rows("other scenarios", "-", stats)) }
        } }
        @if campaign.scenarios().any(|(key, _)| campaign.scenario_parameters(&key.scenario_hash).is_some()) {
            h3 { "Scenario parameters" }
            @for (key, _) in campaign.scenarios() {
                @if let Some(params) = campaign.scenario_parameters(&key.scenario_hash) {
                    h4 { (key.scenario) " " code { (key.scenario_hash) } }
                    ul.params { @for (group, values) in parameter_groups(params) { li { b { (group) } ": " (values) } } }
                }
            }
        }
    }
}

/// A scenario's parameters by section (`cluster`, `network.latency`,
/// `faults.1`, top-level keys under `scenario`): (section, "key = value, ...").
fn parameter_groups(params: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in params {
        let (group, name) = key.rsplit_once('.').unwrap_or(("scenario", key.as_str()));
        let item = format!("{name} = {value}");
        match groups.iter_mut().find(|(known, _)| known == group) {
            Some((_, items)) => items.push(item),
            None => groups.push((group.to_owned(), vec![item])),
        }
    }
    // The scenario's own keys first, then by name; faults in their order
    // (faults.2 before faults.10).
    groups.sort_by_key(|(group, _)| {
        if group == "scenario" {
            return (String::new(), 0, String::new());
        }
        let (head, index) =
            group.rsplit_once('.').map_or((group.as_str(), 0), |(head, tail)| (head, tail.parse::<u64>().unwrap_or(0)));
        (head.to_owned(), index, group.clone())
    });
    groups.into_iter().map(|(group, items)| (group, items.join(", "))).collect()
}

fn metric_columns(m: &Metrics) -> [(&'static str, u64); 10] {
    [
        ("lanes", m.lanes),
        ("messages sent", m.messages_sent),
        ("dropped", m.messages_dropped),
        ("crashes", m.crashes),
        ("rollbacks", m.rollbacks),
        ("conflicts", m.conflicts),
        ("sessions abandoned", m.sessions_abandoned),
        ("snapshots installed", m.snapshots_installed),
        ("snapshots rejected", m.snapshots_rejected),
        ("unsynced bytes lost", m.unsynced_bytes_lost),
    ]
}

fn coverage_rows(scenario: &str, hash: &str, stats: &ScenarioStats) -> Markup {
    let (named, other) = stats.coverage();
    let rows: Vec<(&str, CoverageCount)> =
        named.into_iter().chain(other.map(|count| ("(other names)", count))).collect();
    html! {
        @for (name, count) in rows {
            tr { td { (scenario) } td { code { (hash) } } td { (name) } td.n { (thousands(count.seeds_reached)) }
                 td.n { (thousands(stats.verdicts().runs())) } td.n { (thousands(count.total)) } }
        }
    }
}

fn totals_row(scenario: &str, hash: &str, stats: &ScenarioStats) -> Markup {
    html! {
        tr { td { (scenario) } td { code { (hash) } }
             @for (_, value) in metric_columns(stats.metrics()) { td.n { (thousands(value)) } } }
    }
}

fn group_rows(campaign: &CampaignAggregate, engine: bool) -> Vec<(Option<&FailureKind>, &FailureGroup)> {
    let (groups, other) = campaign.failure_groups();
    let mut rows: Vec<(Option<&FailureKind>, &FailureGroup)> = groups
        .into_iter()
        .filter(|(kind, _)| (kind.verdict == Verdict::Fail) == engine)
        .map(|(kind, group)| (Some(kind), group))
        .collect();
    // The pooled rest of the groups is listed with engine failures.
    if engine && let Some(group) = other {
        rows.push((None, group));
    }
    rows
}

fn failure_list_html(rows: &[FailureRow], total: u64, what: &str) -> Markup {
    html! {
        p.note { "The first " (rows.len()) " of " (thousands(total)) " " (what) " by seed and scenario file"
            @if total > rows.len() as u64 { "; the rest are in the results file" } "." }
        div.scroll { table {
            tr { th.n { "seed" } th { "scenario" } th { "verdict" } th { "checker" } th { "violation or note" } th { "reproduce" } }
            @for row in rows {
                tr { td.n { (row.seed) } td { (row.scenario) " " code { (row.scenario_hash) } } td { (row.verdict.name()) }
                     td { (row.checker.as_deref().unwrap_or("-")) } td { (row.detail) } td { code { (row.reproduce) } } }
            }
        } }
    }
}

fn groups_html(rows: &[(Option<&FailureKind>, &FailureGroup)]) -> Markup {
    html! {
        div.scroll { table {
            tr { th { "verdict" } th { "checker" } th.n { "runs" } th.n { "first seed" } th { "first violation or note" } th { "reproduce the first" } }
            @for (kind, group) in rows {
                tr {
                    td { (kind.map_or("(other groups)", |k| k.verdict.name())) }
                    td { (kind.map_or("-", |k| if k.checker.is_empty() { "-" } else { k.checker.as_str() })) }
                    td.n { (thousands(group.runs)) }
                    @if let Some(first) = &group.first {
                        td.n { (first.seed) } td { (first.detail) } td { code { (first.reproduce) } }
                    } @else { td colspan="3" { "-" } }
                }
            }
        } }
    }
}

fn failures_html(campaign: &CampaignAggregate) -> Markup {
    let v = campaign.verdicts();
    html! {
        @if v.fail > 0 {
            h3.fail { "Engine failures (" (thousands(v.fail)) ")" }
            p.note { "Runs where an invariant of the engine was violated, grouped by the first violation's checker." }
            (groups_html(&group_rows(campaign, true)))
            (failure_list_html(campaign.failures(), v.fail, "engine failures"))
        } @else {
            h3 { "Engine failures (0)" }
        }
        @if v.inconclusive() > 0 {
            h3.fail { "Inconclusive runs (" (thousands(v.inconclusive())) "): " (verdicts_line(&v)) }
            p.note { "Runs that say nothing about the engine: they timed out, the harness itself failed, or nothing was tested. None of them passes." }
            (groups_html(&group_rows(campaign, false)))
            (failure_list_html(campaign.inconclusive(), v.inconclusive(), "inconclusive runs"))
        }
    }
}

fn slowest_html(title: &str, rows: &[SlowRun]) -> Markup {
    html! {
        @if !rows.is_empty() {
            h3 { (title) }
            table {
                tr { th.n { "ms" } th.n { "seed" } th { "scenario" } th { "reproduce" } }
                @for row in rows { tr { td.n { (row.ms) } td.n { (row.seed) } td { (row.scenario) } td { code { (row.reproduce) } } } }
            }
        }
    }
}

fn campaign_html(campaign: &CampaignAggregate, all: &ScenarioStats) -> Markup {
    let v = campaign.verdicts();
    let p50_p99 = |d: &Distribution| match d.count() {
        0 => "-".to_owned(),
        _ => format!("{} / {} ms", at(d, 5_000, 1.0, 0), at(d, 9_900, 1.0, 0)),
    };
    let (versions, other_versions) = campaign.versions();
    html! {
        h2 { (campaign.name()) }
        (summary_cards(&[
            ("runs", thousands(campaign.runs())),
            ("passed", thousands(v.pass)),
            ("engine failures", thousands(v.fail)),
            ("inconclusive", thousands(v.inconclusive())),
            ("seeds", campaign.seeds().map_or("-".into(), |(low, high)| format!("{low}..={high}"))),
            ("converged after the last heal, p50 / p99", p50_p99(all.after_last_heal_ms())),
            ("converged after the last write, p50 / p99", p50_p99(all.after_last_write_ms())),
        ]))
        (figures_table(all))
        p.note { (sampling_note(all.sample_interval_ms())) }
        p.note { (PRECISION) }
        p { "scx " @for (index, (version, runs)) in versions.iter().enumerate() { @if index > 0 { ", " } (version) " (" (thousands(*runs)) " runs)" }
            @if other_versions > 0 { ", other versions (" (thousands(other_versions)) " runs)" } }
        (invariants_html(campaign))
        (scenarios_html(campaign))
        (failures_html(campaign))
        (slowest_html("Slowest to converge after the last heal", campaign.slowest_after_last_heal()))
        (slowest_html("Slowest to converge after the last write", campaign.slowest_after_last_write()))
    }
}

// ---- Markdown ----------------------------------------------------------------------

fn markdown_overview(md: &mut String, campaigns: &[CampaignAggregate], overall: &[ScenarioStats]) {
    md.push_str(
        "| campaign | runs | pass | fail | timeout | harness error | nothing tested | seeds | after the last heal p50 | p99 | max | after the last write p50 | p99 | bytes ratio p50 | round trips p50 |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (campaign, all) in campaigns.iter().zip(overall) {
        let v = campaign.verdicts();
        let (heal, write) = (all.after_last_heal_ms(), all.after_last_write_ms());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md_cell(campaign.name()),
            v.runs(),
            v.pass,
            v.fail,
            v.timeout,
            v.harness_error,
            v.nothing_tested,
            campaign.seeds().map_or("-".into(), |(low, high)| format!("{low}..={high}")),
            at(heal, 5_000, 1.0, 0),
            at(heal, 9_900, 1.0, 0),
            at(heal, 10_000, 1.0, 0),
            at(write, 5_000, 1.0, 0),
            at(write, 9_900, 1.0, 0),
            at(all.bytes_ratio_thousandths(), 5_000, RATIO_SCALE, 3),
            at(all.round_trips(), 5_000, 1.0, 0),
        );
    }
    let intervals =
        overall.iter().filter_map(ScenarioStats::sample_interval_ms).reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
    let _ = writeln!(md, "\nConvergence times are in ms. {}\n\n{PRECISION}", sampling_note(intervals));
}

fn markdown_scenarios(md: &mut String, campaign: &CampaignAggregate) {
    md.push_str(
        "\n### Scenarios\n\n| scenario | file | hash | runs | pass | fail | timeout | harness error | nothing tested | converged | after the last heal p50 / p99 / max | after the last write p50 / p99 / max | sampled every |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let row = |md: &mut String, label: String, stats: &ScenarioStats| {
        let v = stats.verdicts();
        let (heal, write) = (stats.after_last_heal_ms(), stats.after_last_write_ms());
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} / {} | {} |",
            v.runs(),
            v.pass,
            v.fail,
            v.timeout,
            v.harness_error,
            v.nothing_tested,
            stats.converged(),
            at(heal, 5_000, 1.0, 0),
            at(heal, 9_900, 1.0, 0),
            at(heal, 10_000, 1.0, 0),
            at(write, 5_000, 1.0, 0),
            at(write, 9_900, 1.0, 0),
            at(write, 10_000, 1.0, 0),
            interval(stats.sample_interval_ms()),
        );
    };
    for (key, stats) in campaign.scenarios() {
        let label = format!(
            "{} | `{}` | `{}`",
            md_cell(&key.scenario),
            md_cell(&key.scenario_path),
            md_cell(&key.scenario_hash)
        );
        row(md, label, stats);
    }
    if let Some(stats) = campaign.scenarios_overflow() {
        row(md, format!("{} | - | -", other_scenarios_label()), stats);
    }
    md.push_str("\n| scenario | file | faulty phase | settle bound | faults (smallest seed) | runs with each fault kind |\n| --- | --- | ---: | ---: | --- | --- |\n");
    for (key, stats) in campaign.scenarios() {
        if let Some(p) = stats.parameters() {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} ms | {} ms | seed {}: {} | {} |",
                md_cell(&key.scenario),
                md_cell(&key.scenario_path),
                p.duration_ms,
                p.settle_ms,
                p.seed,
                md_cell(&fault_summary(p)),
                md_cell(&fault_kinds_summary(stats))
            );
        }
    }
    let with_parameters: Vec<(&ScenarioKey, &std::collections::BTreeMap<String, String>)> = (campaign.scenarios())
        .filter_map(|(key, _)| campaign.scenario_parameters(&key.scenario_hash).map(|params| (key, params)))
        .collect();
    if !with_parameters.is_empty() {
        md.push_str(
            "
#### Scenario parameters
",
        );
        for (key, params) in with_parameters {
            let _ = writeln!(
                md,
                "
**{}** (`{}`)
",
                md_cell(&key.scenario),
                md_cell(&key.scenario_hash)
            );
            for (group, values) in parameter_groups(params) {
                let _ = writeln!(md, "- {group}: {}", md_cell(&values));
            }
        }
    }
}

const INVARIANTS_NOTE: &str = "A run passes when every \"always\" invariant held at every step and every \"eventually\" one held by the end; \"sometimes\" properties are judged over the whole campaign.";

fn markdown_invariants(md: &mut String, campaign: &CampaignAggregate) {
    md.push_str("\n### What a pass means\n\n");
    if campaign.invariants().is_empty() {
        md.push_str("Unknown: the results have no campaign manifest naming the invariants checked.\n");
        return;
    }
    let _ = writeln!(md, "{INVARIANTS_NOTE}\n\n| invariant | kind | property |\n| --- | --- | --- |");
    for invariant in campaign.invariants() {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} |",
            md_cell(&invariant.name),
            md_cell(&invariant.kind),
            md_cell(&invariant.property)
        );
    }
}

fn invariants_html(campaign: &CampaignAggregate) -> Markup {
    html! {
        h3 { "What a pass means" }
        @if campaign.invariants().is_empty() {
            p { "Unknown: the results have no campaign manifest naming the invariants checked." }
        } @else {
            p.note { (INVARIANTS_NOTE) }
            table {
                tr { th { "invariant" } th { "kind" } th { "property" } }
                @for invariant in campaign.invariants() {
                    tr { td { code { (invariant.name) } } td { (invariant.kind) } td { (invariant.property) } }
                }
            }
        }
    }
}

fn markdown_failures(md: &mut String, campaign: &CampaignAggregate) {
    let v = campaign.verdicts();
    let list = |md: &mut String, rows: &[FailureRow], total: u64, what: &str| {
        let _ = writeln!(md, "\nThe first {} of {total} {what} by seed and scenario file:\n", rows.len());
        md.push_str("| seed | scenario | verdict | checker | violation or note | reproduce |\n| ---: | --- | --- | --- | --- | --- |\n");
        for row in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | `{}` |",
                row.seed,
                md_cell(&row.scenario),
                row.verdict.name(),
                row.checker.as_deref().unwrap_or("-"),
                md_cell(&row.detail),
                row.reproduce
            );
        }
    };
    let groups = |md: &mut String, rows: Vec<(Option<&FailureKind>, &FailureGroup)>| {
        md.push_str("\n| verdict | checker | runs | first seed | first violation or note | reproduce the first |\n| --- | --- | ---: | ---: | --- | --- |\n");
        for (kind, group) in rows {
            let (seed, detail, reproduce) =
                group.first.as_ref().map_or(("-".into(), String::new(), String::new()), |f| {
                    (f.seed.to_string(), md_cell(&f.detail), format!("`{}`", f.reproduce))
                });
            let _ = writeln!(
                md,
                "| {} | {} | {} | {seed} | {detail} | {reproduce} |",
                kind.map_or("(other groups)", |k| k.verdict.name()),
                kind.map_or("-", |k| if k.checker.is_empty() { "-" } else { k.checker.as_str() }),
                group.runs,
            );
        }
    };
    if v.fail == 0 {
        md.push_str("\nNo engine failures.\n");
    } else {
        let _ = writeln!(md, "\n### Engine failures ({})", v.fail);
        groups(md, group_rows(campaign, true));
        list(md, campaign.failures(), v.fail, "engine failures");
    }
    if v.inconclusive() > 0 {
        let _ = writeln!(md, "\n### Inconclusive runs ({}): {}", v.inconclusive(), verdicts_line(&v));
        groups(md, group_rows(campaign, false));
        list(md, campaign.inconclusive(), v.inconclusive(), "inconclusive runs");
    }
    for (title, rows) in [
        ("Slowest to converge after the last heal", campaign.slowest_after_last_heal()),
        ("Slowest to converge after the last write", campaign.slowest_after_last_write()),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n### {title}\n\n| ms | seed | scenario | reproduce |\n| ---: | ---: | --- | --- |");
        for row in rows {
            let _ = writeln!(md, "| {} | {} | {} | `{}` |", row.ms, row.seed, md_cell(&row.scenario), row.reproduce);
        }
    }
}

fn campaign_markdown(title: &str, campaigns: &[CampaignAggregate], overall: &[ScenarioStats]) -> String {
    let mut md = format!("# {title}\n\n");
    markdown_overview(&mut md, campaigns, overall);
    for campaign in campaigns {
        let (versions, other_versions) = campaign.versions();
        let mut versions: Vec<String> = versions.iter().map(|(v, runs)| format!("{v} ({runs} runs)")).collect();
        if other_versions > 0 {
            versions.push(format!("other versions ({other_versions} runs)"));
        }
        let _ = writeln!(md, "\n## {}\n\nscx {}.", md_cell(campaign.name()), versions.join(", "));
        markdown_invariants(&mut md, campaign);
        markdown_scenarios(&mut md, campaign);
        markdown_failures(&mut md, campaign);
    }
    changes_markdown(&mut md, campaigns);
    md
}

// ---- changes between campaigns ---------------------------------------------------

/// One scenario of a variant campaign set against the base campaign's
/// scenario of the same name.
struct ScenarioChange<'a> {
    scenario: &'a str,
    /// What differs in the parameters.
    differs: Differs<'a>,
    /// (metric, change), for the metrics both sides can judge.
    metrics: Vec<(&'static str, Change)>,
    /// Metrics one side has too few values of.
    unjudged: Vec<&'static str>,
}

/// What differs between two scenarios of one name.
enum Differs<'a> {
    /// The same content hash.
    Nothing(&'a str),
    /// (key, base value, variant value) per differing key.
    Parameters(Vec<(&'a str, Option<&'a str>, Option<&'a str>)>),
    /// A side's parameters are unknown (no manifest): the two hashes.
    Unknown(&'a str, &'a str),
}

impl Differs<'_> {
    /// In words: keys and hashes through `code`, values through `plain`
    /// (Markdown backticks and nothing, or HTML `code` and escaping).
    fn words(&self, code: impl Fn(&str) -> String, plain: impl Fn(&str) -> String) -> String {
        let value = |value: Option<&str>| plain(value.unwrap_or("(not set)"));
        match self {
            Self::Nothing(hash) => format!("none: the same scenario content (hash {})", code(hash)),
            Self::Parameters(keys) if keys.is_empty() => "none (the contents differ only in form)".to_owned(),
            Self::Parameters(keys) => (keys.iter())
                .map(|(key, a, b)| format!("{}: {} → {}", code(key), value(*a), value(*b)))
                .collect::<Vec<_>>()
                .join("; "),
            Self::Unknown(a, b) => {
                format!(
                    "unknown (a results file has no campaign manifest); the contents differ ({} → {})",
                    code(a),
                    code(b)
                )
            }
        }
    }
}

/// The metrics a comparison judges: (name, the distribution, its scale).
fn compared_metrics(stats: &ScenarioStats) -> [(&'static str, &Distribution, f64); 4] {
    [
        ("converged after the last heal (ms)", stats.after_last_heal_ms(), 1.0),
        ("converged after the last write (ms)", stats.after_last_write_ms(), 1.0),
        ("bytes sent per byte missing", stats.bytes_ratio_thousandths(), RATIO_SCALE),
        ("round trips", stats.round_trips(), 1.0),
    ]
}

/// Every scenario of `variant` that `base` also ran (by name), compared.
fn scenario_changes<'a>(base: &'a CampaignAggregate, variant: &'a CampaignAggregate) -> Vec<ScenarioChange<'a>> {
    let mut changes = Vec::new();
    for (key, stats) in variant.scenarios() {
        let Some((base_key, base_stats)) = base.scenarios().find(|(base_key, _)| base_key.scenario == key.scenario)
        else {
            continue;
        };
        let differs = if base_key.scenario_hash == key.scenario_hash {
            Differs::Nothing(&key.scenario_hash)
        } else {
            match (base.scenario_parameters(&base_key.scenario_hash), variant.scenario_parameters(&key.scenario_hash)) {
                (Some(a), Some(b)) => Differs::Parameters(parameter_diff(a, b)),
                _ => Differs::Unknown(&base_key.scenario_hash, &key.scenario_hash),
            }
        };
        let mut metrics = Vec::new();
        let mut unjudged = Vec::new();
        for ((name, a, _), (_, b, _)) in compared_metrics(base_stats).into_iter().zip(compared_metrics(stats)) {
            match compare::change(a, b) {
                Some(change) => metrics.push((name, change)),
                None => unjudged.push(name),
            }
        }
        changes.push(ScenarioChange { scenario: &key.scenario, differs, metrics, unjudged });
    }
    changes
}

fn percent(value: f64) -> String {
    format!("{:+.1}%", value * 100.0)
}

fn scaled_mean(name: &str, value: f64) -> String {
    if name.starts_with("bytes") { format!("{:.3}", value / RATIO_SCALE) } else { number(value, 0) }
}

const CHANGES_NOTE: &str = "Each change is of the mean, variant against base, with a bootstrap interval (1,000 seeded resamples of each side's runs) holding the central 95% of the resampled changes: \"improved\" or \"regressed\" when the whole interval is below or above zero (significance 0.05), \"no change\" when it holds zero. Lower is better for every metric. Scenarios are matched by name.";

fn changes_markdown(md: &mut String, campaigns: &[CampaignAggregate]) {
    let Some((base, variants)) = campaigns.split_first() else { return };
    for variant in variants {
        let _ = writeln!(
            md,
            "\n## Changes: {} against {}\n\n{CHANGES_NOTE}",
            md_cell(variant.name()),
            md_cell(base.name())
        );
        let changes = scenario_changes(base, variant);
        if changes.is_empty() {
            md.push_str("\nNo scenario of this campaign is in the base campaign.\n");
        }
        for change in changes {
            let _ = writeln!(
                md,
                "\n### {}\n\nParameters that differ: {}.\n",
                md_cell(change.scenario),
                md_cell(&change.differs.words(|text| format!("`{text}`"), str::to_owned))
            );
            md.push_str("| metric | base mean | variant mean | change | 95% interval | verdict |\n| --- | ---: | ---: | ---: | --- | --- |\n");
            for (name, c) in &change.metrics {
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} .. {} | {} |",
                    scaled_mean(name, c.base_mean),
                    scaled_mean(name, c.variant_mean),
                    percent(c.change),
                    percent(c.low),
                    percent(c.high),
                    c.verdict.name()
                );
            }
            if !change.unjudged.is_empty() {
                let _ = writeln!(
                    md,
                    "\nNot judged (fewer than {} values on a side): {}.",
                    compare::MIN_RUNS,
                    change.unjudged.join(", ")
                );
            }
        }
    }
}

fn changes_html(campaigns: &[CampaignAggregate]) -> Markup {
    let Some((base, variants)) = campaigns.split_first() else { return html! {} };
    html! {
        @for variant in variants {
            h2 { "Changes: " (variant.name()) " against " (base.name()) }
            p.note { (CHANGES_NOTE) }
            @let changes = scenario_changes(base, variant);
            @if changes.is_empty() { p { "No scenario of this campaign is in the base campaign." } }
            @for change in &changes {
                h3 { (change.scenario) }
                p { "Parameters that differ: " (maud::PreEscaped(change.differs.words(
                    |text| html! { code { (text) } }.into_string(),
                    |text| html! { (text) }.into_string(),
                ))) "." }
                table {
                    tr { th { "metric" } th.n { "base mean" } th.n { "variant mean" } th.n { "change" } th { "95% interval" } th { "verdict" } }
                    @for (name, c) in &change.metrics {
                        tr {
                            td { (name) } td.n { (scaled_mean(name, c.base_mean)) } td.n { (scaled_mean(name, c.variant_mean)) }
                            td.n { (percent(c.change)) } td { (percent(c.low)) " .. " (percent(c.high)) }
                            td class=(format!("verdict {}", c.verdict.name().replace(' ', "-"))) { (c.verdict.name()) }
                        }
                    }
                }
                @if !change.unjudged.is_empty() {
                    p.note { "Not judged (fewer than " (compare::MIN_RUNS) " values on a side): " (change.unjudged.join(", ")) "." }
                }
            }
        }
    }
}

/// Scenario names shown in a campaign's title before "and N more".
const TITLE_SCENARIOS: usize = 4;

/// A campaign by what it ran: its scenarios' names (each once, in order),
/// and its seeds.
fn scenario_set(campaign: &CampaignAggregate) -> String {
    let mut names: Vec<&str> = campaign.scenarios().map(|(key, _)| key.scenario.as_str()).collect();
    names.dedup();
    let more = names.len().saturating_sub(TITLE_SCENARIOS) + usize::from(campaign.scenarios_overflow().is_some());
    let mut title = names.into_iter().take(TITLE_SCENARIOS).collect::<Vec<_>>().join(", ");
    if more > 0 {
        let _ = write!(title, " and {more} more");
    }
    if let Some((low, high)) = campaign.seeds() {
        let _ = write!(title, ", seeds {low}..={high}");
    }
    title
}

// ---- the report ------------------------------------------------------------------

/// Writes the report of one or more campaigns into `out_dir`; two or more
/// are compared (their convergence CDFs overlaid). Only the aggregates are
/// read, so the report's memory does not grow with the number of runs.
pub fn write_campaign_report(
    campaigns: &[CampaignAggregate],
    out_dir: &Path,
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    let title = options.title.clone().unwrap_or_else(|| match campaigns {
        [one] => format!("Campaign: {}", scenario_set(one)),
        many => format!("Comparison of {} campaigns", many.len()),
    });
    let overall: Vec<ScenarioStats> = campaigns.iter().map(CampaignAggregate::overall_stats).collect();
    let charts = campaign_charts(campaigns, &overall);
    let markdown = campaign_markdown(&title, campaigns, &overall);
    let svgs = charts.iter().map(Chart::svg).collect::<Result<Vec<_>, _>>()?;
    let body = html! {
        @for (campaign, all) in campaigns.iter().zip(&overall) { (campaign_html(campaign, all)) }
        (changes_html(campaigns))
        h2 { "Charts" }
        @for (chart, svg) in charts.iter().zip(&svgs) { (chart_html(chart, svg)) }
    };
    let data = ReportData {
        kind: if campaigns.len() > 1 { "comparison" } else { "campaign" },
        title: title.clone(),
        charts: charts.iter().map(|c| c.title.as_str()).collect(),
        run: None,
        campaigns: campaigns.iter().zip(&overall).map(|(c, all)| campaign_json(c, all)).collect(),
    };
    finish(out_dir, &title, body, &markdown, &data, &charts, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_differences_escape_values_in_the_page() {
        let differs = Differs::Parameters(vec![("description", Some("<b>old</b>"), None)]);
        let html = differs.words(|text| html! { code { (text) } }.into_string(), |text| html! { (text) }.into_string());
        assert_eq!(html, "<code>description</code>: &lt;b&gt;old&lt;/b&gt; → (not set)");
        assert_eq!(differs.words(|text| format!("`{text}`"), str::to_owned), "`description`: <b>old</b> → (not set)");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn steps_start_at_zero_and_rise() {
        assert_eq!(steps(&[(1.0, 0.5), (2.0, 1.0)]), [(1.0, 0.0), (1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]);
        assert!(steps(&[]).is_empty());
    }
}
