//! Hand-written inline SVG charts for the HTML report: one helper for line charts
//! ([`line_chart`], linear time axis or HdrHistogram-style percentile axis) and one for grouped
//! bar charts ([`bar_chart`]). Both share the frame (grid, ticks, axis labels, legend) and both
//! print a "no data" placeholder instead of an empty or broken chart.
//!
//! Every string passed in (titles, labels, series names) is escaped here, so callers may pass
//! text straight from `results.json`. Non-finite values are dropped, never drawn.

use std::fmt::Write as _;

use crate::html::esc;

/// Width of every chart's view box.
const W: f64 = 720.0;
/// Plot area: left, right, top, bottom (view box units).
const PLOT_L: f64 = 78.0;
const PLOT_R: f64 = W - 16.0;
const PLOT_T: f64 = 12.0;
const PLOT_B: f64 = 236.0;
/// Legend entries per row.
const LEGEND_PER_ROW: usize = 4;
/// An upper bound of a tick label's width per character (11px system-ui; digits and `%` are
/// the widest characters ticks use, at about 0.6 em).
const TICK_CHAR_W: f64 = 7.0;
/// Space kept between a label and the edge of the view box.
const EDGE: f64 = 2.0;

/// Colours picked to stay apart on screen; dash patterns keep series apart when printed in grey.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const DASHES: [&str; 4] = ["", "6 3", "2 2", "8 3 2 3"];

/// One named line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub name: String,
    /// (x, y) in data units; x is a percentile (0..100) on a [`XAxis::Percentile`] chart.
    pub points: Vec<(f64, f64)>,
}

/// How x values map onto the horizontal axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// Plain linear axis (time).
    Linear,
    /// HdrHistogram's percentile axis: x = log10(1 / (1 - p/100)), so 90, 99, 99.9 ... are
    /// evenly spaced; capped at 99.999.
    Percentile,
}

/// A line chart.
#[derive(Clone, Copy, Debug)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_axis: XAxis,
    pub series: &'a [Series],
}

/// One named set of bars, one value per category.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<f64>,
}

/// A grouped bar chart: one group per category, one bar per series in each group.
#[derive(Clone, Copy, Debug)]
pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub categories: &'a [String],
    pub series: &'a [BarSeries],
}

/// The highest percentile drawn (100 itself is at infinity on this axis).
const MAX_PERCENTILE: f64 = 99.999;

fn percentile_x(p: f64) -> f64 {
    let p = p.clamp(0.0, MAX_PERCENTILE);
    -(1.0 - p / 100.0).log10()
}

/// A figure holding only its title and "no data".
pub fn no_data(title: &str) -> String {
    format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><p class=\"nodata\">no data</p></figure>\n",
        esc(title)
    )
}

/// Renders a line chart, or [`no_data`] when no series has a finite point.
pub fn line_chart(c: &LineChart<'_>) -> String {
    let map_x = |x: f64| match c.x_axis {
        XAxis::Linear => x,
        XAxis::Percentile => percentile_x(x),
    };
    let series: Vec<(&str, Vec<(f64, f64)>)> = c
        .series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .map(|&(x, y)| (map_x(x), y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            (s.name.as_str(), pts)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    if all().next().is_none() {
        return no_data(c.title);
    }
    let (x_lo, x_hi, x_ticks) = match c.x_axis {
        XAxis::Linear => {
            let lo = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let hi = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi, ticks) = nice_ticks(lo, hi);
            let labelled = ticks.iter().map(|&t| (t, fmt_tick(t))).collect::<Vec<_>>();
            (lo, hi, labelled)
        }
        XAxis::Percentile => {
            let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
            let ticks = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64, (*l).to_string()))
                .collect::<Vec<_>>();
            (0.0, percentile_x(MAX_PERCENTILE), ticks)
        }
    };
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let y_min = all().map(|p| p.1).fold(0.0, f64::min);
    let (y_lo, y_hi, y_ticks) = nice_ticks(y_min, y_max);
    let frame = Frame {
        title: c.title,
        x_label: c.x_label,
        y_label: c.y_label,
        y_lo,
        y_hi,
        y_ticks: &y_ticks,
        legend: &series.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        legend_kind: LegendKind::Line,
    };
    let sx = |x: f64| PLOT_L + (x - x_lo) / (x_hi - x_lo) * (PLOT_R - PLOT_L);
    let mut body = String::new();
    for (x, label) in &x_ticks {
        let px = sx(*x);
        let (tx, anchor) = x_tick_anchor(px, label);
        let _ = write!(
            body,
            "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{PLOT_T}\" x2=\"{px:.1}\" y2=\"{PLOT_B}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            PLOT_B + 16.0,
            esc(label)
        );
    }
    for (i, (_, pts)) in series.iter().enumerate() {
        let (color, dash) = style(i);
        if pts.len() == 1 {
            let (x, y) = pts[0];
            let _ = write!(
                body,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                sx(x),
                frame.sy(y)
            );
            continue;
        }
        let mut coords = String::new();
        for &(x, y) in pts {
            let _ = write!(coords, "{:.1},{:.1} ", sx(x), frame.sy(y));
        }
        let _ = write!(
            body,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" \
             stroke-dasharray=\"{dash}\" points=\"{}\"/>",
            coords.trim_end()
        );
    }
    frame.render(&body)
}

/// Renders a grouped bar chart, or [`no_data`] when there is no category or no finite value.
pub fn bar_chart(c: &BarChart<'_>) -> String {
    let value = |s: &BarSeries, i: usize| s.values.get(i).copied().filter(|v| v.is_finite());
    let values = || {
        c.series
            .iter()
            .flat_map(|s| (0..c.categories.len()).filter_map(move |i| value(s, i)))
    };
    if c.categories.is_empty() || values().next().is_none() {
        return no_data(c.title);
    }
    let y_max = values().fold(0.0, f64::max);
    let y_min = values().fold(0.0, f64::min);
    let (y_lo, y_hi, y_ticks) = nice_ticks(y_min, y_max);
    let frame = Frame {
        title: c.title,
        x_label: c.x_label,
        y_label: c.y_label,
        y_lo,
        y_hi,
        y_ticks: &y_ticks,
        legend: &c.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        legend_kind: LegendKind::Bar,
    };
    let n_cat = c.categories.len() as f64;
    let n_ser = c.series.len().max(1) as f64;
    let group_w = (PLOT_R - PLOT_L) / n_cat;
    let bar_w = group_w * 0.8 / n_ser;
    let rotate = c.categories.len() > 6;
    let mut body = String::new();
    for (ci, cat) in c.categories.iter().enumerate() {
        let gx = PLOT_L + group_w * ci as f64;
        let cx = gx + group_w / 2.0;
        let label = esc(&truncate(cat, 16));
        if rotate {
            let _ = write!(
                body,
                "<text class=\"tick\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
                 transform=\"rotate(-30 {cx:.1} {:.1})\">{label}</text>",
                PLOT_B + 14.0,
                PLOT_B + 14.0
            );
        } else {
            let _ = write!(
                body,
                "<text class=\"tick\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                PLOT_B + 16.0
            );
        }
        for (si, s) in c.series.iter().enumerate() {
            let Some(v) = value(s, ci) else { continue };
            let (color, _) = style(si);
            let (top, bottom) = (frame.sy(v.max(0.0)), frame.sy(v.min(0.0)));
            let _ = write!(
                body,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
                 <title>{}: {}</title></rect>",
                gx + group_w * 0.1 + bar_w * si as f64,
                bar_w.max(0.5),
                (bottom - top).max(0.0),
                esc(&format!("{} / {}", s.name, cat)),
                fmt_tick(v)
            );
        }
    }
    frame.render(&body)
}

#[derive(Clone, Copy)]
enum LegendKind {
    Line,
    Bar,
}

/// What both chart kinds share: the y axis, axis labels, legend, title and the `<svg>` itself.
struct Frame<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    y_lo: f64,
    y_hi: f64,
    y_ticks: &'a [f64],
    legend: &'a [&'a str],
    legend_kind: LegendKind,
}

impl Frame<'_> {
    fn sy(&self, y: f64) -> f64 {
        PLOT_B - (y - self.y_lo) / (self.y_hi - self.y_lo) * (PLOT_B - PLOT_T)
    }

    fn render(&self, body: &str) -> String {
        let rows = self.legend.len().div_ceil(LEGEND_PER_ROW);
        let legend_top = PLOT_B + 52.0;
        let height = legend_top + 18.0 * rows as f64 + 4.0;
        let mut s = String::new();
        let _ = write!(
            s,
            "<figure class=\"chart\"><figcaption>{t}</figcaption>\
             <svg viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
            t = esc(self.title)
        );
        for &y in self.y_ticks {
            let py = self.sy(y);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{PLOT_L}\" y1=\"{py:.1}\" x2=\"{PLOT_R}\" y2=\"{py:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                PLOT_L - 6.0,
                py + 4.0,
                esc(&fmt_tick(y))
            );
        }
        s.push_str(body);
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{PLOT_L}\" y1=\"{PLOT_B}\" x2=\"{PLOT_R}\" y2=\"{PLOT_B}\"/>\
             <line class=\"axis\" x1=\"{PLOT_L}\" y1=\"{PLOT_T}\" x2=\"{PLOT_L}\" y2=\"{PLOT_B}\"/>\
             <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"label\" x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 14 {:.1})\">{}</text>",
            (PLOT_L + PLOT_R) / 2.0,
            PLOT_B + 40.0,
            esc(self.x_label),
            (PLOT_T + PLOT_B) / 2.0,
            (PLOT_T + PLOT_B) / 2.0,
            esc(self.y_label)
        );
        let col_w = (PLOT_R - PLOT_L) / LEGEND_PER_ROW as f64;
        for (i, name) in self.legend.iter().enumerate() {
            let x = PLOT_L + col_w * (i % LEGEND_PER_ROW) as f64;
            let y = legend_top + 18.0 * (i / LEGEND_PER_ROW) as f64;
            let (color, dash) = style(i);
            let _ = match self.legend_kind {
                LegendKind::Line => write!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                     stroke-width=\"2.5\" stroke-dasharray=\"{dash}\"/>",
                    y - 4.0,
                    x + 24.0,
                    y - 4.0
                ),
                LegendKind::Bar => write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"24\" height=\"10\" fill=\"{color}\"/>",
                    y - 9.0
                ),
            };
            let _ = write!(
                s,
                "<text class=\"legend\" x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
                x + 30.0,
                esc(&truncate(name, 22))
            );
        }
        s.push_str("</svg></figure>\n");
        s
    }
}

/// Where an x-axis tick label at `px` goes and how it is anchored: centred under its tick,
/// unless that would run past an edge of the view box (the last percentile tick, "99.999%",
/// sits at the plot's right edge): then it ends (or starts) at the edge instead.
fn x_tick_anchor(px: f64, label: &str) -> (f64, &'static str) {
    let half = label.chars().count() as f64 * TICK_CHAR_W / 2.0;
    if px + half > W - EDGE {
        (W - EDGE, "end")
    } else if px - half < EDGE {
        (EDGE, "start")
    } else {
        (px, "middle")
    }
}

fn style(i: usize) -> (&'static str, &'static str) {
    (PALETTE[i % PALETTE.len()], DASHES[(i / 2) % DASHES.len()])
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A "nice" axis covering `lo..=hi`: rounded bounds and at most ~20 evenly spaced ticks.
fn nice_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return (lo, hi, vec![lo, hi]);
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    let (n_lo, n_hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    if !(step > 0.0 && n_lo.is_finite() && n_hi.is_finite() && n_hi > n_lo) {
        return (lo, hi, vec![lo, hi]);
    }
    let n = (((n_hi - n_lo) / step).round() as usize).min(20);
    let ticks = (0..=n).map(|i| n_lo + step * i as f64).collect();
    (n_lo, n_hi, ticks)
}

/// A compact number for an axis tick: `1.5k`, `2M`, `0.25`.
pub fn fmt_tick(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let mut s = format!("{scaled:.3}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s + suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_bounded() {
        let (lo, hi, t) = nice_ticks(0.0, 97.0);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(t.len(), 6);
        let (_, _, t) = nice_ticks(0.0, f64::MAX);
        assert!(t.len() <= 21);
        let (lo, hi, _) = nice_ticks(5.0, 5.0);
        assert!(hi > lo);
    }

    #[test]
    fn percentile_axis_is_hdr_style() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(99.0) - 2.0).abs() < 1e-9);
        assert!((percentile_x(100.0) - 5.0).abs() < 1e-6);
    }

    /// The horizontal extent of a tick label as drawn, by its anchor.
    fn extent(x: f64, anchor: &str, label: &str) -> (f64, f64) {
        let w = label.chars().count() as f64 * TICK_CHAR_W;
        match anchor {
            "end" => (x - w, x),
            "start" => (x, x + w),
            _ => (x - w / 2.0, x + w / 2.0),
        }
    }

    #[test]
    fn every_x_tick_label_is_inside_the_view_box() {
        let series = [Series {
            name: "logs".into(),
            points: vec![(50.0, 1.0), (99.9999, 30.0)],
        }];
        let c = LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            x_axis: XAxis::Percentile,
            series: &series,
        };
        let svg = line_chart(&c);
        let mut seen = 0;
        for part in svg.split("<text class=\"tick\" ").skip(1) {
            let attr = |name: &str| {
                let start = part.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let len = part[start..].find('"').unwrap();
                &part[start..start + len]
            };
            let label = &part[part.find('>').unwrap() + 1..part.find("</text>").unwrap()];
            let x: f64 = attr("x").parse().unwrap();
            let (lo, hi) = extent(x, attr("text-anchor"), label);
            assert!(lo >= 0.0 && hi <= W, "{label} spans {lo}..{hi}");
            if label == "99.999%" {
                assert_eq!(attr("text-anchor"), "end");
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
        assert_eq!(x_tick_anchor(400.0, "50"), (400.0, "middle"));
        assert_eq!(x_tick_anchor(1.0, "0.5"), (EDGE, "start"));
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(fmt_tick(1500.0), "1500");
        assert_eq!(fmt_tick(25_000.0), "25k");
        assert_eq!(fmt_tick(2_000_000.0), "2M");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(-0.0), "0");
    }

    #[test]
    fn empty_charts_say_no_data() {
        let empty = [Series {
            name: "logs".into(),
            points: vec![(1.0, f64::NAN)],
        }];
        let c = LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            x_axis: XAxis::Linear,
            series: &empty,
        };
        assert!(line_chart(&c).contains("no data"));
        let b = BarChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            categories: &[],
            series: &[],
        };
        assert!(bar_chart(&b).contains("no data"));
    }
}
