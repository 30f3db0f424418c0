//! Charts as SVG strings, drawn with plotters' SVG backend (text stays
//! `<text>`, so no font files are needed and output is byte-stable).

use crate::input::ReportError;
use crate::stats::Bin;
use plotters::prelude::*;

/// Chart size in pixels.
const SIZE: (u32, u32) = (860, 320);
/// Series colours (a colour-blind-safe palette).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points, ascending in x.
    pub points: Vec<(f64, f64)>,
}

/// A shaded window of the x axis (a fault).
#[derive(Clone, Debug)]
pub struct Band {
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
    /// What it is (colours bands of one label alike).
    pub label: String,
}

/// A node's state over one stretch of time, for timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Up and connected.
    Up,
    /// Up but some link is cut.
    Partitioned,
    /// Frozen.
    Paused,
    /// Crashed.
    Down,
}

impl NodeState {
    fn colour(self) -> RGBColor {
        match self {
            Self::Up => RGBColor(0, 158, 115),
            Self::Partitioned => RGBColor(230, 159, 0),
            Self::Paused => RGBColor(86, 180, 233),
            Self::Down => RGBColor(213, 94, 0),
        }
    }

    /// Its legend name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Partitioned => "partitioned",
            Self::Paused => "paused",
            Self::Down => "down",
        }
    }
}

fn chart_error(chart: &str) -> impl Fn(String) -> ReportError + '_ {
    move |reason| ReportError::Chart { chart: chart.to_owned(), reason }
}

fn band_colour(label: &str) -> RGBAColor {
    match label {
        "crash" => RGBColor(213, 94, 0).mix(0.18),
        "pause" => RGBColor(86, 180, 233).mix(0.22),
        _ => RGBColor(230, 159, 0).mix(0.18),
    }
}

fn span(points: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if high > low { (low, high) } else { (low, low + 1.0) }
}

/// A line chart with shaded bands and an optional vertical marker.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    bands: &[Band],
    marker: Option<(f64, &str)>,
) -> Result<String, ReportError> {
    let error = chart_error(title);
    let (x0, x1) = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(bands.iter().flat_map(|b| [b.start, b.end])),
    );
    let (_, y1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain([0.0]));
    let y1 = y1 * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(|e| error(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        for band in bands {
            let colour = band_colour(&band.label);
            chart
                .draw_series(std::iter::once(Rectangle::new([(band.start, 0.0), (band.end, y1)], colour.filled())))
                .map_err(|e| error(e.to_string()))?;
        }
        for (index, line) in series.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| error(e.to_string()))?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        if let Some((x, label)) = marker {
            let black = BLACK.stroke_width(1);
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, y1)], black)))
                .map_err(|e| error(e.to_string()))?
                .label(label.to_owned())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    Ok(svg)
}

/// A histogram.
pub fn histogram(title: &str, x_label: &str, bins: &[Bin]) -> Result<String, ReportError> {
    let error = chart_error(title);
    let (x0, x1) = span(bins.iter().flat_map(|bin| [bin.low, bin.high]));
    let top = bins.iter().map(|bin| bin.count).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(|e| error(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("runs")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        chart
            .draw_series(bins.iter().map(|bin| {
                Rectangle::new([(bin.low, 0.0), (bin.high, bin.count as f64)], PALETTE[0].mix(0.75).filled())
            }))
            .map_err(|e| error(e.to_string()))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    Ok(svg)
}

/// A per-node timeline: one row per node, coloured by state over time.
pub fn timeline(title: &str, nodes: u32, rows: &[(u32, f64, f64, NodeState)]) -> Result<String, ReportError> {
    let error = chart_error(title);
    let (x0, x1) = span(rows.iter().flat_map(|row| [row.1, row.2]));
    let height = (120 + nodes.min(60) * 14).max(200);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..f64::from(nodes.max(1)))
            .map_err(|e| error(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("node")
            .y_labels(nodes.clamp(1, 20) as usize)
            .y_label_formatter(&|y| format!("n{}", *y as u32))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        chart
            .draw_series(rows.iter().map(|(node, start, end, state)| {
                let y = f64::from(*node);
                Rectangle::new([(*start, y + 0.1), (*end, y + 0.9)], state.colour().filled())
            }))
            .map_err(|e| error(e.to_string()))?;
        for state in [NodeState::Up, NodeState::Partitioned, NodeState::Paused, NodeState::Down] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| error(e.to_string()))?
                .label(state.name())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], state.colour().filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    Ok(svg)
}
