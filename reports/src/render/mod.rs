//! Building report pages from a trace or campaigns: charts, the data
//! behind them (CSV), `report.json`, `report.md` and one self-contained
//! `report.html`. This module holds what both kinds share: options, the
//! chart list, the page frame and the file writing.

use crate::charts::{self, Band, Histogram, Lines, Series, Timeline};
use crate::input::ReportError;
use crate::model::RunRecord;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use std::path::{Path, PathBuf};

mod bytes;
mod campaign;
mod run;
mod table;

use campaign::CampaignJson;
pub use campaign::write_campaign_report;
pub use run::write_run_report;

/// How to build a report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Page title (default: from the input).
    pub title: Option<String>,
    /// Also write each chart as `<chart>.png` (for papers).
    pub png: bool,
    /// How fast the campaign ran, when the page is written by the run
    /// itself (`scx fuzz --report`): results files hold no wall-clock time,
    /// so they stay byte-identical across machines and `--jobs`.
    pub speed: Option<Speed>,
}

/// How fast a campaign ran on the machine that ran it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    /// Runs finished.
    pub runs: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// Runs at once (`--jobs`).
    pub jobs: usize,
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

/// "N ms" after an event; "never" when nothing converged, "-" when the
/// event did not happen.
fn after_ms(after: Option<u64>, converged_at: Option<u64>) -> String {
    match (after, converged_at) {
        (Some(ms), _) => format!("{ms} ms"),
        (None, None) => "never".into(),
        (None, Some(_)) => "-".into(),
    }
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

// ---- shared HTML ---------------------------------------------------------------

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:960px;color:#1d1d1f;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #ddd;border-radius:8px;padding:.5rem .8rem;min-width:9rem}\
.card b{display:block;font-size:1.25rem}.card span{color:#666;font-size:.8rem}\
figure{margin:1.2rem 0}figcaption{color:#555;font-size:.85rem}svg{max-width:100%;height:auto}\
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
code{background:#f4f4f4;padding:0 .25rem;border-radius:3px;font-size:.8rem;user-select:all}.fail{color:#b00020}\
h3{font-size:1.05rem;margin-top:1.4rem}.scroll{overflow-x:auto}.note{color:#555;font-size:.85rem}.n{text-align:right;white-space:nowrap}";

fn summary_cards(cards: &[(&str, String)]) -> Markup {
    html! { div.cards { @for (label, value) in cards { div.card { b { (value) } span { (label) } } } } }
}

fn chart_html(chart: &Chart, svg: &str) -> Markup {
    html! { figure id=(chart.id) { (PreEscaped(svg)) figcaption { (chart.title) ": " (chart.caption) " Data: " code { (chart.id) ".csv" } } } }
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
