//! The SVG chart of a [`History`]: one panel per quantity (the loss first, then each
//! metric), each plotting the training series and its `val_` counterpart against the epoch.
//!
//! Plain SVG written by hand with std only, so that a saved history opens in any browser
//! without a plotting library.

use std::fmt::{self, Write};
use std::path::Path;

use crate::error::Result;
use crate::io::write_atomic;
use crate::model::logs::{History, format_metric};

/// Width of the whole chart, in pixels.
const WIDTH: f64 = 760.0;
/// Height of one panel: title, plot area and axis labels.
const PANEL_HEIGHT: f64 = 300.0;
/// Height of the chart of an empty history (which only carries a message).
const EMPTY_HEIGHT: f64 = 120.0;
/// Space left of the plot area, for the y tick labels and the y axis label.
const MARGIN_LEFT: f64 = 72.0;
/// Space above the plot area, for the panel title.
const MARGIN_TOP: f64 = 40.0;
/// Space below the plot area, for the x tick labels and the x axis label.
const MARGIN_BOTTOM: f64 = 50.0;
/// Space right of the plot area, for the legend.
const LEGEND_WIDTH: f64 = 170.0;
/// Legend labels longer than this many characters are cut (with `…`) to stay in the chart.
const LEGEND_MAX_CHARS: usize = 20;
/// Gap between the frame and the first and last epoch, so that markers clear the frame.
const X_INSET: f64 = 12.0;
/// Radius of a point marker.
const MARKER_RADIUS: f64 = 3.0;
/// Beyond this many epochs the markers of a training series would merge into a smear, so
/// only its line is drawn (points without a neighbour keep their marker).
const MAX_MARKED_EPOCHS: usize = 60;
/// At most this many epoch labels on the x axis.
const MAX_X_TICKS: usize = 10;
/// The y axis gets between this many ...
const MIN_Y_TICKS: usize = 4;
/// ... and this many tick values.
const MAX_Y_TICKS: usize = 6;
/// The y axis extends this fraction of the data's span beyond its extremes.
const Y_MARGIN: f64 = 0.05;
/// Tick steps are one of these times a power of ten, in order of preference.
const STEP_MANTISSAS: [f64; 4] = [1.0, 2.0, 5.0, 2.5];

const TRAIN_COLOR: &str = "#1f77b4";
const VAL_COLOR: &str = "#ff7f0e";
const GRID_COLOR: &str = "#e3e3e3";
const AXIS_COLOR: &str = "#444444";
const NOTE_COLOR: &str = "#777777";
/// Dash pattern of validation lines.
const VAL_DASH: &str = "6 4";
/// The prefix that marks a validation key (`val_loss` is the validation `loss`).
const VAL_PREFIX: &str = "val_";

/// The chart, as [`History`] methods (here rather than beside `History`, so that the
/// chart's module imports the history's and not the other way round).
impl History {
    /// The history as a standalone SVG line chart, to open in a browser: one panel per
    /// quantity (the loss, then each metric), stacked, each plotting the training series
    /// (solid, with markers) and its `val_` series (dashed) against the epoch, with
    /// gridlines at round values, a legend and axis labels. NaN and infinite values are
    /// left out, breaking the line; an empty history gives a chart that says "no epochs".
    ///
    /// ```
    /// let mut h = nn::History::default();
    /// let mut logs = nn::Logs::default();
    /// for (epoch, loss) in [0.9, 0.5, 0.3].into_iter().enumerate() {
    ///     logs.insert("loss", loss);
    ///     logs.insert("val_loss", loss + 0.1);
    ///     h.push(epoch, &logs);
    /// }
    /// let svg = h.to_svg();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// assert_eq!(svg.matches("<path").count(), 2); // loss and val_loss
    /// ```
    pub fn to_svg(&self) -> String {
        history_svg(self)
    }

    /// Writes [`to_svg`](History::to_svg) to `path` (conventionally `*.svg`), atomically
    /// (see [`write_atomic`]).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) naming the path, if it cannot be written.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_svg().as_bytes())
    }
}

/// The chart of `history` as a standalone SVG document (see [`History::to_svg`]).
fn history_svg(history: &History) -> String {
    let panels = panels(history);
    let mut svg = Svg::default();
    let message = if history.is_empty() {
        Some("no epochs")
    } else if panels.is_empty() {
        Some("no values")
    } else {
        None
    };
    let height = match message {
        Some(_) => EMPTY_HEIGHT,
        None => PANEL_HEIGHT * panels.len() as f64,
    };
    svg.line(format_args!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    ));
    svg.line(format_args!("<title>Training history</title>"));
    svg.line(format_args!(
        r#"<rect width="100%" height="100%" fill="white"/>"#
    ));
    match message {
        Some(text) => svg.line(format_args!(
            r#"<text x="{:.1}" y="{:.1}" dy="0.32em" text-anchor="middle" font-size="16" fill="{NOTE_COLOR}">{text}</text>"#,
            WIDTH / 2.0,
            height / 2.0
        )),
        None => {
            for (i, panel) in panels.iter().enumerate() {
                draw_panel(&mut svg, panel, history.epochs(), PANEL_HEIGHT * i as f64);
            }
        }
    }
    svg.line(format_args!("</svg>"));
    svg.out
}

/// An SVG document being written, one element per line.
#[derive(Default)]
struct Svg {
    out: String,
}

impl Svg {
    fn line(&mut self, element: fmt::Arguments<'_>) {
        // Writing into a `String` cannot fail.
        let _ = self.out.write_fmt(element);
        self.out.push('\n');
    }
}

/// One quantity's chart: `loss` with `val_loss`, or a metric with its `val_` version.
struct Panel<'h> {
    /// The quantity, without `val_` (`loss`, `accuracy`).
    name: &'h str,
    /// The training series first, then the validation one (either may be missing).
    series: Vec<Series<'h>>,
}

/// One key of the history and its per-epoch values.
struct Series<'h> {
    key: &'h str,
    values: &'h [f64],
    validation: bool,
}

/// The history's keys grouped by quantity: the loss panel first, then the others in the
/// history's order.
fn panels(history: &History) -> Vec<Panel<'_>> {
    let mut panels: Vec<Panel<'_>> = Vec::new();
    for key in history.keys() {
        let Some(values) = history.get(key) else {
            continue;
        };
        let (name, validation) = match key.strip_prefix(VAL_PREFIX) {
            Some(name) => (name, true),
            None => (key, false),
        };
        let series = Series {
            key,
            values,
            validation,
        };
        match panels.iter_mut().find(|p| p.name == name) {
            Some(panel) => panel.series.push(series),
            None => panels.push(Panel {
                name,
                series: vec![series],
            }),
        }
    }
    // Stable sorts: the loss moves to the top, training goes before validation.
    panels.sort_by_key(|p| p.name != "loss");
    for panel in &mut panels {
        panel.series.sort_by_key(|s| s.validation);
    }
    panels
}

/// Where a panel's plot area lies, in pixels within the panel.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn of_panel() -> Self {
        Frame {
            left: MARGIN_LEFT,
            right: WIDTH - LEGEND_WIDTH,
            top: MARGIN_TOP,
            bottom: PANEL_HEIGHT - MARGIN_BOTTOM,
        }
    }

    fn center_x(&self) -> f64 {
        (self.left + self.right) / 2.0
    }

    fn center_y(&self) -> f64 {
        (self.top + self.bottom) / 2.0
    }
}

/// A linear map from data values in `lo..=hi` to pixels in `from..=to`.
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    /// The pixel of `v`; a domain of one value maps to the middle of the pixel range.
    fn map(&self, v: f64) -> f64 {
        if self.hi > self.lo {
            self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
        } else {
            (self.from + self.to) / 2.0
        }
    }
}

/// Draws one panel whose top edge is at `y0`.
fn draw_panel(svg: &mut Svg, panel: &Panel<'_>, epochs: &[usize], y0: f64) {
    let frame = Frame::of_panel();
    let title = escape(panel.name);
    svg.line(format_args!(
        r#"<g class="panel" transform="translate(0,{y0:.1})">"#
    ));
    svg.line(format_args!(
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15" font-weight="bold">model {title}</text>"#,
        frame.center_x()
    ));
    let finite = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = y_domain(finite);
    let y_ticks = nice_ticks(lo, hi);
    let y = Scale {
        lo: y_ticks.values.first().copied().unwrap_or(lo),
        hi: y_ticks.values.last().copied().unwrap_or(hi),
        from: frame.bottom,
        to: frame.top,
    };
    let first = epochs.iter().copied().min().unwrap_or(0);
    let last = epochs.iter().copied().max().unwrap_or(0);
    let x = Scale {
        lo: first as f64,
        hi: last as f64,
        from: frame.left + X_INSET,
        to: frame.right - X_INSET,
    };
    draw_y_axis(svg, &frame, &y, &y_ticks);
    draw_x_axis(svg, &frame, &x, &epoch_ticks(first, last));
    draw_axis_labels(svg, &frame, &title);
    let mut plotted = false;
    for series in &panel.series {
        plotted |= draw_series(svg, series, epochs, &x, &y);
    }
    if !plotted {
        svg.line(format_args!(
            r#"<text x="{:.1}" y="{:.1}" dy="0.32em" text-anchor="middle" fill="{NOTE_COLOR}">no finite values</text>"#,
            frame.center_x(),
            frame.center_y()
        ));
    }
    draw_legend(svg, &frame, &panel.series);
    svg.line(format_args!(
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="{AXIS_COLOR}"/>"#,
        frame.left,
        frame.top,
        frame.right - frame.left,
        frame.bottom - frame.top
    ));
    svg.line(format_args!("</g>"));
}

/// Horizontal gridlines at the tick values, labelled left of the frame.
fn draw_y_axis(svg: &mut Svg, frame: &Frame, y: &Scale, ticks: &Ticks) {
    for &value in &ticks.values {
        let py = y.map(value);
        svg.line(format_args!(
            r#"<line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="{GRID_COLOR}"/>"#,
            frame.left, frame.right
        ));
        svg.line(format_args!(
            r#"<text x="{:.1}" y="{py:.1}" dy="0.32em" text-anchor="end">{}</text>"#,
            frame.left - 6.0,
            ticks.label(value)
        ));
    }
}

/// Tick marks and labels below the frame at the given epochs.
fn draw_x_axis(svg: &mut Svg, frame: &Frame, x: &Scale, epochs: &[usize]) {
    for &epoch in epochs {
        let px = x.map(epoch as f64);
        svg.line(format_args!(
            r#"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="{AXIS_COLOR}"/>"#,
            frame.bottom,
            frame.bottom + 5.0
        ));
        svg.line(format_args!(
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{epoch}</text>"#,
            frame.bottom + 18.0
        ));
    }
}

/// `epoch` under the x axis and the (already escaped) quantity along the y axis.
fn draw_axis_labels(svg: &mut Svg, frame: &Frame, quantity: &str) {
    svg.line(format_args!(
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text>"#,
        frame.center_x(),
        frame.bottom + 40.0
    ));
    svg.line(format_args!(
        r#"<text transform="rotate(-90)" x="{:.1}" y="18" text-anchor="middle">{quantity}</text>"#,
        -frame.center_y()
    ));
}

/// The color and dash attributes of a series' line.
fn stroke(validation: bool) -> String {
    if validation {
        format!(r#"stroke="{VAL_COLOR}" stroke-dasharray="{VAL_DASH}""#)
    } else {
        format!(r#"stroke="{TRAIN_COLOR}""#)
    }
}

/// Draws a series as one `<path>` (broken at NaN and infinite values) and its markers.
/// Returns whether it had any finite point.
fn draw_series(svg: &mut Svg, series: &Series<'_>, epochs: &[usize], x: &Scale, y: &Scale) -> bool {
    let runs = finite_runs(epochs, series.values);
    if runs.is_empty() {
        return false;
    }
    let key = escape(series.key);
    let d: Vec<String> = runs
        .iter()
        .map(|run| {
            let points: Vec<String> = run
                .iter()
                .map(|&(e, v)| format!("{:.1},{:.1}", x.map(e as f64), y.map(v)))
                .collect();
            format!("M{}", points.join(" L"))
        })
        .collect();
    svg.line(format_args!(
        r#"<path class="series" d="{}" fill="none" {} stroke-width="2" stroke-linejoin="round"><title>{key}</title></path>"#,
        d.join(" "),
        stroke(series.validation)
    ));
    let color = if series.validation {
        VAL_COLOR
    } else {
        TRAIN_COLOR
    };
    let mark_all = !series.validation && epochs.len() <= MAX_MARKED_EPOCHS;
    svg.line(format_args!(r#"<g fill="{color}">"#));
    for run in runs.iter().filter(|run| mark_all || run.len() == 1) {
        for &(epoch, value) in run {
            svg.line(format_args!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="{MARKER_RADIUS}"><title>{key}, epoch {epoch}: {}</title></circle>"#,
                x.map(epoch as f64),
                y.map(value),
                escape(&format_metric(value))
            ));
        }
    }
    svg.line(format_args!("</g>"));
    true
}

/// The series' points as runs of consecutive finite values: the line breaks where a value
/// is NaN or infinite, rather than jumping off the chart or over a gap.
fn finite_runs(epochs: &[usize], values: &[f64]) -> Vec<Vec<(usize, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (&epoch, &value) in epochs.iter().zip(values) {
        if value.is_finite() {
            run.push((epoch, value));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// One entry per series right of the frame: a line sample in the series' style, then its key.
fn draw_legend(svg: &mut Svg, frame: &Frame, series: &[Series<'_>]) {
    let x0 = frame.right + 16.0;
    for (i, s) in series.iter().enumerate() {
        let py = frame.top + 10.0 + 20.0 * i as f64;
        svg.line(format_args!(
            r#"<line x1="{x0:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" {} stroke-width="2"/>"#,
            x0 + 28.0,
            stroke(s.validation)
        ));
        if !s.validation {
            svg.line(format_args!(
                r#"<circle cx="{:.1}" cy="{py:.1}" r="{MARKER_RADIUS}" fill="{TRAIN_COLOR}"/>"#,
                x0 + 14.0
            ));
        }
        svg.line(format_args!(
            r#"<text x="{:.1}" y="{py:.1}" dy="0.32em">{}</text>"#,
            x0 + 36.0,
            escape(&shorten(s.key, LEGEND_MAX_CHARS))
        ));
    }
}

/// `text` cut to `max` characters, the last one replaced by `…` if anything was cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The range the y axis must show for these finite values: theirs widened by
/// [`Y_MARGIN`] of the span either side, so that the extreme points do not sit on the frame
/// (but not across zero, so that a loss axis does not go negative). A constant series gets
/// 10% of its value (or 1 around zero) either side so that it is drawn mid-panel; no values
/// at all give `0..1`.
fn y_domain(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * Y_MARGIN;
        let widened_lo = if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        };
        let widened_hi = if hi <= 0.0 {
            (hi + pad).min(0.0)
        } else {
            hi + pad
        };
        (widened_lo, widened_hi)
    }
}

/// The tick values of a y axis, and how many decimals their labels need.
#[derive(Debug)]
struct Ticks {
    values: Vec<f64>,
    decimals: usize,
}

impl Ticks {
    /// A tick's label: fixed-point with the decimals of the step, or scientific for values
    /// too large or too small to read that way.
    fn label(&self, value: f64) -> String {
        // `+ 0.0` turns -0 into 0.
        let value = value + 0.0;
        let largest = self.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if self.decimals > 5 || largest >= 1e5 {
            format!("{value:.2e}")
        } else {
            format!("{value:.*}", self.decimals)
        }
    }
}

/// Between [`MIN_Y_TICKS`] and [`MAX_Y_TICKS`] evenly spaced "nice" values (steps of 1, 2,
/// 2.5 or 5 times a power of ten) whose first is at most `min` and last at least `max`:
/// the tightest such axis, preferring steps in the order of [`STEP_MANTISSAS`]. Expects
/// `min < max`; anything else (or an infinite span) gets just the two ends.
fn nice_ticks(min: f64, max: f64) -> Ticks {
    let span = max - min;
    let ends = Ticks {
        values: vec![min, max],
        decimals: 2,
    };
    if !(span.is_finite() && span > 0.0) {
        return ends;
    }
    // Relative slack so that 0.30000000000000004 still counts as on the 0.1 grid.
    const SLACK: f64 = 1e-9;
    let magnitude = span.log10().floor() as i32;
    // (extent, preference, first index, last index, step, decimals)
    let mut best: Option<(f64, usize, f64, f64, f64, usize)> = None;
    for exponent in magnitude - 2..=magnitude + 1 {
        for (preference, mantissa) in STEP_MANTISSAS.into_iter().enumerate() {
            let step = mantissa * 10f64.powi(exponent);
            let first = (min / step + SLACK).floor();
            let last = (max / step - SLACK).ceil();
            let count = last - first + 1.0;
            if count < MIN_Y_TICKS as f64 || count > MAX_Y_TICKS as f64 {
                continue;
            }
            let extent = (last - first) * step;
            let better = match best {
                None => true,
                Some((e, p, ..)) => {
                    extent < e - SLACK * span || (extent <= e + SLACK * span && preference < p)
                }
            };
            if better {
                let extra = usize::from(mantissa == 2.5);
                let decimals = (extra as i32 - exponent).max(0) as usize;
                best = Some((extent, preference, first, last, step, decimals));
            }
        }
    }
    match best {
        Some((_, _, first, last, step, decimals)) => {
            let count = (last - first) as usize + 1;
            Ticks {
                values: (0..count).map(|i| (first + i as f64) * step).collect(),
                decimals,
            }
        }
        None => ends,
    }
}

/// At most [`MAX_X_TICKS`] epochs in `first..=last` to label: the multiples of the smallest
/// step of 1, 2 or 5 times a power of ten that keeps within that many.
fn epoch_ticks(first: usize, last: usize) -> Vec<usize> {
    let mut magnitude: usize = 1;
    loop {
        for mantissa in [1, 2, 5] {
            let Some(step) = magnitude.checked_mul(mantissa) else {
                return vec![first, last];
            };
            let (start, end) = (first.div_ceil(step), last / step);
            if end.saturating_sub(start) < MAX_X_TICKS {
                return (start..=end).map(|i| i * step).collect();
            }
        }
        match magnitude.checked_mul(10) {
            Some(m) => magnitude = m,
            None => return vec![first, last],
        }
    }
}

/// `text` made safe as SVG character data or attribute value: `& < > " '` become entity
/// references, and characters XML forbids (control characters other than tab and newlines)
/// become `�`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Logs;
    use proptest::prelude::*;

    /// A history of `epochs` epochs with the given `(key, values)` series.
    fn history(series: &[(&str, &[f64])]) -> History {
        let epochs = series.first().map_or(0, |(_, v)| v.len());
        let mut h = History::default();
        for epoch in 0..epochs {
            let mut logs = Logs::default();
            for (key, values) in series {
                logs.insert(*key, values[epoch]);
            }
            h.push(epoch, &logs);
        }
        h
    }

    fn four_keys() -> History {
        history(&[
            ("loss", &[0.9, 0.5, 0.3]),
            ("accuracy", &[0.5, 0.75, 0.875]),
            ("val_loss", &[1.0, 0.6, 0.45]),
            ("val_accuracy", &[0.4, 0.7, 0.8]),
        ])
    }

    /// The `<path>` element of `key`'s series.
    fn path_of<'s>(svg: &'s str, key: &str) -> &'s str {
        let title = format!("<title>{key}</title></path>");
        svg.lines()
            .find(|l| l.starts_with("<path") && l.ends_with(&title))
            .unwrap_or_else(|| panic!("no path for {key} in\n{svg}"))
    }

    /// The `d` attribute of a path element.
    fn d_of(path: &str) -> &str {
        let start = path.find(" d=\"").expect("a d attribute") + 4;
        let len = path[start..].find('"').expect("closing quote");
        &path[start..start + len]
    }

    fn assert_document(svg: &str) {
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        for bad in ["NaN", "inf"] {
            assert!(!svg.contains(bad), "{bad} in\n{svg}");
        }
    }

    #[test]
    fn one_panel_per_quantity_loss_first_one_path_per_series() {
        let svg = four_keys().to_svg();
        assert_document(&svg);
        assert_eq!(svg.matches("<g class=\"panel\"").count(), 2);
        let loss_title = svg.find(">model loss</text>").expect("loss title");
        let accuracy_title = svg.find(">model accuracy</text>").expect("accuracy title");
        assert!(loss_title < accuracy_title);
        assert_eq!(svg.matches("<path").count(), 4);
        for key in ["loss", "val_loss", "accuracy", "val_accuracy"] {
            // Named in the legend, and the series drawn.
            assert!(
                svg.contains(&format!("dy=\"0.32em\">{key}</text>")),
                "{key}"
            );
            assert!(d_of(path_of(&svg, key)).starts_with('M'));
        }
        assert!(path_of(&svg, "val_loss").contains(&format!("stroke=\"{VAL_COLOR}\"")));
        assert!(path_of(&svg, "val_loss").contains("stroke-dasharray"));
        assert!(path_of(&svg, "loss").contains(&format!("stroke=\"{TRAIN_COLOR}\"")));
        assert!(!path_of(&svg, "loss").contains("stroke-dasharray"));
        // Three markers per training series, none on the validation lines (every point
        // has a neighbour), one per training entry in the legends.
        assert_eq!(svg.matches("<circle").count(), 3 + 3 + 2);
        assert!(svg.contains("<title>loss, epoch 2: 0.3000</title>"));
        assert!(svg.contains(">epoch</text>"));
    }

    #[test]
    fn points_land_on_the_scales() {
        // loss 0.9, 0.5, 0.3: steps of 0.1 would need 7 ticks; 0.25..1.0 is tighter than
        // 0.2..1.0. Epochs 0..2 span the frame minus the inset.
        let svg = history(&[("loss", &[0.9, 0.5, 0.3])]).to_svg();
        let frame = Frame::of_panel();
        let d = d_of(path_of(&svg, "loss"));
        let y = |v: f64| frame.bottom - (v - 0.25) / 0.75 * (frame.bottom - frame.top);
        let (left, right) = (frame.left + X_INSET, frame.right - X_INSET);
        let expected = format!(
            "M{left:.1},{:.1} L{:.1},{:.1} L{right:.1},{:.1}",
            y(0.9),
            (left + right) / 2.0,
            y(0.5),
            y(0.3)
        );
        assert_eq!(d, expected);
        for label in ["0.25", "0.50", "0.75", "1.00"] {
            assert!(
                svg.contains(&format!("text-anchor=\"end\">{label}</text>")),
                "{label}"
            );
        }
        for epoch in 0..3 {
            assert!(svg.contains(&format!("text-anchor=\"middle\">{epoch}</text>")));
        }
    }

    #[test]
    fn one_epoch_draws_markers_in_the_middle() {
        let svg = history(&[("loss", &[0.5]), ("val_loss", &[0.7])]).to_svg();
        assert_document(&svg);
        // A marker per series (validation points without neighbours get one too), plus
        // the legend's.
        assert_eq!(svg.matches("<circle").count(), 3);
        let middle = format!("cx=\"{:.1}\"", Frame::of_panel().center_x());
        assert_eq!(svg.matches(&middle).count(), 2, "{svg}");
        assert_eq!(epoch_ticks(0, 0), vec![0]);
    }

    #[test]
    fn empty_history_says_so() {
        let svg = History::default().to_svg();
        assert_document(&svg);
        assert!(svg.contains(">no epochs</text>"));
        assert!(!svg.contains("<path"));
        let mut h = History::default();
        h.push(0, &Logs::default());
        let svg = h.to_svg();
        assert_document(&svg);
        assert!(svg.contains(">no values</text>"));
    }

    #[test]
    fn non_finite_values_break_the_line() {
        let inf = f64::INFINITY;
        let svg = history(&[("loss", &[1.0, f64::NAN, 0.5, 0.25, inf, 0.2])]).to_svg();
        assert_document(&svg);
        let d = d_of(path_of(&svg, "loss"));
        assert_eq!(d.matches('M').count(), 3, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        let runs = finite_runs(&[0, 1, 2, 3, 4, 5], &[1.0, f64::NAN, 0.5, 0.25, inf, 0.2]);
        assert_eq!(
            runs,
            vec![vec![(0, 1.0)], vec![(2, 0.5), (3, 0.25)], vec![(5, 0.2)]]
        );
    }

    #[test]
    fn a_series_without_finite_values_is_noted_not_drawn() {
        let svg = history(&[("loss", &[0.5, 0.4]), ("val_loss", &[f64::NAN, f64::NAN])]).to_svg();
        assert_document(&svg);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(svg.contains(">val_loss</text>"), "still in the legend");
        let svg = history(&[("loss", &[f64::NAN])]).to_svg();
        assert_document(&svg);
        assert!(svg.contains(">no finite values</text>"));
    }

    #[test]
    fn constant_series_get_padding() {
        assert_eq!(y_domain([0.5, 0.5].into_iter()), (0.45, 0.55));
        assert_eq!(y_domain([0.0].into_iter()), (-1.0, 1.0));
        assert_eq!(y_domain(std::iter::empty()), (0.0, 1.0));
        // Other ranges widen by 5% of the span, but not across zero.
        let close =
            |(a, b): (f64, f64), (c, d): (f64, f64)| (a - c).abs() < 1e-12 && (b - d).abs() < 1e-12;
        assert!(close(y_domain([0.5, 1.5].into_iter()), (0.45, 1.55)));
        assert!(close(y_domain([0.0, 2.0].into_iter()), (0.0, 2.1)));
        assert!(close(y_domain([-2.0, -1.0].into_iter()), (-2.05, -0.95)));
        assert!(close(
            y_domain([-0.01, -0.0, -1.0].into_iter()),
            (-1.05, 0.0)
        ));
        let svg = history(&[("loss", &[2.0, 2.0, 2.0])]).to_svg();
        assert_document(&svg);
        for label in ["1.8", "1.9", "2.0", "2.1", "2.2"] {
            assert!(
                svg.contains(&format!("text-anchor=\"end\">{label}</text>")),
                "{label}"
            );
        }
    }

    #[test]
    fn keys_are_escaped() {
        let svg = history(&[("a<&>\"'b", &[1.0, 2.0]), ("val_a<&>\"'b", &[1.5, 2.5])]).to_svg();
        assert_document(&svg);
        assert!(!svg.contains("<&>"));
        assert!(svg.contains(">model a&lt;&amp;&gt;&quot;&apos;b</text>"));
        assert!(svg.contains("<title>val_a&lt;&amp;&gt;&quot;&apos;b</title></path>"));
        assert_eq!(svg.matches("<g class=\"panel\"").count(), 1);
        assert_eq!(escape("x\u{1}y\tz"), "x\u{FFFD}y\tz");
    }

    #[test]
    fn long_keys_are_cut_in_the_legend_only() {
        let key = "a_very_long_metric_name_indeed";
        let svg = history(&[(key, &[1.0, 2.0])]).to_svg();
        assert!(svg.contains(">a_very_long_metric_…</text>"));
        assert!(svg.contains(&format!("<title>{key}</title>")));
    }

    #[test]
    fn y_ticks_are_nice() {
        let t = nice_ticks(0.0, 1.0);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let labels: Vec<String> = t.values.iter().map(|&v| t.label(v)).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        // The tightest axis wins: 0.25..1.0 (extent 0.75) over 0.2..1.0 (extent 0.8).
        let t = nice_ticks(0.26, 0.99);
        let labels: Vec<String> = t.values.iter().map(|&v| t.label(v)).collect();
        assert_eq!(labels, ["0.25", "0.50", "0.75", "1.00"]);
        let t = nice_ticks(-3.0, 7.0);
        let labels: Vec<String> = t.values.iter().map(|&v| t.label(v)).collect();
        assert_eq!(labels, ["-5.0", "-2.5", "0.0", "2.5", "5.0", "7.5"]);
        let t = nice_ticks(0.0, 1e6);
        assert_eq!(t.label(t.values[1]), "2.00e5");
        let t = nice_ticks(0.0, 3e-7);
        assert_eq!(t.label(t.values[1]), "1.00e-7");
    }

    #[test]
    fn x_ticks_are_whole_epochs_at_most_ten() {
        assert_eq!(epoch_ticks(0, 9), (0..10).collect::<Vec<_>>());
        assert_eq!(epoch_ticks(0, 10), vec![0, 2, 4, 6, 8, 10]);
        assert_eq!(
            epoch_ticks(0, 99),
            (0..10).map(|i| i * 10).collect::<Vec<_>>()
        );
        assert_eq!(
            epoch_ticks(3, 1000),
            (1..=10).map(|i| i * 100).collect::<Vec<_>>()
        );
        assert_eq!(epoch_ticks(0, 1000), vec![0, 200, 400, 600, 800, 1000]);
        assert_eq!(epoch_ticks(7, 7), vec![7]);
        assert_eq!(epoch_ticks(usize::MAX - 5, usize::MAX).len(), 6);
    }

    proptest! {
        #[test]
        fn y_ticks_cover_the_data_with_four_to_six_nice_steps(
            min in -1e6f64..1e6,
            span in 1e-6f64..1e6,
        ) {
            let max = min + span;
            prop_assume!(max > min);
            let t = nice_ticks(min, max);
            let n = t.values.len();
            prop_assert!((MIN_Y_TICKS..=MAX_Y_TICKS).contains(&n), "{t:?}");
            let step = t.values[1] - t.values[0];
            let tol = 1e-6 * step;
            prop_assert!(t.values[0] <= min + tol && t.values[n - 1] >= max - tol, "{t:?}");
            let exponent = step.log10().floor();
            let mantissa = step / 10f64.powf(exponent);
            prop_assert!(
                STEP_MANTISSAS.iter().any(|m| (m - mantissa).abs() < 1e-6),
                "step {step}"
            );
        }
    }
}
