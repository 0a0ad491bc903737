//! SVG line charts, drawn with plotters' SVG backend (no system libraries).
//!
//! A [`Chart`] has a title, axis labels, a legend and any number of [`Series`]: lines, step
//! lines (for counts such as servers) and shaded bands (a min–max range). Series can be put
//! on a second y axis on the right, for example a request rate against a number of servers.
//! [`render_svg`] stacks several charts vertically in one SVG document.

use plotters::coord::Shift;
use plotters::prelude::*;

/// How a series is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesKind {
    /// Straight lines between points.
    Line,
    /// A step function: each value holds until the next point (for counts).
    Step,
    /// A shaded band between `lower` (the series' points) and these upper points, which must
    /// have the same x values.
    Band {
        /// Upper edge of the band.
        upper: Vec<(f64, f64)>,
    },
    /// A marker at each point, no line (for single observations, such as flagged runs).
    Points,
}

/// Which y axis a series is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Axis {
    /// The left axis.
    #[default]
    Left,
    /// The right axis (needs [`Chart::y2_label`]).
    Right,
}

/// One named series of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points, in increasing x order. Non-finite values are skipped.
    pub points: Vec<(f64, f64)>,
    /// How to draw it.
    pub kind: SeriesKind,
    /// Which y axis.
    pub axis: Axis,
    /// Its colour, as an index into the palette; `None` takes the series' own index, so
    /// that series drawn together (a mean line and its min–max band) can share a colour.
    pub color: Option<usize>,
}

impl Series {
    /// A line series on the left axis.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            kind: SeriesKind::Line,
            axis: Axis::Left,
            color: None,
        }
    }

    /// A step series on the left axis.
    pub fn step(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            kind: SeriesKind::Step,
            axis: Axis::Left,
            color: None,
        }
    }

    /// A shaded band from `lower` to `upper` on the left axis.
    pub fn band(name: impl Into<String>, lower: Vec<(f64, f64)>, upper: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points: lower,
            kind: SeriesKind::Band { upper },
            axis: Axis::Left,
            color: None,
        }
    }

    /// A marker at each point, on the left axis.
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            kind: SeriesKind::Points,
            axis: Axis::Left,
            color: None,
        }
    }

    /// Draws the series in the palette's colour number `index` (modulo its size).
    pub fn colored(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    /// Moves the series to the right axis.
    pub fn on_right(mut self) -> Self {
        self.axis = Axis::Right;
        self
    }
}

/// How x values are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    /// Plain numbers.
    #[default]
    Number,
    /// Seconds, labelled as `h:mm:ss` / `m:ss` elapsed time.
    Elapsed,
    /// Unix epoch seconds, labelled as local `HH:MM:SS`.
    Clock,
    /// log2 of a number of bytes (a log scale of sizes), labelled as the size: `1 KiB`,
    /// `64 KiB`, `16 MiB`.
    Log2Bytes,
}

/// A chart: title, axes, series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    /// Caption above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the left y axis.
    pub y_label: String,
    /// Label of the right y axis; series on [`Axis::Right`] need it.
    pub y2_label: Option<String>,
    /// How x values are labelled.
    pub x_axis: XAxis,
    /// The series, drawn in order; the legend lists them in the same order.
    pub series: Vec<Series>,
    /// Start the y axes at zero (the default for rates and counts) instead of at the data.
    pub y_from_zero: bool,
}

impl Chart {
    /// A chart with a title and axis labels, y from zero, and no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            y_from_zero: true,
            ..Chart::default()
        }
    }

    /// Adds a series.
    pub fn with(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Sets the right axis label.
    pub fn with_y2(mut self, label: impl Into<String>) -> Self {
        self.y2_label = Some(label.into());
        self
    }

    /// Sets how x values are labelled.
    pub fn with_x_axis(mut self, x: XAxis) -> Self {
        self.x_axis = x;
        self
    }

    /// Renders this chart alone as an SVG document of `width` × `height` pixels.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, ChartError> {
        render_svg(std::slice::from_ref(self), width, height)
    }
}

/// A chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The chart has no finite point to draw.
    #[error("chart \"{0}\" has no data to plot")]
    NoData(String),
    /// A series is on the right axis but the chart has no right axis label.
    #[error("chart \"{0}\": series \"{1}\" is on the right axis, which has no label")]
    NoRightAxis(String, String),
    /// plotters failed.
    #[error("cannot draw chart \"{0}\": {1}")]
    Draw(String, String),
}

/// The palette, chosen to stay distinguishable for common colour-vision deficiencies.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(100, 100, 100),
    RGBColor(240, 228, 66),
];

/// Renders `charts` stacked vertically, each `width` × `panel_height`, into one SVG document.
pub fn render_svg(charts: &[Chart], width: u32, panel_height: u32) -> Result<String, ChartError> {
    let height = panel_height * charts.len().max(1) as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| ChartError::Draw("(background)".into(), e.to_string()))?;
        let panels = root.split_evenly((charts.len().max(1), 1));
        for (chart, area) in charts.iter().zip(panels.iter()) {
            draw(chart, area)?;
        }
        root.present()
            .map_err(|e| ChartError::Draw("(document)".into(), e.to_string()))?;
    }
    Ok(out)
}

fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// (min, max) of the values, or `None` if there are none.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Widens a range so it is never empty and has a little headroom.
fn pad(lo: f64, hi: f64, from_zero: bool) -> (f64, f64) {
    let lo = if from_zero { lo.min(0.0) } else { lo };
    if hi <= lo {
        // All zero on an axis from zero (no errors at all): 0 to 1, not −1 to 1.
        if from_zero && lo == 0.0 {
            return (0.0, 1.0);
        }
        return (lo - 1.0, hi + 1.0);
    }
    let span = hi - lo;
    (
        if from_zero && lo >= 0.0 {
            lo
        } else {
            lo - span * 0.05
        },
        hi + span * 0.08,
    )
}

fn points_of(s: &Series) -> impl Iterator<Item = &(f64, f64)> {
    let upper: &[(f64, f64)] = match &s.kind {
        SeriesKind::Band { upper } => upper,
        _ => &[],
    };
    s.points.iter().chain(upper.iter()).filter(|p| finite(p))
}

/// An x label. Clock times get as many decimals of a second as ticks `span / 10` apart need
/// to differ (`13:43:14.2`, `13:43:14.4` for a two-second plot), up to milliseconds.
fn format_x(kind: XAxis, v: f64, span: f64) -> String {
    match kind {
        XAxis::Number => {
            if v.abs() >= 1000.0 || v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }
        XAxis::Log2Bytes => {
            let bytes = 2f64.powf(v);
            let (div, unit) = [(30, "GiB"), (20, "MiB"), (10, "KiB"), (0, "B")]
                .into_iter()
                .map(|(p, u)| (2f64.powi(p), u))
                .find(|(d, _)| bytes >= *d)
                .unwrap_or((1.0, "B"));
            let n = bytes / div;
            if (n - n.round()).abs() < 0.05 {
                format!("{:.0} {unit}", n.round())
            } else {
                format!("{n:.1} {unit}")
            }
        }
        XAxis::Elapsed => {
            let s = v.max(0.0).round() as u64;
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            }
        }
        XAxis::Clock => {
            let decimals = if span > 0.0 && span.is_finite() && span < 10.0 {
                (-(span / 10.0).log10()).ceil().clamp(0.0, 3.0) as usize
            } else {
                0
            };
            let scale = 10i64.pow(decimals as u32);
            let total = (v * scale as f64).round() as i64;
            let (secs, frac) = (total.div_euclid(scale), total.rem_euclid(scale));
            chrono::DateTime::from_timestamp(secs, 0)
                .map(|t| {
                    let hms = t.with_timezone(&chrono::Local).format("%H:%M:%S");
                    if decimals == 0 {
                        hms.to_string()
                    } else {
                        format!("{hms}.{frac:0decimals$}")
                    }
                })
                .unwrap_or_default()
        }
    }
}

/// A y label. Whole numbers and values of 100 or more have no decimals, others one; unless
/// the axis spans so little that ticks would then get the same label (201.6 and 201.8 both
/// "202"): then as many decimals as the tick spacing needs.
fn format_y(v: f64, span: f64) -> String {
    // About ten ticks: the decimals that tell apart values span / 10 apart.
    let needed = if span > 0.0 && span.is_finite() {
        (-(span / 10.0).log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        0
    };
    if v.abs() >= 100.0 && needed >= 1 || needed >= 2 {
        format!("{v:.needed$}")
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn step_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &p) in points.iter().enumerate() {
        if i > 0 {
            out.push((p.0, points[i - 1].1));
        }
        out.push(p);
    }
    out
}

fn draw(chart: &Chart, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError> {
    let derr = |e: &dyn std::fmt::Display| ChartError::Draw(chart.title.clone(), e.to_string());
    for s in &chart.series {
        if s.axis == Axis::Right && chart.y2_label.is_none() {
            return Err(ChartError::NoRightAxis(chart.title.clone(), s.name.clone()));
        }
    }
    let all = || chart.series.iter().flat_map(points_of);
    let (x_lo, x_hi) =
        bounds(all().map(|p| p.0)).ok_or_else(|| ChartError::NoData(chart.title.clone()))?;
    let side = |axis: Axis| {
        bounds(
            chart
                .series
                .iter()
                .filter(|s| s.axis == axis)
                .flat_map(points_of)
                .map(|p| p.1),
        )
        .map(|(lo, hi)| pad(lo, hi, chart.y_from_zero))
        .unwrap_or((0.0, 1.0))
    };
    let (x_lo, x_hi) = if x_hi <= x_lo {
        (x_lo - 1.0, x_hi + 1.0)
    } else {
        (x_lo, x_hi)
    };
    let (y_lo, y_hi) = side(Axis::Left);
    let (y2_lo, y2_hi) = side(Axis::Right);

    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    if chart.y2_label.is_some() {
        builder.right_y_label_area_size(60);
    }
    let mut ctx = builder
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(|e| derr(&e))?
        .set_secondary_coord(x_lo..x_hi, y2_lo..y2_hi);
    let x_kind = chart.x_axis;
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&|v| format_x(x_kind, *v, x_hi - x_lo))
        .y_label_formatter(&|v| format_y(*v, y_hi - y_lo))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| derr(&e))?;
    if let Some(y2) = &chart.y2_label {
        ctx.configure_secondary_axes()
            .y_desc(y2.as_str())
            .y_label_formatter(&|v| format_y(*v, y2_hi - y2_lo))
            .draw()
            .map_err(|e| derr(&e))?;
    }

    for (i, s) in chart.series.iter().enumerate() {
        let color = PALETTE[s.color.unwrap_or(i) % PALETTE.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(finite).collect();
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        macro_rules! series_on {
            ($draw:ident) => {{
                let anno = match &s.kind {
                    SeriesKind::Line => ctx.$draw(LineSeries::new(pts, style)),
                    SeriesKind::Step => ctx.$draw(LineSeries::new(step_points(&pts), style)),
                    SeriesKind::Band { upper } => {
                        let mut poly: Vec<(f64, f64)> =
                            upper.iter().copied().filter(finite).collect();
                        poly.extend(pts.iter().rev().copied());
                        ctx.$draw(std::iter::once(Polygon::new(
                            poly,
                            color.mix(0.25).filled(),
                        )))
                    }
                    SeriesKind::Points => ctx.$draw(pts.iter().map(|&p| {
                        Cross::new(
                            p,
                            5,
                            ShapeStyle {
                                stroke_width: 2,
                                ..style
                            },
                        )
                    })),
                }
                .map_err(|e| derr(&e))?;
                let legend_color = color;
                let anno = anno.label(s.name.as_str());
                if s.kind == SeriesKind::Points {
                    anno.legend(move |(x, y)| {
                        Cross::new((x + 8, y), 4, legend_color.stroke_width(2))
                    });
                } else {
                    anno.legend(move |(x, y)| {
                        Rectangle::new([(x, y - 4), (x + 16, y + 4)], legend_color.filled())
                    });
                }
            }};
        }
        match s.axis {
            Axis::Left => series_on!(draw_series),
            Axis::Right => series_on!(draw_secondary_series),
        }
    }
    if !chart.series.is_empty() {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| derr(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chart {
        Chart::new("Scaling", "time", "req/s")
            .with_y2("servers")
            .with_x_axis(XAxis::Elapsed)
            .with(Series::line(
                "rate",
                vec![(0.0, 0.0), (60.0, 25.0), (120.0, 132.0)],
            ))
            .with(Series::step("active", vec![(0.0, 2.0), (60.0, 3.0), (120.0, 8.0)]).on_right())
            .with(Series::band(
                "range",
                vec![(0.0, 1.0), (120.0, 2.0)],
                vec![(0.0, 3.0), (120.0, 5.0)],
            ))
    }

    #[test]
    fn renders_well_formed_svg_with_title_labels_and_legend() {
        let svg = sample().to_svg(800, 400).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for want in [
            "Scaling", "time", "req/s", "servers", "rate", "active", "range",
        ] {
            assert!(
                texts.iter().any(|t| t.trim() == want),
                "missing text {want:?} in {texts:?}"
            );
        }
        // Two line series become polylines; the band is a polygon.
        assert!(
            doc.descendants()
                .filter(|n| n.has_tag_name("polyline"))
                .count()
                >= 2
        );
        assert!(doc.descendants().any(|n| n.has_tag_name("polygon")));
        // Elapsed-time labels.
        assert!(texts.iter().any(|t| t.contains(':')), "{texts:?}");
    }

    #[test]
    fn each_y_axis_labels_its_own_range() {
        // A narrow left axis (201.5–203 ms) and a wide right one (0–100 %): the right axis's
        // labels are whole numbers, not the left axis's tenths.
        let mut chart = Chart::new("reply", "rate", "ms")
            .with_y2("cpu")
            .with(Series::line("reply", vec![(0.0, 201.5), (1.0, 203.0)]))
            .with(Series::line("cpu", vec![(0.0, 0.0), (1.0, 100.0)]).on_right());
        chart.y_from_zero = false;
        let svg = chart.to_svg(800, 400).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.iter().any(|t| t.trim() == "100"), "{texts:?}");
        assert!(!texts.iter().any(|t| t.trim() == "100.0"), "{texts:?}");
        assert!(texts.iter().any(|t| t.trim() == "202.0"), "{texts:?}");
    }

    #[test]
    fn stacks_panels() {
        let a = Chart::new("A", "x", "y").with(Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)]));
        let b = Chart::new("B", "x", "y").with(Series::line("b", vec![(0.0, 1.0), (1.0, 2.0)]));
        let svg = render_svg(&[a, b], 600, 300).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(doc.root_element().attribute("height"), Some("600"));
        let texts: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        assert!(texts.contains(&"A") && texts.contains(&"B"), "{texts:?}");
    }

    #[test]
    fn empty_or_invalid_charts_are_errors() {
        let c = Chart::new("Empty", "x", "y").with(Series::line("nan", vec![(f64::NAN, 1.0)]));
        assert!(matches!(c.to_svg(400, 300), Err(ChartError::NoData(_))));
        let c = Chart::new("NoY2", "x", "y").with(Series::line("r", vec![(0.0, 1.0)]).on_right());
        assert!(matches!(
            c.to_svg(400, 300),
            Err(ChartError::NoRightAxis(..))
        ));
    }

    #[test]
    fn series_can_share_a_colour_and_mark_points() {
        let c = Chart::new("Shared", "x", "y")
            .with(
                Series::band(
                    "a range",
                    vec![(0.0, 1.0), (1.0, 1.0)],
                    vec![(0.0, 3.0), (1.0, 4.0)],
                )
                .colored(2),
            )
            .with(Series::line("a", vec![(0.0, 2.0), (1.0, 2.5)]).colored(2))
            .with(Series::points("flagged", vec![(1.0, 2.5)]).colored(1));
        let svg = c.to_svg(400, 300).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let rgb = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let uses = |tag: &str, color: &str| {
            doc.descendants().any(|n| {
                n.has_tag_name(tag)
                    && [n.attribute("stroke"), n.attribute("fill")]
                        .iter()
                        .flatten()
                        .any(|a| a.eq_ignore_ascii_case(color))
            })
        };
        let green = rgb(PALETTE[2]);
        assert!(uses("polygon", &green), "the band is green: {svg}");
        assert!(uses("polyline", &green), "so is its line");
        // A cross is two lines in the second colour.
        let orange = rgb(PALETTE[1]);
        assert!(uses("line", &orange), "{svg}");
    }

    #[test]
    fn a_single_point_still_draws() {
        let c = Chart::new("One", "x", "y").with(Series::line("p", vec![(5.0, 5.0)]));
        assert!(c.to_svg(400, 300).is_ok());
    }

    #[test]
    fn step_points_hold_values() {
        assert_eq!(
            step_points(&[(0.0, 1.0), (2.0, 3.0)]),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 3.0)]
        );
    }

    #[test]
    fn y_labels_tell_close_ticks_apart() {
        // As before where ticks are far enough apart.
        assert_eq!(format_y(250.0, 400.0), "250");
        assert_eq!(format_y(2.0, 5.0), "2");
        assert_eq!(format_y(2.5, 5.0), "2.5");
        assert_eq!(format_y(1.0, 0.0), "1");
        // A reply time axis from 201.5 to 203: ticks 0.2 ms apart.
        assert_eq!(format_y(201.6, 1.5), "201.6");
        assert_eq!(format_y(202.0, 1.5), "202.0");
        assert_eq!(format_y(1.25, 0.1), "1.25");
    }

    #[test]
    fn x_labels() {
        assert_eq!(format_x(XAxis::Elapsed, 3725.0, 4000.0), "1:02:05");
        assert_eq!(format_x(XAxis::Elapsed, 65.0, 100.0), "1:05");
        assert_eq!(format_x(XAxis::Number, 1500.0, 2000.0), "1500");
        assert_eq!(format_x(XAxis::Number, 0.25, 1.0), "0.25");
        assert_eq!(format_x(XAxis::Log2Bytes, 10.0, 14.0), "1 KiB");
        assert_eq!(format_x(XAxis::Log2Bytes, 24.0, 14.0), "16 MiB");
        assert_eq!(format_x(XAxis::Log2Bytes, 11.5, 14.0), "2.8 KiB");
        assert_eq!(format_x(XAxis::Log2Bytes, 3.0, 14.0), "8 B");
    }

    #[test]
    fn clock_labels_have_the_precision_the_span_needs() {
        // Ticks 0.2 s apart over two seconds: every label differs.
        let t0 = 1_700_000_000.0;
        let labels: Vec<String> = (0..10)
            .map(|i| format_x(XAxis::Clock, t0 + f64::from(i) * 0.2, 2.0))
            .collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique.len(), 10, "{labels:?}");
        assert!(labels[1].ends_with(".2"), "{labels:?}");
        // Over minutes, whole seconds.
        assert!(!format_x(XAxis::Clock, t0, 600.0).contains('.'));
        // A plot of sub-second samples labels its ticks apart.
        let chart = Chart::new("io", "time", "kB/s")
            .with_x_axis(XAxis::Clock)
            .with(Series::line(
                "w",
                (0..8).map(|i| (t0 + f64::from(i) * 0.25, 1.0)).collect(),
            ));
        let svg = chart.to_svg(800, 300).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let ticks: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .filter(|t| t.matches(':').count() == 2)
            .collect();
        // (plotters writes each label twice, one after the other.)
        let mut ticks = ticks;
        ticks.dedup();
        assert!(ticks.len() >= 3, "{ticks:?}");
        assert!(
            ticks.windows(2).all(|w| w[0] < w[1]),
            "labels repeat: {ticks:?}"
        );
    }

    #[test]
    fn an_all_zero_series_from_zero_has_a_zero_to_one_axis() {
        assert_eq!(pad(0.0, 0.0, true), (0.0, 1.0));
        let chart = Chart::new("Failed requests", "rate", "%")
            .with(Series::line("errors", vec![(100.0, 0.0), (200.0, 0.0)]));
        let svg = chart.to_svg(800, 300).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        assert!(
            !texts
                .iter()
                .any(|t| t.starts_with('-') || t.starts_with('−')),
            "{texts:?}"
        );
        assert!(texts.contains(&"1.0") || texts.contains(&"1"), "{texts:?}");
    }
}
