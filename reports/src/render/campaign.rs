//! The report of one or more campaigns, drawn from aggregates only: counts
//! by verdict, convergence after the last heal and after the last write,
//! the other counters per run, a summary row and a section per scenario
//! (see `scenario`), failures grouped by checker and message with example
//! seeds and the commands that reproduce them, the slowest runs, and
//! charts from the HDR histograms.
//!
//! Invariant: the page is a pure function of the aggregates (and options):
//! every collection it walks is ordered, so rewriting it gives
//! byte-identical files.

use super::table::{Cell, Table, figures, figures_named, md_cell, text};
use super::{
    Chart, Drawing, ReportData, ReportFiles, ReportOptions, Speed, chart_html, csv, finish, lines, summary_cards,
};
use crate::aggregate::{
    CampaignAggregate, CountMetric, CoverageCount, FailureGroup, FailureKind, FailureRow, MAX_SCENARIOS, ScenarioKey,
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

mod scenario;

use scenario::{SECTIONS_CHARTED, Section};

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
    counts_per_run: Vec<CountJson>,
    coverage: Vec<CoverageJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a ScenarioParameters>,
    /// A scenario's own failure groups (the campaign's are beside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_groups: Option<Vec<GroupJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slowest: Option<SlowestJson<'a>>,
}

/// One counter's distribution over runs.
#[derive(Serialize)]
struct CountJson {
    metric: CountMetric,
    #[serde(flatten)]
    per_run: Option<Percentiles>,
}

#[derive(Serialize)]
struct SlowestJson<'a> {
    after_last_heal: &'a [SlowRun],
    after_last_write: &'a [SlowRun],
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

fn groups_json<'a>(
    groups: Vec<(&'a FailureKind, &'a FailureGroup)>,
    other: Option<&'a FailureGroup>,
) -> Vec<GroupJson<'a>> {
    let mut out: Vec<GroupJson<'a>> =
        groups.into_iter().map(|(kind, group)| GroupJson { kind: Some(kind), group }).collect();
    out.extend(other.map(|group| GroupJson { kind: None, group }));
    out
}

/// A scenario's figures, or with `scenario` false the campaign's (whose
/// verdicts, groups and slowest runs are beside them).
fn scenario_json<'a>(key: Option<&'a ScenarioKey>, stats: &'a ScenarioStats, scenario: bool) -> ScenarioJson<'a> {
    let (named, other) = stats.coverage();
    let mut coverage: Vec<CoverageJson<'a>> =
        named.into_iter().map(|(name, count)| CoverageJson { name, count }).collect();
    coverage.extend(other.map(|count| CoverageJson { name: "(other names)", count }));
    let counts_per_run = CountMetric::ALL
        .iter()
        .map(|metric| CountJson { metric: *metric, per_run: stats.count(*metric).percentiles(1.0) })
        .collect();
    let (groups, other_groups) = stats.failure_groups();
    ScenarioJson {
        key,
        counts_per_run,
        failure_groups: scenario.then(|| groups_json(groups, other_groups)),
        slowest: scenario.then(|| SlowestJson {
            after_last_heal: stats.slowest_after_last_heal(),
            after_last_write: stats.slowest_after_last_write(),
        }),
        verdicts: scenario.then(|| stats.verdicts()),
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
    let failure_groups = groups_json(groups, other_groups);
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

pub(super) fn thousands(n: u64) -> String {
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

/// A figure with `decimals` decimals and its whole part in thousands
/// ("1,191.50").
fn number(value: f64, decimals: usize) -> String {
    let text = format!("{:.decimals$}", value.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    // A whole part that does not fit u64 (never a count or a time) prints as is.
    let grouped = whole.parse::<u64>().map_or_else(|_| whole.to_owned(), thousands);
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
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
            format!(
                "{} {}..{} ms {}",
                f.kind,
                f.start_ms,
                f.end_ms.map_or("end".into(), |e| e.to_string()),
                f.nodes_text()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if parameters.faults_total > parameters.faults.len() {
        let _ = write!(text, "; {} more", parameters.faults_total - parameters.faults.len());
    }
    text
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

/// The histogram's caption: whole values (milliseconds, counts; `scale`
/// 1) print whole, ratios with three decimals.
fn caption(p: Option<Percentiles>, unit: &str, scale: f64) -> String {
    let decimals = if scale == 1.0 { 0 } else { 3 };
    match p {
        Some(p) => format!(
            "{} runs; p50 {}, p95 {}, p99 {}, max {} ({unit}); percentiles within 0.1%.",
            thousands(p.count as u64),
            number(p.p50, decimals),
            number(p.p95, decimals),
            number(p.p99, decimals),
            number(p.max, decimals)
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
        caption: caption(distribution.percentiles(scale), unit, scale),
        csv: csv("low,high,runs", bins.iter().map(|b| format!("{:.6},{:.6},{}", b.low, b.high, b.count))),
        drawing: Drawing::Histogram(Histogram { title: title.clone(), x_label, bins, whole: false }),
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
    let many = campaigns.len() > 1;
    for (index, (campaign, all)) in campaigns.iter().zip(overall).enumerate() {
        let suffix = if many { format!(" ({})", campaign.name()) } else { String::new() };
        // Numbered: two names that slug alike ("a/x.jsonl", "a-x.jsonl") keep their own files.
        let slug = if many { format!("-{}-{}", index + 1, slugify(campaign.name())) } else { String::new() };
        charts.extend(scenarios_cdf(campaign, &suffix, &slug));
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
        charts.extend(count_charts(all, &suffix, &slug));
    }
    charts
}

/// Convergence after the last heal, one line per scenario (the first
/// [`SCENARIOS_CHARTED`]), when the campaign ran more than one.
fn scenarios_cdf(campaign: &CampaignAggregate, suffix: &str, slug: &str) -> Option<Chart> {
    let scenarios: Vec<(&ScenarioKey, &ScenarioStats)> = campaign.scenarios().collect();
    if scenarios.len() < 2 {
        return None;
    }
    let shown: Vec<Series> = (scenarios.iter().take(SCENARIOS_CHARTED))
        .map(|(key, stats)| Series {
            name: format!("{} ({})", key.scenario, key.scenario_hash),
            points: steps(&stats.after_last_heal_ms().cdf(CDF_POINTS, 1.0)),
        })
        .collect();
    let more = scenarios.len().saturating_sub(SCENARIOS_CHARTED);
    let note = if more > 0 {
        format!(" The first {SCENARIOS_CHARTED} scenarios; {more} more in the table.")
    } else {
        String::new()
    };
    Some(cdf_chart(
        &format!("scenario-cdf{slug}"),
        &format!("Convergence after the last heal by scenario{suffix}"),
        "ms after the last heal",
        &format!("One line per scenario (name and hash).{note}"),
        shown,
        "scenario",
    ))
}

/// A histogram of each counter shown per run (drops, crashes, ...) that
/// some run counted; one that is zero in every run says so in the table.
fn count_charts(all: &ScenarioStats, suffix: &str, slug: &str) -> Vec<Chart> {
    (CountMetric::ALL.into_iter())
        .filter(|metric| all.count(*metric).max().is_some_and(|max| max > 0))
        .map(|metric| count_chart(&format!("{}-per-run{slug}", metric.id()), metric.name(), suffix, all.count(metric)))
        .collect()
}

/// A histogram of a count per run: whole-number axis, bins a whole number
/// of counts wide, and CSV rows of inclusive `from,to` counts.
fn count_chart(id: &str, name: &str, suffix: &str, distribution: &Distribution) -> Chart {
    let bins = distribution.bins(HISTOGRAM_BINS, 1.0);
    let width = bins.first().map_or(1.0, |bin| bin.high - bin.low);
    let x_label = if width > 1.0 {
        format!("{name} in a run (bins {} wide)", crate::charts::tick(&width))
    } else {
        format!("{name} in a run")
    };
    let mut title = format!("{name} per run{suffix}");
    if let Some(first) = title.get(..1) {
        title = first.to_uppercase() + &title[1..];
    }
    let p = |per_ten_thousand| at(distribution, per_ten_thousand, 1.0, 0);
    Chart {
        id: id.to_owned(),
        caption: format!(
            "{} runs; p50 {}, p95 {}, p99 {}, max {} {name} in a run.",
            thousands(distribution.count()),
            p(5_000),
            p(9_500),
            p(9_900),
            p(10_000)
        ),
        csv: csv(
            "from,to,runs",
            bins.iter().map(|b| format!("{},{},{}", b.low as u64, (b.high as u64).saturating_sub(1), b.count)),
        ),
        drawing: Drawing::Histogram(Histogram { title: title.clone(), x_label, bins, whole: true }),
        title,
    }
}

// ---- campaign tables -------------------------------------------------------------

/// "p50 / p95 / p99" of a convergence distribution, in ms.
fn three_percentiles(distribution: &Distribution) -> String {
    [5_000, 9_500, 9_900].map(|p| at(distribution, p, 1.0, 0)).join(" / ")
}

/// The summary across scenarios: one row per scenario, linking to its
/// section, with its verdicts and convergence percentiles.
fn summary_table(sections: &[Section<'_>]) -> Table {
    let mut table = Table::new(vec![
        text("scenario"),
        text("file"),
        text("hash"),
        figures("runs"),
        figures("pass"),
        figures("fail"),
        figures("timeout"),
        figures("harness error"),
        figures("nothing tested"),
        figures("converged"),
        figures("after the last heal p50 / p95 / p99"),
        figures("after the last write p50 / p95 / p99"),
        figures("sampled every"),
    ]);
    for section in sections {
        let (stats, v) = (section.stats, section.stats.verdicts());
        let mut row = match section.key {
            Some(key) => vec![
                Cell::Link(key.scenario.clone(), section.anchor.clone()),
                Cell::Code(key.scenario_path.clone()),
                Cell::Code(key.scenario_hash.clone()),
            ],
            None => vec![
                Cell::Link(other_scenarios_label(), section.anchor.clone()),
                Cell::Text("-".into()),
                Cell::Text("-".into()),
            ],
        };
        row.extend(
            [v.runs(), v.pass, v.fail, v.timeout, v.harness_error, v.nothing_tested, stats.converged()]
                .map(|n| Cell::Number(thousands(n))),
        );
        row.push(Cell::Number(three_percentiles(stats.after_last_heal_ms())));
        row.push(Cell::Number(three_percentiles(stats.after_last_write_ms())));
        row.push(Cell::Number(interval(stats.sample_interval_ms())));
        table.row(row);
    }
    table
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

/// Counters summed over each scenario's runs, side by side.
fn totals_table(sections: &[Section<'_>]) -> Table {
    let mut columns = vec![text("scenario"), text("hash")];
    columns.extend(metric_columns(&Metrics::default()).map(|(name, _)| figures(name)));
    let mut table = Table::new(columns);
    for section in sections {
        let mut row = match section.key {
            Some(key) => {
                vec![Cell::Link(key.scenario.clone(), section.anchor.clone()), Cell::Code(key.scenario_hash.clone())]
            }
            None => vec![Cell::Text("other scenarios".into()), Cell::Text("-".into())],
        };
        row.extend(metric_columns(section.stats.metrics()).map(|(_, value)| Cell::Number(thousands(value))));
        table.row(row);
    }
    table
}

/// Where each scenario's bytes went (see `bytes`).
fn bytes_table(sections: &[Section<'_>]) -> Table {
    let rows = sections
        .iter()
        .map(|section| {
            let label = match section.key {
                Some(key) => vec![
                    Cell::Link(key.scenario.clone(), section.anchor.clone()),
                    Cell::Code(key.scenario_hash.clone()),
                ],
                None => vec![Cell::Text("other scenarios".into()), Cell::Text("-".into())],
            };
            (label, section.stats.metrics())
        })
        .collect();
    super::bytes::scenarios_table(vec![text("scenario"), text("hash")], rows)
}

/// Scenarios shown as columns of the coverage table; the rest are in their
/// sections.
const COVERAGE_COLUMNS: usize = 16;

const COVERAGE_NOTE: &str = "Runs in which each effect happened at least once, of each scenario's runs: a 0 in a scenario that injects the fault means its runs passed without the fault biting.";

/// Effects by scenario: in how many of each scenario's runs the effect
/// happened at least once, with the note above it. `None` when no scenario
/// recorded coverage.
fn coverage_table(sections: &[Section<'_>]) -> Option<(String, Table)> {
    let shown = &sections[..sections.len().min(COVERAGE_COLUMNS)];
    let columns: Vec<(Vec<(&str, crate::aggregate::CoverageCount)>, u64)> =
        (shown.iter()).map(|section| (section.stats.coverage().0, section.stats.verdicts().runs())).collect();
    let mut effects: Vec<&str> = columns.iter().flat_map(|(named, _)| named.iter().map(|(name, _)| *name)).collect();
    effects.sort_unstable();
    effects.dedup();
    if effects.is_empty() {
        return None;
    }
    let mut headings = vec![text("effect")];
    // A name two sections share gets its hash, as in the section headings.
    let shared =
        |name: &str| shown.iter().filter(|other| other.key.is_some_and(|key| key.scenario == name)).count() > 1;
    headings.extend(shown.iter().map(|section| {
        figures_named(match section.key {
            Some(key) if shared(&key.scenario) => {
                format!("{} ({})", key.scenario, key.scenario_hash.chars().take(8).collect::<String>())
            }
            Some(key) => key.scenario.clone(),
            None => "other scenarios".to_owned(),
        })
    }));
    let mut table = Table::new(headings);
    for effect in effects {
        let mut row = vec![Cell::Text(effect.to_owned())];
        for (named, runs) in &columns {
            let reached = named.iter().find(|(name, _)| *name == effect).map_or(0, |(_, count)| count.seeds_reached);
            row.push(Cell::Number(format!("{} / {}", thousands(reached), thousands(*runs))));
        }
        table.row(row);
    }
    let mut note = COVERAGE_NOTE.to_owned();
    if sections.len() > shown.len() {
        let _ = write!(note, " The first {} scenarios are shown; every section has its own table.", shown.len());
    }
    Some((note, table))
}

/// The groups of one side: engine failures (with the pooled rest of the
/// groups) or inconclusive runs.
fn split_groups<'a>(
    groups: &[(&'a FailureKind, &'a FailureGroup)],
    other: Option<&'a FailureGroup>,
    engine: bool,
) -> Vec<(Option<&'a FailureKind>, &'a FailureGroup)> {
    let mut rows: Vec<(Option<&FailureKind>, &FailureGroup)> = groups
        .iter()
        .filter(|(kind, _)| (kind.verdict == Verdict::Fail) == engine)
        .map(|(kind, group)| (Some(*kind), *group))
        .collect();
    if engine && let Some(group) = other {
        rows.push((None, group));
    }
    rows
}

fn failure_list_table(rows: &[FailureRow]) -> Table {
    let mut table = Table::new(vec![
        figures("seed"),
        text("scenario"),
        text("verdict"),
        text("checker"),
        text("violation or note"),
        text("reproduce"),
    ]);
    for row in rows {
        table.row(vec![
            Cell::Number(row.seed.to_string()),
            Cell::Text(row.scenario.clone()),
            Cell::Text(row.verdict.name().into()),
            Cell::Text(row.checker.clone().unwrap_or_else(|| "-".into())),
            Cell::Text(row.detail.clone()),
            Cell::Code(row.reproduce.clone()),
        ]);
    }
    table
}

fn slowest_list_table(rows: &[SlowRun]) -> Table {
    let mut table = Table::new(vec![figures("ms"), figures("seed"), text("scenario"), text("reproduce")]);
    for row in rows {
        table.row(vec![
            Cell::Number(thousands(row.ms)),
            Cell::Number(row.seed.to_string()),
            Cell::Text(row.scenario.clone()),
            Cell::Code(row.reproduce.clone()),
        ]);
    }
    table
}

/// Engine failures or inconclusive runs of a campaign: grouped, then the
/// first ones listed.
struct FailurePart {
    heading: String,
    note: &'static str,
    groups: Table,
    list_note: String,
    list: Table,
}

const ENGINE_NOTE: &str = "Runs where an invariant of the engine was violated, grouped by verdict, the first violation's checker and its message (numbers and ids masked as #), with a few example seeds and the commands that reproduce them.";
const INCONCLUSIVE_NOTE: &str = "Runs that say nothing about the engine: they timed out, the harness itself failed, or nothing was tested. None of them passes.";

fn failure_parts(campaign: &CampaignAggregate) -> Vec<FailurePart> {
    let v = campaign.verdicts();
    let (groups, other) = campaign.failure_groups();
    let part = |heading, note, engine, rows: &[FailureRow], total: u64, what: &str| FailurePart {
        heading,
        note,
        groups: scenario::groups_table(&split_groups(&groups, other, engine)),
        list_note: format!(
            "The first {} of {} {what} by seed and scenario file{}.",
            rows.len(),
            thousands(total),
            if total > rows.len() as u64 { "; the rest are in the results file" } else { "" }
        ),
        list: failure_list_table(rows),
    };
    let mut parts = Vec::new();
    if v.fail > 0 {
        let heading = format!("Engine failures ({})", thousands(v.fail));
        parts.push(part(heading, ENGINE_NOTE, true, campaign.failures(), v.fail, "engine failures"));
    }
    if v.inconclusive() > 0 {
        let heading = format!("Inconclusive runs ({}): {}", thousands(v.inconclusive()), verdicts_line(&v));
        parts.push(part(
            heading,
            INCONCLUSIVE_NOTE,
            false,
            campaign.inconclusive(),
            v.inconclusive(),
            "inconclusive runs",
        ));
    }
    parts
}

fn slowest_parts(campaign: &CampaignAggregate) -> Vec<(&'static str, Table)> {
    [
        ("Slowest to converge after the last heal", campaign.slowest_after_last_heal()),
        ("Slowest to converge after the last write", campaign.slowest_after_last_write()),
    ]
    .into_iter()
    .filter(|(_, rows)| !rows.is_empty())
    .map(|(title, rows)| (title, slowest_list_table(rows)))
    .collect()
}

const SECTIONS_NOTE: &str = "One section per scenario name, file and content hash: two files with one name, or one name with two contents, are different scenarios.";
const COUNTS_NOTE: &str =
    "How often the faults bit, per run: \"runs with any\" counts the runs where the counter was above zero.";

/// "The first 32 scenarios have charts; ..." when some sections have none.
fn sections_charted_note(sections: &[Section<'_>]) -> Option<String> {
    (sections.len() > SECTIONS_CHARTED).then(|| {
        format!("The first {SECTIONS_CHARTED} scenarios have charts; the other {} have their figures in tables and report.json.", sections.len() - SECTIONS_CHARTED)
    })
}

// ---- HTML ------------------------------------------------------------------------

fn failures_html(campaign: &CampaignAggregate) -> Markup {
    html! {
        @if campaign.verdicts().fail == 0 { h3 { "Engine failures (0)" } }
        @for part in failure_parts(campaign) {
            h3.fail { (part.heading) }
            p.note { (part.note) }
            (part.groups.html())
            p.note { (part.list_note) }
            (part.list.html())
        }
        @for (title, table) in slowest_parts(campaign) { h3 { (title) } (table.html()) }
    }
}

fn summary_html(sections: &[Section<'_>]) -> Markup {
    html! {
        h3 { "Scenarios (" (sections.len()) ")" }
        p.note { (SECTIONS_NOTE) }
        (summary_table(sections).html())
        h3 { "Totals per scenario" }
        (totals_table(sections).html())
        h3 { "Where the bytes went" }
        p.note { (super::bytes::NOTE) }
        (bytes_table(sections).html())
        @if let Some((note, table)) = coverage_table(sections) {
            h3 { "Coverage by scenario" }
            p.note { (note) }
            (table.html())
        }
    }
}

fn sections_html(sections: &[Section<'_>], charts: &[Chart], svgs: &[String]) -> Markup {
    html! {
        @if let Some(note) = sections_charted_note(sections) { p.note { (note) } }
        @for section in sections {
            (scenario::html(section, &charts[section.charts.clone()], &svgs[section.charts.clone()]))
        }
    }
}

fn campaign_html(
    campaign: &CampaignAggregate,
    all: &ScenarioStats,
    sections: &[Section<'_>],
    charts: &[Chart],
    svgs: &[String],
    speed: Option<&Speed>,
) -> Markup {
    let v = campaign.verdicts();
    let p50_p99 = |d: &Distribution| match d.count() {
        0 => "-".to_owned(),
        _ => format!("{} / {} ms", at(d, 5_000, 1.0, 0), at(d, 9_900, 1.0, 0)),
    };
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
        (scenario::figures_table(all).html())
        p.note { (sampling_note(all.sample_interval_ms())) }
        p.note { (PRECISION) }
        p { (versions_line(campaign, speed)) }
        (summary_html(sections))
        (invariants_html(campaign))
        h3 { "Counters per run" }
        p.note { (COUNTS_NOTE) }
        (scenario::counts_table(all).html())
        (failures_html(campaign))
        (sections_html(sections, charts, svgs))
    }
}

/// "scx 0.1.0 (60 runs), 0.1.1 (30 runs)." and how fast the runs went,
/// when the campaign's own run wrote the page.
fn versions_line(campaign: &CampaignAggregate, speed: Option<&Speed>) -> String {
    let (versions, other_versions) = campaign.versions();
    let mut versions: Vec<String> =
        versions.iter().map(|(v, runs)| format!("{v} ({} runs)", thousands(*runs))).collect();
    if other_versions > 0 {
        versions.push(format!("other versions ({} runs)", thousands(other_versions)));
    }
    let speed = match speed {
        Some(speed) if speed.secs > 0.0 && speed.runs > 0 => format!(
            " This invocation ran {} runs in {:.1} s with {} jobs: {:.1} seeds/s on the machine that ran them.",
            thousands(speed.runs),
            speed.secs,
            speed.jobs,
            speed.runs as f64 / speed.secs
        ),
        _ => " Seeds per second are not in results files (they hold no wall-clock time, so they stay byte-identical across machines); the page `scx fuzz --report` writes states them.".to_owned(),
    };
    format!("scx {}.{speed}", versions.join(", "))
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
    if campaign.verdicts().fail == 0 {
        md.push_str("\nNo engine failures.\n");
    }
    for part in failure_parts(campaign) {
        let _ = writeln!(md, "\n### {}\n\n{}", part.heading, part.note);
        part.groups.markdown(md);
        let _ = writeln!(md, "\n{}", part.list_note);
        part.list.markdown(md);
    }
    for (title, table) in slowest_parts(campaign) {
        let _ = writeln!(md, "\n### {title}");
        table.markdown(md);
    }
}

fn markdown_summary(md: &mut String, sections: &[Section<'_>]) {
    let _ = writeln!(md, "\n### Scenarios ({})\n\n{SECTIONS_NOTE}", sections.len());
    summary_table(sections).markdown(md);
    md.push_str("\n### Totals per scenario\n");
    totals_table(sections).markdown(md);
    let _ = writeln!(md, "\n### Where the bytes went\n\n{}", super::bytes::NOTE);
    bytes_table(sections).markdown(md);
    if let Some((note, table)) = coverage_table(sections) {
        let _ = writeln!(md, "\n### Coverage by scenario\n\n{note}");
        table.markdown(md);
    }
}

fn markdown_sections(md: &mut String, sections: &[Section<'_>], charts: &[Chart], png: bool) {
    if let Some(note) = sections_charted_note(sections) {
        let _ = writeln!(md, "\n{note}");
    }
    for section in sections {
        scenario::markdown(md, section, &charts[section.charts.clone()], png);
    }
}

/// The Markdown page: `sections` per campaign, `charts` of the whole
/// report (the first `shared` are the campaigns', the rest the sections').
fn campaign_markdown(
    title: &str,
    campaigns: &[CampaignAggregate],
    overall: &[ScenarioStats],
    sections: &[Vec<Section<'_>>],
    charts: (&[Chart], usize),
    png: bool,
    speed: Option<&Speed>,
) -> String {
    let (charts, shared) = charts;
    let mut md = format!("# {title}\n\n");
    markdown_overview(&mut md, campaigns, overall);
    for ((campaign, all), sections) in campaigns.iter().zip(overall).zip(sections) {
        let _ = writeln!(md, "\n## {}\n\n{}", md_cell(campaign.name()), versions_line(campaign, speed));
        markdown_summary(&mut md, sections);
        markdown_invariants(&mut md, campaign);
        let _ = writeln!(md, "\n### Counters per run\n\n{COUNTS_NOTE}");
        scenario::counts_table(all).markdown(&mut md);
        markdown_failures(&mut md, campaign);
        markdown_sections(&mut md, sections, charts, png);
    }
    changes_markdown(&mut md, campaigns);
    scenario::markdown_charts(&mut md, "## Charts", &charts[..shared], png);
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
/// The metrics a comparison judges: what a design changes, lower being
/// better. Drops, crashes and conflicts are left out: the network model,
/// the nemesis and the workload set them, not the design under test.
fn compared_metrics(stats: &ScenarioStats) -> [(&'static str, &Distribution, f64); 6] {
    [
        ("converged after the last heal (ms)", stats.after_last_heal_ms(), 1.0),
        ("converged after the last write (ms)", stats.after_last_write_ms(), 1.0),
        ("bytes sent per byte missing", stats.bytes_ratio_thousandths(), RATIO_SCALE),
        ("round trips", stats.round_trips(), 1.0),
        ("rollbacks per run", stats.count(CountMetric::Rollbacks), 1.0),
        ("sessions abandoned per run", stats.count(CountMetric::SessionsAbandoned), 1.0),
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
    // A bound from resamples whose base mean was zero.
    if value.is_infinite() { "unbounded".to_owned() } else { format!("{:+.1}%", value * 100.0) }
}

fn scaled_mean(name: &str, value: f64) -> String {
    if name.starts_with("bytes") {
        format!("{:.3}", value / RATIO_SCALE)
    } else if name.ends_with("per run") {
        // Small counts: "0.15" rollbacks per run, not "0".
        number(value, 2)
    } else {
        number(value, 0)
    }
}

const CHANGES_NOTE: &str = "Each change is of the mean, variant against base, with a bootstrap interval (1,000 seeded resamples of each side's runs) holding the central 95% of the resampled changes: \"improved\" or \"regressed\" when the whole interval is below or above zero (significance 0.05), \"no change\" when it holds zero. Lower is better for every metric; drops, crashes and conflicts are not judged, since the network model, the faults and the workload set them. Scenarios are matched by name.";

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
                    "\nNot judged (fewer than {} values on a side, or a base mean of zero): {}.",
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
                    p.note { "Not judged (fewer than " (compare::MIN_RUNS) " values on a side, or a base mean of zero): " (change.unjudged.join(", ")) "." }
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

/// Each campaign's scenario sections, the first [`SECTIONS_CHARTED`] of
/// each with their charts appended to `charts`.
fn scenario_sections<'a>(campaigns: &'a [CampaignAggregate], charts: &mut Vec<Chart>) -> Vec<Vec<Section<'a>>> {
    let many = campaigns.len() > 1;
    let mut all: Vec<Vec<Section<'a>>> = (campaigns.iter().enumerate())
        .map(|(index, campaign)| {
            scenario::sections(campaign, &if many { format!("{}-", index + 1) } else { String::new() })
        })
        .collect();
    for section in all.iter_mut().flat_map(|sections| sections.iter_mut().take(SECTIONS_CHARTED)) {
        let start = charts.len();
        charts.extend(section.charts());
        section.charts = start..charts.len();
    }
    all
}

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
    let mut charts = campaign_charts(campaigns, &overall);
    let shared = charts.len();
    let sections = scenario_sections(campaigns, &mut charts);
    let svgs = charts.iter().map(Chart::svg).collect::<Result<Vec<_>, _>>()?;
    // A speed belongs to the one campaign that ran; a comparison reads files.
    let speed = options.speed.as_ref().filter(|_| campaigns.len() == 1);
    let markdown = campaign_markdown(&title, campaigns, &overall, &sections, (&charts, shared), options.png, speed);
    let body = html! {
        @for ((campaign, all), sections) in campaigns.iter().zip(&overall).zip(&sections) {
            (campaign_html(campaign, all, sections, &charts, &svgs, speed))
        }
        (changes_html(campaigns))
        h2 { "Charts" }
        @for (chart, svg) in charts[..shared].iter().zip(&svgs) { (chart_html(chart, svg)) }
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
    fn numbers_group_their_whole_part() {
        assert_eq!(number(1191.5, 2), "1,191.50");
        assert_eq!(number(1.3594, 3), "1.359");
        assert_eq!(number(1_234_567.4, 0), "1,234,567");
        assert_eq!(number(-2500.0, 1), "-2,500.0");
        assert_eq!(number(-0.001, 1), "0.0");
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
