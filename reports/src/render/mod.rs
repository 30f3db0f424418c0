//! Building report pages from a trace or campaigns: charts, the data
//! behind them (CSV), `report.json`, `report.md` and one self-contained
//! `report.html`.

use crate::charts::{self, Band, Histogram, Lines, Series, Timeline};
use crate::input::ReportError;
use crate::model::RunRecord;
use crate::stats::{self, CampaignStats, Percentiles};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod run;

pub use run::write_run_report;

/// How to build a report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Page title (default: from the input).
    pub title: Option<String>,
    /// Also write each chart as `<chart>.png` (for papers).
    pub png: bool,
}

/// What a report wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// The HTML page.
    pub html: PathBuf,
    /// The Markdown page.
    pub markdown: PathBuf,
    /// The JSON figures.
    pub json: PathBuf,
    /// The data behind each chart.
    pub csv: Vec<PathBuf>,
    /// PNG charts, when asked for.
    pub png: Vec<PathBuf>,
}

/// A campaign with a name (its results file).
#[derive(Clone, Debug)]
pub struct NamedCampaign {
    /// Shown in legends and headings.
    pub name: String,
    /// Its records.
    pub records: Vec<RunRecord>,
}

/// Failures listed in full in a report.
const FAILURES_LISTED: usize = 200;

enum Drawing {
    Lines(Lines),
    Histogram(Histogram),
    Timeline(Timeline),
}

struct Chart {
    id: String,
    title: String,
    caption: String,
    drawing: Drawing,
    csv: String,
}

impl Chart {
    fn svg(&self) -> Result<String, ReportError> {
        match &self.drawing {
            Drawing::Lines(chart) => charts::svg(chart),
            Drawing::Histogram(chart) => charts::svg(chart),
            Drawing::Timeline(chart) => charts::svg(chart),
        }
    }

    fn png(&self, path: &Path) -> Result<(), ReportError> {
        match &self.drawing {
            Drawing::Lines(chart) => charts::png(chart, path),
            Drawing::Histogram(chart) => charts::png(chart, path),
            Drawing::Timeline(chart) => charts::png(chart, path),
        }
    }
}

fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    bands: &[Band],
    marker: Option<(f64, &str)>,
) -> Drawing {
    Drawing::Lines(Lines {
        title: title.to_owned(),
        x_label: x_label.to_owned(),
        y_label: y_label.to_owned(),
        series: series.to_vec(),
        bands: bands.to_vec(),
        marker: marker.map(|(x, label)| (x, label.to_owned())),
    })
}

/// Everything in `report.json`.
#[derive(Serialize)]
struct ReportData<'a> {
    kind: &'static str,
    title: String,
    charts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a RunRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    campaigns: Vec<CampaignJson<'a>>,
}

#[derive(Serialize)]
struct CampaignJson<'a> {
    name: &'a str,
    stats: CampaignStats,
    failures: Vec<&'a RunRecord>,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn csv(header: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut out = format!("{header}\n");
    for row in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out
}

fn fault_bands(record: &RunRecord) -> Vec<Band> {
    let end = record.ended_at_ms;
    record
        .faults
        .iter()
        .map(|fault| Band {
            start: secs(fault.start_ms),
            end: secs(fault.end_ms.unwrap_or(end)),
            label: fault.kind.clone(),
        })
        .collect()
}

// ---- campaigns ---------------------------------------------------------------

/// Writes the report of one or more campaigns into `out_dir`; two or more
/// are compared (their convergence CDFs overlaid).
pub fn write_campaign_report(
    campaigns: &[NamedCampaign],
    out_dir: &Path,
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    let title = options.title.clone().unwrap_or_else(|| match campaigns {
        [one] => format!("Campaign {}", one.name),
        many => format!("Comparison of {} campaigns", many.len()),
    });
    let all_stats: Vec<CampaignStats> = campaigns.iter().map(|c| stats::campaign(&c.records)).collect();
    let mut charts = Vec::new();
    let cdfs: Vec<Series> = campaigns
        .iter()
        .map(|c| {
            let values =
                stats::sorted(c.records.iter().filter_map(|r| r.converged_after_last_heal_ms.map(|ms| ms as f64)));
            Series { name: c.name.clone(), points: steps(&stats::cdf(&values, 400)) }
        })
        .collect();
    charts.push(Chart {
        id: "convergence-cdf".into(),
        title: "Convergence time CDF".into(),
        caption: "Fraction of runs converged within x ms of the last heal; further left converges faster.".into(),
        drawing: lines("Convergence time CDF", "ms after the last heal", "fraction of runs", &cdfs, &[], None),
        csv: csv(
            "campaign,ms,fraction",
            cdfs.iter().flat_map(|s| s.points.iter().map(move |(x, y)| format!("{},{x},{y:.6}", s.name))),
        ),
    });
    for campaign in campaigns {
        let suffix = if campaigns.len() > 1 { format!(" ({})", campaign.name) } else { String::new() };
        let slug = if campaigns.len() > 1 { format!("-{}", slugify(&campaign.name)) } else { String::new() };
        let convergence =
            stats::sorted(campaign.records.iter().filter_map(|r| r.converged_after_last_heal_ms.map(|ms| ms as f64)));
        let ratios = stats::sorted(campaign.records.iter().filter_map(RunRecord::bytes_ratio));
        let trips = stats::sorted(campaign.records.iter().map(|r| r.metrics.round_trips as f64));
        for (id, name, unit, values) in [
            ("convergence-histogram", "Convergence time", "ms after the last heal", &convergence),
            ("bytes-ratio", "Bytes sent per byte of missing lanes", "ratio", &ratios),
            ("round-trips", "Round trips per run", "round trips", &trips),
        ] {
            let bins = stats::histogram(values, 30);
            let data = csv("low,high,runs", bins.iter().map(|b| format!("{:.6},{:.6},{}", b.low, b.high, b.count)));
            charts.push(Chart {
                id: format!("{id}{slug}"),
                title: format!("{name}{suffix}"),
                caption: percentile_caption(stats::percentiles(values).as_ref(), unit),
                drawing: Drawing::Histogram(Histogram {
                    title: format!("{name}{suffix}"),
                    x_label: unit.to_owned(),
                    bins,
                }),
                csv: data,
            });
        }
    }
    let markdown = campaign_markdown(&title, campaigns, &all_stats);
    let svgs = charts.iter().map(Chart::svg).collect::<Result<Vec<_>, _>>()?;
    let body = html! {
        @for (campaign, stats) in campaigns.iter().zip(&all_stats) {
            h2 { (campaign.name) }
            (summary_cards(&[
                ("runs", stats.runs.to_string()),
                ("passed", stats.passed.to_string()),
                ("failed", stats.failed.to_string()),
                ("seeds", format!("{}..={}", stats.seed_min, stats.seed_max)),
                ("convergence p50 / p99", stats.convergence_ms.map_or("-".into(), |p| format!("{:.0} / {:.0} ms", p.p50, p.p99))),
            ]))
            (stats_table(stats))
            (scenario_table(&campaign.records))
            (violations_html(&campaign.records))
        }
        @for (chart, svg) in charts.iter().zip(&svgs) { (chart_html(chart, svg)) }
    };
    let data = ReportData {
        kind: if campaigns.len() > 1 { "comparison" } else { "campaign" },
        title: title.clone(),
        charts: charts.iter().map(|c| c.title.as_str()).collect(),
        run: None,
        campaigns: campaigns
            .iter()
            .zip(&all_stats)
            .map(|(c, s)| CampaignJson {
                name: &c.name,
                stats: s.clone(),
                failures: c.records.iter().filter(|r| !r.passed()).take(FAILURES_LISTED).collect(),
            })
            .collect(),
    };
    finish(out_dir, &title, body, &markdown, &data, &charts, options)
}

/// "N ms" after an event; "never" when nothing converged, "-" when the
/// event did not happen.
fn after_ms(after: Option<u64>, converged_at: Option<u64>) -> String {
    match (after, converged_at) {
        (Some(ms), _) => format!("{ms} ms"),
        (None, None) => "never".into(),
        (None, Some(_)) => "-".into(),
    }
}

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

fn slugify(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn percentile_caption(p: Option<&Percentiles>, unit: &str) -> String {
    match p {
        Some(p) => format!(
            "{} runs; p50 {:.2}, p95 {:.2}, p99 {:.2}, max {:.2} ({unit}).",
            p.count, p.p50, p.p95, p.p99, p.max
        ),
        None => "No values.".into(),
    }
}

fn campaign_markdown(title: &str, campaigns: &[NamedCampaign], all_stats: &[CampaignStats]) -> String {
    let mut md = format!(
        "# {title}\n\n| campaign | runs | passed | failed | seeds | convergence p50 | p95 | p99 | max | bytes ratio p50 | round trips p50 |\n| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    let f = |p: Option<Percentiles>, pick: fn(&Percentiles) -> f64| {
        p.as_ref().map_or("-".into(), |p| format!("{:.2}", pick(p)))
    };
    for (campaign, s) in campaigns.iter().zip(all_stats) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}..={} | {} | {} | {} | {} | {} | {} |",
            campaign.name,
            s.runs,
            s.passed,
            s.failed,
            s.seed_min,
            s.seed_max,
            f(s.convergence_ms, |p| p.p50),
            f(s.convergence_ms, |p| p.p95),
            f(s.convergence_ms, |p| p.p99),
            f(s.convergence_ms, |p| p.max),
            f(s.bytes_ratio, |p| p.p50),
            f(s.round_trips, |p| p.p50),
        );
    }
    for (campaign, s) in campaigns.iter().zip(all_stats) {
        let _ = writeln!(
            md,
            "\n## {}\n\nScenarios: {}. scx {}.",
            campaign.name,
            s.scenarios.iter().map(|(n, h)| format!("{n} (`{h}`)")).collect::<Vec<_>>().join(", "),
            s.versions.join(", ")
        );
        md.push_str("\n| scenario | file | faulty phase | settle bound | faults (first seed) |\n| --- | --- | ---: | ---: | --- |\n");
        for record in scenario_records(&campaign.records) {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} ms | {} ms | {} |",
                record.scenario,
                record.scenario_path,
                record.duration_ms,
                record.settle_ms,
                fault_summary(record)
            );
        }
        let failures: Vec<&RunRecord> = campaign.records.iter().filter(|r| !r.passed()).collect();
        if failures.is_empty() {
            md.push_str("\nNo failing seeds.\n");
            continue;
        }
        md.push_str("\n| seed | checker | violation | reproduce |\n| ---: | --- | --- | --- |\n");
        for record in failures.iter().take(FAILURES_LISTED) {
            let violation = record.violations.first();
            let _ = writeln!(
                md,
                "| {} | {} | {} | `{}` |",
                record.seed,
                violation.map_or("?", |v| v.checker.as_str()),
                violation.map_or(String::new(), |v| v.message.replace('|', "\\|")),
                record.reproduce
            );
        }
        if failures.len() > FAILURES_LISTED {
            let _ = writeln!(
                md,
                "\n{} more failures in report.json and the results file.",
                failures.len() - FAILURES_LISTED
            );
        }
    }
    md
}

// ---- shared HTML ---------------------------------------------------------------

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:960px;color:#1d1d1f;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #ddd;border-radius:8px;padding:.5rem .8rem;min-width:9rem}\
.card b{display:block;font-size:1.25rem}.card span{color:#666;font-size:.8rem}\
figure{margin:1.2rem 0}figcaption{color:#555;font-size:.85rem}svg{max-width:100%;height:auto}\
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
code{background:#f4f4f4;padding:0 .25rem;border-radius:3px;font-size:.8rem;user-select:all}.fail{color:#b00020}";

fn summary_cards(cards: &[(&str, String)]) -> Markup {
    html! { div.cards { @for (label, value) in cards { div.card { b { (value) } span { (label) } } } } }
}

fn chart_html(chart: &Chart, svg: &str) -> Markup {
    html! { figure id=(chart.id) { (PreEscaped(svg)) figcaption { (chart.title) ": " (chart.caption) " Data: " code { (chart.id) ".csv" } } } }
}

fn stats_table(stats: &CampaignStats) -> Markup {
    let row = |name: &str, p: Option<Percentiles>| {
        html! {
            tr { td { (name) } @if let Some(p) = p { td { (format!("{:.2}", p.p50)) } td { (format!("{:.2}", p.p95)) } td { (format!("{:.2}", p.p99)) } td { (format!("{:.2}", p.max)) } } @else { td colspan="4" { "-" } } }
        }
    };
    html! {
        table {
            tr { th { "figure" } th { "p50" } th { "p95" } th { "p99" } th { "max" } }
            (row("convergence (ms after the last heal)", stats.convergence_ms))
            (row("bytes sent / bytes missing", stats.bytes_ratio))
            (row("round trips", stats.round_trips))
        }
        p { "Scenarios: " @for (name, hash) in &stats.scenarios { (name) " " code { (hash) } " " } "· scx " (stats.versions.join(", ")) }
    }
}

/// One record per scenario: its parameters as the run reported them.
fn scenario_records(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut seen: Vec<&RunRecord> = Vec::new();
    for record in records {
        if !seen.iter().any(|s| s.scenario_hash == record.scenario_hash) {
            seen.push(record);
        }
    }
    seen
}

fn fault_summary(record: &RunRecord) -> String {
    if record.faults.is_empty() {
        return "none (or chosen per seed by swarm)".into();
    }
    record
        .faults
        .iter()
        .map(|f| {
            format!("{} {}..{} ms {:?}", f.kind, f.start_ms, f.end_ms.map_or("end".into(), |e| e.to_string()), f.nodes)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn scenario_table(records: &[RunRecord]) -> Markup {
    html! {
        table {
            tr { th { "scenario" } th { "file" } th { "hash" } th { "faulty phase" } th { "settle bound" } th { "faults (first seed)" } }
            @for record in scenario_records(records) {
                tr { td { (record.scenario) } td { code { (record.scenario_path) } } td { code { (record.scenario_hash) } }
                     td { (record.duration_ms) " ms" } td { (record.settle_ms) " ms" } td { (fault_summary(record)) } }
            }
        }
    }
}

fn violations_html(records: &[RunRecord]) -> Markup {
    let failing: Vec<&RunRecord> = records.iter().filter(|r| !r.passed()).collect();
    html! {
        @if !failing.is_empty() {
            h2.fail { "Failing seeds (" (failing.len()) ")" }
            table {
                tr { th { "seed" } th { "checker" } th { "violation" } th { "reproduce" } }
                @for record in failing.iter().take(FAILURES_LISTED) {
                    @let violation = record.violations.first();
                    tr { td { (record.seed) } td { (violation.map_or("?", |v| v.checker.as_str())) } td { (violation.map_or("", |v| v.message.as_str())) } td { code { (record.reproduce) } } }
                }
            }
        }
    }
}

fn finish(
    out_dir: &Path,
    title: &str,
    body: Markup,
    markdown: &str,
    data: &ReportData<'_>,
    charts: &[Chart],
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Io { path: out_dir.to_path_buf(), source })?;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { (title) } style { (PreEscaped(CSS)) } }
            body { h1 { (title) } (body) }
        }
    };
    let html_path = out_dir.join("report.html");
    write(&html_path, page.into_string().as_bytes())?;
    let md_path = out_dir.join("report.md");
    write(&md_path, markdown.as_bytes())?;
    let json_path = out_dir.join("report.json");
    let json = serde_json::to_string_pretty(data)
        .map_err(|e| ReportError::Chart { chart: "report.json".into(), reason: e.to_string() })?;
    write(&json_path, json.as_bytes())?;
    let mut csv_paths = Vec::new();
    for chart in charts {
        let path = out_dir.join(format!("{}.csv", chart.id));
        write(&path, chart.csv.as_bytes())?;
        csv_paths.push(path);
    }
    let mut png_paths = Vec::new();
    if options.png {
        for chart in charts {
            let path = out_dir.join(format!("{}.png", chart.id));
            chart.png(&path)?;
            png_paths.push(path);
        }
    }
    Ok(ReportFiles { html: html_path, markdown: md_path, json: json_path, csv: csv_paths, png: png_paths })
}
