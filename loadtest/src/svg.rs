//! Small SVG line charts for the reports: where a picture says more than a table
//! (write latency over time around each leader kill, placements over time).
//!
//! Deliberately minimal — linear axes with round tick values, one polyline per series,
//! dashed vertical markers with a label (a kill, a heal) — and dependency-free, so a
//! report is a folder of files any browser shows.

use std::fmt::Write as _;

/// One line of a chart: (x, y) points in data units, in x order.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A vertical marker at `x` (data units), labelled.
#[derive(Debug, Clone)]
pub struct Marker {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 430.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 70.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

impl Chart {
    /// The chart as a standalone SVG document.
    pub fn render(&self) -> String {
        let (x_range, y_range) = self.ranges();
        let plot = Plot { x_range, y_range };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        plot.axes(&mut svg, &self.x_label, &self.y_label);
        for (marker, row) in self.markers.iter().zip(plot.label_rows(&self.markers)) {
            plot.marker(&mut svg, marker, row);
        }
        for (i, series) in self.series.iter().enumerate() {
            plot.line(&mut svg, series, COLORS[i % COLORS.len()]);
        }
        self.legend(&mut svg);
        svg.push_str("</svg>\n");
        svg
    }

    /// Data bounds, padded so that flat or single-point data still draws.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, y) in points {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        for marker in &self.markers {
            x0 = x0.min(marker.x);
            x1 = x1.max(marker.x);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= 0.0 {
            y1 = 1.0;
        }
        ((x0, x1), (0.0, nice_ceiling(y1 * 1.05)))
    }

    /// The series' names in a row under the chart, each as wide as its text
    /// (about 7 px a character at 12 px).
    fn legend(&self, svg: &mut String) {
        let mut x = LEFT + 10.0;
        for (i, series) in self.series.iter().enumerate() {
            let y = HEIGHT - 12.0;
            let color = COLORS[i % COLORS.len()];
            let _ = writeln!(
                svg,
                r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="3"/><text x="{}" y="{y}">{}</text>"#,
                y - 4.0,
                x + 18.0,
                y - 4.0,
                x + 24.0,
                escape(&series.name)
            );
            x += 24.0 + 7.0 * series.name.chars().count() as f64 + 24.0;
        }
    }
}

/// Maps data units to the drawing area.
struct Plot {
    x_range: (f64, f64),
    y_range: (f64, f64),
}

impl Plot {
    fn x(&self, x: f64) -> f64 {
        let (a, b) = self.x_range;
        LEFT + (x - a) / (b - a) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, y: f64) -> f64 {
        let (a, b) = self.y_range;
        HEIGHT - BOTTOM - (y - a) / (b - a) * (HEIGHT - TOP - BOTTOM)
    }

    fn axes(&self, svg: &mut String, x_label: &str, y_label: &str) {
        let (x_bottom, x_top) = (self.y(self.y_range.0), self.y(self.y_range.1));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{x_bottom}" x2="{}" y2="{x_bottom}" stroke="#333"/><line x1="{LEFT}" y1="{x_top}" x2="{LEFT}" y2="{x_bottom}" stroke="#333"/>"##,
            WIDTH - RIGHT
        );
        for tick in ticks(self.x_range) {
            let x = self.x(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{x}" y1="{x_bottom}" x2="{x}" y2="{}" stroke="#333"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                x_bottom + 5.0,
                x_bottom + 18.0,
                label(tick)
            );
        }
        for tick in ticks(self.y_range) {
            let y = self.y(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                label(tick)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            x_bottom + 36.0,
            escape(x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
            (TOP + x_bottom) / 2.0,
            (TOP + x_bottom) / 2.0,
            escape(y_label)
        );
    }

    /// The text row of each marker's label: the first row where it does not
    /// run into the label before it (markers close together stack downwards).
    fn label_rows(&self, markers: &[Marker]) -> Vec<usize> {
        const ROWS: usize = 4;
        let mut row_ends = [f64::NEG_INFINITY; ROWS];
        markers
            .iter()
            .map(|marker| {
                let x = self.x(marker.x);
                let row = (0..ROWS).find(|&r| row_ends[r] <= x).unwrap_or(0);
                row_ends[row] = x + 3.0 + 7.0 * marker.label.chars().count() as f64 + 4.0;
                row
            })
            .collect()
    }

    fn marker(&self, svg: &mut String, marker: &Marker, row: usize) {
        let x = self.x(marker.x);
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#999" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#666">{}</text>"##,
            TOP,
            self.y(self.y_range.0),
            x + 3.0,
            TOP + 10.0 + 13.0 * row as f64,
            escape(&marker.label)
        );
    }

    fn line(&self, svg: &mut String, series: &Series, color: &str) {
        if series.points.is_empty() {
            return;
        }
        let mut path = String::new();
        for &(x, y) in &series.points {
            let _ = write!(path, "{:.1},{:.1} ", self.x(x), self.y(y));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.trim_end()
        );
    }
}

/// About five round tick values across `range`.
fn ticks((low, high): (f64, f64)) -> Vec<f64> {
    let step = nice_step((high - low) / 5.0);
    let mut tick = (low / step).ceil() * step;
    let mut out = Vec::new();
    while tick <= high + step * 1e-9 && out.len() < 20 {
        out.push(tick);
        tick += step;
    }
    out
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// The smallest round value (a multiple of a 1/2/5 step about a tenth of it)
/// at least `value`: the top of the y axis, without much empty room.
fn nice_ceiling(value: f64) -> f64 {
    let step = nice_step(value / 10.0);
    (value / step).ceil() * step
}

fn label(value: f64) -> String {
    if value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks((0.0, 10.0)), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_ceiling(7.3), 8.0);
        assert_eq!(label(2.50), "2.5");
    }

    #[test]
    fn a_chart_renders_its_series_markers_and_escaped_text() {
        let chart = Chart {
            title: "latency <ms>".into(),
            x_label: "s".into(),
            y_label: "ms".into(),
            series: vec![Series {
                name: "gantry".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            }],
            markers: vec![Marker {
                x: 1.5,
                label: "kill 1".into(),
            }],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("kill 1"));
        assert!(svg.contains("latency &lt;ms&gt;"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn labels_of_markers_close_together_stack() {
        let marker = |x: f64| Marker {
            x,
            label: "restart-all".into(),
        };
        let plot = Plot {
            x_range: (0.0, 100.0),
            y_range: (0.0, 1.0),
        };
        let markers = [marker(10.0), marker(11.0), marker(12.0), marker(60.0)];
        assert_eq!(plot.label_rows(&markers), vec![0, 1, 2, 0]);
    }

    #[test]
    fn empty_and_flat_data_still_draw() {
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "flat".into(),
                points: vec![(3.0, 0.0)],
            }],
            markers: vec![],
        };
        assert!(!chart.render().contains("NaN"));
    }
}
