//! Goal: every chart of a campaign page, the per-scenario and per-counter
//! ones included, keeps its legend clear of the data, and counts sit on a
//! whole-number axis. Method: pixel-free, on the SVG plotters writes into
//! the page of a three-scenario campaign: each `<polyline>` lies wholly in
//! the plot or wholly in the legend column right of it, each series named
//! in a chart's CSV has its legend text in that column, every number on a
//! count chart's axes is whole, and a bar one count wide stands centred
//! on its value's tick.

use crate::support::{temp, three_scenarios};
use scx_reports::charts::{LEGEND_CHARS, LEGEND_WIDTH};
use scx_reports::{ReportOptions, write_campaign_report};
use std::path::Path;

/// What a chart's SVG draws, in pixels.
struct Svg {
    width: f64,
    /// (x, y, content) of each `<text>`.
    texts: Vec<(f64, f64, String)>,
    /// The x of each point of each `<polyline>`.
    polylines: Vec<Vec<f64>>,
    /// (x, width) of each filled bar (the white background left out).
    bars: Vec<(f64, f64)>,
}

fn attribute(element: &str, name: &str) -> f64 {
    let value = element.split(&format!(" {name}=\"")).nth(1).and_then(|rest| rest.split('"').next());
    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no numeric {name} in {element}"))
}

fn parse(svg: &str) -> Svg {
    let open = svg.find("<svg").expect("an svg element");
    let width = attribute(&svg[open..svg[open..].find('>').unwrap() + open], "width");
    // plotters writes `<text ...>`, the content and `</text>` on lines of their own.
    let texts = (svg.split("<text").skip(1))
        .map(|element| {
            let (head, rest) = element.split_once('>').unwrap();
            let content = rest.split("</text>").next().unwrap().trim().to_owned();
            (attribute(head, "x"), attribute(head, "y"), content)
        })
        .collect();
    let polylines = (svg.split("<polyline").skip(1))
        .map(|element| {
            let points = element.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            points.split_whitespace().map(|point| point.split(',').next().unwrap().parse().unwrap()).collect()
        })
        .collect();
    let bars = (svg.split("<rect").skip(1))
        .filter(|element| !element.contains("fill=\"#FFFFFF\""))
        .map(|element| (attribute(element, "x"), attribute(element, "width")))
        .collect();
    Svg { width, texts, polylines, bars }
}

/// Each `<figure id=...>` of the page: (id, its SVG).
fn figures(html: &str) -> Vec<(String, String)> {
    (html.split("<figure id=\"").skip(1))
        .map(|rest| {
            let id = rest.split('"').next().unwrap().to_owned();
            let svg = rest.split("</svg>").next().unwrap().to_owned();
            (id, svg)
        })
        .collect()
}

/// A legend entry as the chart shows it.
fn shown(name: &str) -> String {
    if name.chars().count() > LEGEND_CHARS {
        name.chars().take(LEGEND_CHARS - 3).collect::<String>() + "..."
    } else {
        name.to_owned()
    }
}

/// The series a line chart's CSV names in its first column; none for a
/// histogram (whose CSV starts with its bins' edges).
fn series_names(dir: &Path, id: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(dir.join(format!("{id}.csv"))).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    if header.starts_with("low,") || header.starts_with("from,") {
        return Vec::new();
    }
    let mut names: Vec<String> = lines.map(|line| line.split(',').next().unwrap().to_owned()).collect();
    names.dedup();
    names
}

fn report() -> (std::path::PathBuf, String) {
    let dir = temp("chart-legends");
    let files = write_campaign_report(&[three_scenarios()], &dir, &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(files.html).unwrap();
    (dir, html)
}

#[test]
fn every_chart_of_a_three_scenario_page_keeps_its_legend_right_of_the_plot() {
    let (dir, html) = report();
    let figures = figures(&html);
    let mut legends_checked = Vec::new();
    for (id, svg) in &figures {
        // Histograms have no legend, so no column is kept free of data.
        let names = series_names(&dir, id);
        if names.is_empty() {
            continue;
        }
        let svg = parse(svg);
        let plot_right = svg.width - f64::from(LEGEND_WIDTH);
        for xs in &svg.polylines {
            let inside = xs.iter().all(|x| *x < plot_right);
            assert!(inside || xs.iter().all(|x| *x >= plot_right), "{id}: a line crosses into the legend: {xs:?}");
        }
        for name in &names {
            let entry = shown(name);
            let at = svg.texts.iter().find(|(_, _, text)| *text == entry);
            let (x, _, _) = at.unwrap_or_else(|| panic!("{id}: no legend entry {entry:?}"));
            assert!(*x >= plot_right, "{id}: the legend entry {entry:?} is on the plot (x {x} < {plot_right})");
        }
        legends_checked.push(id.as_str());
    }
    // Two campaign CDFs, the CDF by scenario, and each scenario's own CDF.
    for id in ["convergence-cdf", "scenario-cdf", "scenario-1-gossip-cccc0000-cdf", "scenario-3-mesh-bbbb0000-cdf"] {
        assert!(legends_checked.contains(&id), "{id} was checked: {legends_checked:?}");
    }
    assert_eq!(legends_checked.len(), 3 + 3, "{legends_checked:?}");
    assert!(figures.iter().any(|(id, _)| id == "crashes-per-run"), "the counter charts are on the page");
}

#[test]
fn count_charts_label_only_whole_numbers_and_centre_one_wide_bars_on_their_value() {
    let (dir, html) = report();
    let mut centred = 0;
    let count_charts: Vec<(String, String)> =
        figures(&html).into_iter().filter(|(id, _)| id.ends_with("-per-run")).collect();
    assert_eq!(count_charts.len(), 5, "drops, crashes, rollbacks, abandoned sessions and conflicts all bit");
    for (id, svg) in &count_charts {
        let svg = parse(svg);
        for (_, _, text) in &svg.texts {
            if let Ok(value) = text.parse::<f64>() {
                assert_eq!(value.fract(), 0.0, "{id}: the axis labels {text}");
            }
        }
        let csv = std::fs::read_to_string(dir.join(format!("{id}.csv"))).unwrap();
        let bins: Vec<(u64, u64)> = (csv.lines().skip(1))
            .map(|line| {
                let mut cells = line.split(',').map(|cell| cell.parse::<u64>().unwrap());
                (cells.next().unwrap(), cells.next().unwrap())
            })
            .collect();
        assert_eq!(bins.len(), svg.bars.len(), "{id}: a bar per bin");
        // The x-axis labels sit below every bar; the y-axis ones left of the plot.
        let axis_y = svg.texts.iter().map(|(_, y, _)| *y).fold(0.0, f64::max);
        for ((from, to), (x, width)) in bins.iter().zip(&svg.bars) {
            let tick =
                svg.texts.iter().find(|(tx, ty, text)| *ty > axis_y - 40.0 && *tx > 70.0 && *text == from.to_string());
            if let (true, Some((tick_x, _, _))) = (from == to, tick) {
                assert!((x + width / 2.0 - tick_x).abs() <= 2.0, "{id}: the bar of {from} is not on its tick");
                centred += 1;
            }
        }
    }
    assert!(centred >= 3, "some one-wide bars were checked against their ticks ({centred})");
}

#[test]
fn captions_print_whole_milliseconds_whole_and_ratios_with_decimals() {
    let (_, html) = report();
    let captions: Vec<&str> =
        (html.split("<figcaption>").skip(1)).map(|rest| rest.split("</figcaption>").next().unwrap()).collect();
    let convergence: Vec<&&str> = captions.iter().filter(|c| c.contains("(ms after the last heal)")).collect();
    assert!(!convergence.is_empty(), "the page has convergence histograms: {captions:?}");
    for caption in convergence {
        let p50 = caption.split("p50 ").nth(1).unwrap().split(',').next().unwrap();
        assert!(!p50.contains('.') && p50.chars().any(|c| c.is_ascii_digit()), "milliseconds print whole: {caption}");
    }
    let ratio = captions.iter().find(|c| c.contains("(ratio)")).expect("a bytes-ratio histogram");
    let p50 = ratio.split("p50 ").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(p50.split('.').nth(1).map(str::len), Some(3), "ratios keep three decimals: {ratio}");
}
