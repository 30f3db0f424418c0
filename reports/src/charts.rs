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

/// Width of the legend column right of a chart's plot: legends never sit on
/// the data (the end of a CDF and the last lane indexes are where
/// convergence shows).
pub const LEGEND_WIDTH: u32 = 190;
/// Characters of a legend name shown (longer names end in "...").
pub const LEGEND_CHARS: usize = 26;

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    /// A line of this colour and width.
    Line(RGBColor, u32),
    /// A filled block.
    Block(RGBColor),
}

/// Splits `root` into the plot and the legend column (when there is a legend).
fn with_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: usize,
) -> (DrawingArea<DB, Shift>, Option<DrawingArea<DB, Shift>>) {
    if entries == 0 {
        return (root.clone(), None);
    }
    let width = root.dim_in_pixel().0;
    let (plot, legend) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    (plot, Some(legend))
}

/// Draws the entries down the legend column.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(String, Mark)]) -> Result<(), String> {
    let e = |error: DrawingAreaErrorKind<DB::ErrorType>| error.to_string();
    for (index, (name, mark)) in entries.iter().enumerate() {
        let y = 44 + 20 * index as i32;
        match *mark {
            Mark::Line(colour, width) => {
                area.draw(&PathElement::new(vec![(6, y), (26, y)], colour.stroke_width(width))).map_err(e)?;
            }
            Mark::Block(colour) => area.draw(&Rectangle::new([(8, y - 5), (24, y + 5)], colour.filled())).map_err(e)?,
        }
        let shown: String = if name.chars().count() > LEGEND_CHARS {
            name.chars().take(LEGEND_CHARS - 3).collect::<String>() + "..."
        } else {
            name.clone()
        };
        area.draw(&Text::new(shown, (32, y - 7), ("sans-serif", 13))).map_err(e)?;
    }
    Ok(())
}

/// An axis tick as a reader writes it: whole values without decimals
/// ("2000", not "2000.0"), others with at most three, trailing zeros cut.
pub fn tick(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        return format!("{:.0}", value.round());
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
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
                .chain(self.bands.iter().flat_map(|b| [b.start, b.end]))
                .chain(self.marker.iter().map(|(x, _)| *x)),
        );
        // A little room on the right, so the last step of a CDF and a
        // marker at the last sample do not sit on the plot's border.
        let x1 = x1 + (x1 - x0) * 0.03;
        let (_, y1) = span(self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain([0.0]));
        let whole_y = self.series.iter().flat_map(|s| &s.points).all(|p| p.1.fract() == 0.0);
        let y1 = y1 * 1.08;
        root.fill(&WHITE).map_err(e)?;
        let mut legend: Vec<(String, Mark)> = (self.series.iter().enumerate())
            .map(|(index, line)| (line.name.clone(), Mark::Line(PALETTE[index % PALETTE.len()], 2)))
            .collect();
        if let Some((_, label)) = &self.marker {
            legend.push((label.clone(), Mark::Line(BLACK, 1)));
        }
        let (plot, legend_area) = with_legend(root, legend.len());
        let mut chart = ChartBuilder::on(&plot)
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
            .x_label_formatter(&tick)
            // Lines of whole values (counts, lane indexes, bytes) get no
            // label between two whole numbers ("2.5 distinct hashes").
            .y_label_formatter(if whole_y { &whole_tick } else { &tick })
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
            chart.draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2))).map_err(e)?;
        }
        if let Some((x, _)) = &self.marker {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(*x, 0.0), (*x, y1)], BLACK.stroke_width(1))))
                .map_err(e)?;
        }
        match legend_area {
            Some(area) => draw_legend(&area, &legend),
            None => Ok(()),
        }
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
    /// The values are counts: the x axis labels only whole numbers, and a
    /// bin one wide is drawn centred on its value (the bar of "2 crashes"
    /// stands on 2, not between 2 and 3).
    pub whole: bool,
}

/// Labels only whole values: counts have no ticks between them.
fn whole_tick(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-9 { tick(value) } else { String::new() }
}

impl Histogram {
    /// Each bin's drawn edges.
    fn edges(&self) -> impl Iterator<Item = (f64, f64, usize)> + '_ {
        self.bins.iter().map(|bin| {
            let centred = self.whole && (bin.high - bin.low - 1.0).abs() < 1e-9;
            let shift = if centred { 0.5 } else { 0.0 };
            (bin.low - shift, bin.high - shift, bin.count)
        })
    }
}

impl Draw for Histogram {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |error: DrawingAreaErrorKind<DB::ErrorType>| error.to_string();
        let (x0, x1) = span(self.edges().flat_map(|(low, high, _)| [low, high]));
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
            .x_label_formatter(if self.whole { &whole_tick } else { &tick })
            // Counts are whole: a tick between two counts gets no label.
            .y_label_formatter(&whole_tick)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(self.edges().map(|(low, high, count)| {
                Rectangle::new([(low, 0.0), (high, count as f64)], PALETTE[0].mix(0.75).filled())
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
        let legend: Vec<(String, Mark)> = [NodeState::Up, NodeState::Partitioned, NodeState::Paused, NodeState::Down]
            .into_iter()
            .map(|state| (state.name().to_owned(), Mark::Block(state.colour())))
            .collect();
        let (plot, legend_area) = with_legend(root, legend.len());
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, -0.5..f64::from(self.nodes.max(1)) - 0.5)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .x_label_formatter(&tick)
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
        match legend_area {
            Some(area) => draw_legend(&area, &legend),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The x of the SVG `<text>` element whose content is `content`.
    fn text_x(svg: &str, content: &str) -> f64 {
        // plotters writes `<text ...>` and the content on lines of their own.
        let at = svg.find(&format!(">\n{content}\n</text>")).unwrap_or_else(|| panic!("no text {content:?} in {svg}"));
        let open = svg[..at].rfind("<text").unwrap();
        let x = svg[open..at].split("x=\"").nth(1).unwrap().split('"').next().unwrap();
        x.parse().unwrap()
    }

    /// The x pixels of each polyline drawn (data lines, mesh and legend swatches).
    fn polylines_x(svg: &str) -> Vec<Vec<f64>> {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|element| element.split("points=\"").nth(1)?.split('"').next())
            .map(|points| points.split_whitespace().filter_map(|point| point.split(',').next()?.parse().ok()).collect())
            .collect()
    }

    #[test]
    fn ticks_print_whole_values_without_decimals() {
        assert_eq!(
            [2000.0, 0.5, 0.1 + 0.2, 1.25, -3.0, 0.0].map(|v| tick(&v)),
            ["2000", "0.5", "0.3", "1.25", "-3", "0"]
        );
    }

    #[test]
    fn legends_sit_right_of_the_plot_never_on_the_data() {
        let plot_right = f64::from(SIZE.0 - LEGEND_WIDTH);
        let lines = Lines {
            title: "CDF".into(),
            x_label: "ms".into(),
            y_label: "share".into(),
            series: vec![
                Series { name: "first-campaign".into(), points: vec![(0.0, 0.0), (50.0, 0.4), (100.0, 1.0)] },
                Series {
                    name: "a-campaign-with-a-very-long-results-file-name.jsonl".into(),
                    points: vec![(0.0, 0.0), (100.0, 1.0)],
                },
            ],
            bands: Vec::new(),
            marker: Some((80.0, "converged".into())),
        };
        let svg = svg(&lines).unwrap();
        for name in ["first-campaign", "a-campaign-with-a-very-...", "converged"] {
            assert!(text_x(&svg, name) >= plot_right, "{name} is on the plot");
        }
        // No line crosses into the legend column; the only ones in it are the
        // three legend swatches.
        let lines = polylines_x(&svg);
        assert!(lines.iter().all(|xs| xs.iter().all(|x| *x < plot_right) || xs.iter().all(|x| *x >= plot_right)));
        assert_eq!(lines.iter().filter(|xs| xs.iter().all(|x| *x >= plot_right)).count(), 3, "{lines:?}");

        let timeline = Timeline { title: "nodes".into(), nodes: 3, rows: vec![(0, 0.0, 5.0, NodeState::Up)] };
        let svg = super::svg(&timeline).unwrap();
        for state in ["up", "partitioned", "paused", "down"] {
            assert!(text_x(&svg, state) >= plot_right, "{state} is on the timeline");
        }
    }
}
