//! Charts drawn with plotters: SVG strings for pages (text stays `<text>`,
//! output is byte-stable) and PNG files for papers. Each chart is a spec
//! that draws on any plotters backend, so both come from one drawing.
//! Text metrics come from one embedded font, never the machine's.

use crate::input::ReportError;
use crate::stats::Bin;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Something drawable on any plotters backend.
pub trait Draw {
    /// The chart's title (names errors).
    fn title(&self) -> &str;
    /// Pixel size.
    fn size(&self) -> (u32, u32) {
        SIZE
    }
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The font is valid TTF shipped by its crate; registration only fails on invalid bytes.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// The chart as an SVG string.
pub fn svg(chart: &impl Draw) -> Result<String, ReportError> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, chart.size()).into_drawing_area();
        chart.draw(&root).map_err(chart_error(chart.title()))?;
        root.present().map_err(|e| chart_error(chart.title())(e.to_string()))?;
    }
    Ok(out)
}

/// The chart as a PNG file at `path`.
pub fn png(chart: &impl Draw, path: &Path) -> Result<(), ReportError> {
    register_font();
    let root = BitMapBackend::new(path, chart.size()).into_drawing_area();
    chart.draw(&root).map_err(chart_error(chart.title()))?;
    root.present().map_err(|e| chart_error(chart.title())(e.to_string()))
}

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
#[derive(Clone, Debug)]
pub struct Lines {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Shaded windows.
    pub bands: Vec<Band>,
    /// A vertical marker and its legend.
    pub marker: Option<(f64, String)>,
}

impl Draw for Lines {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |error: DrawingAreaErrorKind<DB::ErrorType>| error.to_string();
        let (x0, x1) = span(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .chain(self.bands.iter().flat_map(|b| [b.start, b.end])),
        );
        let (_, y1) = span(self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain([0.0]));
        let y1 = y1 * 1.08;
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        for band in &self.bands {
            let colour = band_colour(&band.label);
            chart
                .draw_series(std::iter::once(Rectangle::new([(band.start, 0.0), (band.end, y1)], colour.filled())))
                .map_err(e)?;
        }
        for (index, line) in self.series.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2)))
                .map_err(e)?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        if let Some((x, label)) = &self.marker {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(*x, 0.0), (*x, y1)], BLACK.stroke_width(1))))
                .map_err(e)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(e)?;
        Ok(())
    }
}

/// A histogram.
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// The bins.
    pub bins: Vec<Bin>,
}

impl Draw for Histogram {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |error: DrawingAreaErrorKind<DB::ErrorType>| error.to_string();
        let (x0, x1) = span(self.bins.iter().flat_map(|bin| [bin.low, bin.high]));
        let top = self.bins.iter().map(|bin| bin.count).max().unwrap_or(1).max(1) as f64 * 1.1;
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc("runs")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(self.bins.iter().map(|bin| {
                Rectangle::new([(bin.low, 0.0), (bin.high, bin.count as f64)], PALETTE[0].mix(0.75).filled())
            }))
            .map_err(e)?;
        Ok(())
    }
}

/// A per-node timeline: one row per node, coloured by state over time.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Title.
    pub title: String,
    /// Cluster size.
    pub nodes: u32,
    /// (node, start, end, state) stretches.
    pub rows: Vec<(u32, f64, f64, NodeState)>,
}

impl Draw for Timeline {
    fn title(&self) -> &str {
        &self.title
    }

    fn size(&self) -> (u32, u32) {
        (SIZE.0, (120 + self.nodes.min(60) * 14).max(200))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |error: DrawingAreaErrorKind<DB::ErrorType>| error.to_string();
        let (x0, x1) = span(self.rows.iter().flat_map(|row| [row.1, row.2]));
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, -0.5..f64::from(self.nodes.max(1)) - 0.5)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("node")
            .y_labels(self.nodes.clamp(1, 20) as usize)
            .y_label_formatter(&|y| format!("n{}", y.round() as u32))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(self.rows.iter().map(|(node, start, end, state)| {
                let y = f64::from(*node);
                // Row k is centred on y = k, where the axis labels n<k>.
                Rectangle::new([(*start, y - 0.4), (*end, y + 0.4)], state.colour().filled())
            }))
            .map_err(e)?;
        for state in [NodeState::Up, NodeState::Partitioned, NodeState::Paused, NodeState::Down] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(e)?
                .label(state.name())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], state.colour().filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(e)?;
        Ok(())
    }
}
