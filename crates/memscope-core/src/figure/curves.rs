//! `timeline` (every group's, the worst group's and the mean accuracy over the epochs of
//! one experiment) and `mitigation` (worst-group val accuracy over the epochs of runs).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::pp;
use super::style::{FAMILY, GRID, MEAN, WORST, group_color, markers, series_color};
use crate::studies::timeline::{MitigationCurves, Timeline};

pub(super) fn describe_timeline(t: &Timeline) -> (String, Vec<String>) {
    let first = t.epochs.first().map_or(0, |e| e.epoch);
    let last = t.epochs.last().map_or(0, |e| e.epoch);
    let title = format!("Accuracy over training · {} · epochs {first}-{last}", t.spec.split);
    let examples: Vec<String> = t.examples.iter().enumerate().map(|(g, n)| format!("G{g} {n}")).collect();
    let caption = vec![format!(
        "Each checkpoint's unchanged network on {} ({} examples). Worst group: the lowest group accuracy; \
         mean: group accuracies weighted by the training group proportions. Deterministic (no seed).",
        t.spec.split,
        examples.join(", ")
    )];
    (title, caption)
}

pub(super) fn describe_mitigation(m: &MitigationCurves) -> (String, Vec<String>) {
    let title = "Worst-group val accuracy over fine-tuning".to_string();
    let runs: Vec<&str> = m.runs.iter().map(|r| r.label.as_str()).collect();
    let caption = vec![format!(
        "Per epoch, as each run recorded it when the epoch ended (epoch 0: the start checkpoint; an \
         experiment without a parent is drawn as one point at 0, its last epoch); one colour and marker per \
         method, one line per seed. Runs: {} (folders in the JSON).",
        runs.join(", ")
    )];
    (title, caption)
}

pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn accuracy_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    last_epoch: f64,
    x_desc: &str,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let axes = EpochAxes {
        first: 0.0,
        last: last_epoch.max(1.0),
        y: 0f64..100f64,
        x_desc,
        y_desc: "accuracy (%)",
        legend_room: true,
    };
    epoch_chart(area, axes, &|v| format!("{v:.0}"))
}

/// The axes of a chart over epochs: x from `first` to `last`, with room on the right.
pub(super) struct EpochAxes<'s> {
    pub first: f64,
    pub last: f64,
    pub y: std::ops::Range<f64>,
    pub x_desc: &'s str,
    pub y_desc: &'s str,
    /// A third more x range on the right for a legend inside the chart; without it the x axis
    /// ends at `last`.
    pub legend_room: bool,
}

/// A chart over epochs in the figures' style: epoch labels up to `last` only, and with
/// `legend_room` a third more x range to the right for the legend, clear of the lines.
pub(super) fn epoch_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axes: EpochAxes,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let EpochAxes { first, last, y, x_desc, y_desc, legend_room } = axes;
    let room = if legend_room { 1.35 } else { 1.0 };
    // Whole epochs up to `last` only (a tick between two epochs would repeat a number).
    let whole = move |v: &f64| *v <= last + 1e-9 && (v - v.round()).abs() < 1e-6;
    let epochs = move |v: &f64| if whole(v) { format!("{v:.0}") } else { String::new() };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(first..first + (last - first).max(1.0) * room, y)?;
    let mut mesh = chart.configure_mesh();
    if !legend_room {
        // A tick at each whole epoch (up to 11), none between: an axis that ends at `last`.
        let span = (last - first).max(1.0) as usize;
        mesh.x_labels(span.div_ceil(span.div_ceil(10)) + 1);
    }
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&epochs)
        .y_label_formatter(y_label)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()?;
    Ok(chart)
}

/// The series' legend in the upper right, over a white ground.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 12))
        .draw()?;
    Ok(())
}

pub(super) fn draw_timeline<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, t: &Timeline) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let last = t.epochs.last().map_or(1, |e| e.epoch) as f64;
    let mut chart = accuracy_chart(area, last, "epoch")?;
    for (g, name) in t.groups.iter().enumerate() {
        let points: Vec<(f64, f64)> = t
            .epochs
            .iter()
            .filter_map(|e| e.groups.get(g).copied().flatten().map(|a| (e.epoch as f64, pp(a))))
            .collect();
        let color = group_color(g);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("G{g} {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        markers(&mut chart, g, &points, color)?;
    }
    let worst: Vec<(f64, f64)> =
        t.epochs.iter().filter_map(|e| e.worst_group_accuracy.map(|a| (e.epoch as f64, pp(a)))).collect();
    chart
        .draw_series(LineSeries::new(worst, WORST.stroke_width(4)))?
        .label("worst group")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], WORST.stroke_width(4)));
    let mean: Vec<(f64, f64)> = t
        .epochs
        .iter()
        .filter_map(|e| e.mean_accuracy_train_weighted.map(|a| (e.epoch as f64, pp(a))))
        .collect();
    chart
        .draw_series(LineSeries::new(mean, MEAN.stroke_width(4)))?
        .label("mean (train-weighted)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], MEAN.stroke_width(4)));
    legend(&mut chart)
}

pub(super) fn draw_mitigation<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &MitigationCurves,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let last = m.runs.iter().flat_map(|r| r.worst_group.iter().map(|p| p.0)).max().unwrap_or(1).max(1) as f64;
    // One legend entry per method (its seeds share colour and marker; the caption lists runs);
    // a run of one point is named by its label.
    let mut methods: Vec<&str> = Vec::new();
    let mut entries: Vec<String> = Vec::new();
    for run in &m.runs {
        if !methods.contains(&run.method.as_str()) {
            methods.push(&run.method);
            entries.push(if run.worst_group.len() == 1 { run.label.clone() } else { run.method.clone() });
        }
    }
    let plot = beside_legend(area, &entries)?;
    let axes = EpochAxes {
        first: 0.0,
        last,
        y: 0f64..100f64,
        x_desc: "fine-tuning epoch",
        y_desc: "accuracy (%)",
        legend_room: false,
    };
    let mut chart = epoch_chart(&plot, axes, &|v| format!("{v:.0}"))?;
    for run in &m.runs {
        let method = methods.iter().position(|&x| x == run.method).unwrap_or(0);
        let color = series_color(method);
        let points: Vec<(f64, f64)> = run.worst_group.iter().map(|&(e, a)| (e as f64, pp(a))).collect();
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        markers(&mut chart, method, &points, color)?;
    }
    Ok(())
}

/// The legend of `entries` in a column of its own on the right of `area`, so that it covers
/// no line (the x axis then ends at the last epoch); returns the area left for the chart.
pub(super) fn beside_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[String],
) -> Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let longest = entries.iter().map(|e| e.chars().count()).max().unwrap_or(0) as u32;
    let legend_width = (48 + 8 * longest).clamp(120, 360);
    let (width, _) = area.dim_in_pixel();
    let (plot, side) = area.split_horizontally(width.saturating_sub(legend_width));
    side_legend(&side, entries)?;
    Ok(plot)
}

/// The legend beside a chart: per entry, its line and marker (as [`markers`] draws the
/// entry's index), and its name.
fn side_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[String]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (i, entry) in entries.iter().enumerate() {
        let color = series_color(i);
        let y = 24 + 22 * i as i32;
        area.draw(&PathElement::new(vec![(8, y), (34, y)], color.stroke_width(2)))?;
        let at = (21, y);
        match i % 4 {
            0 => area.draw(&Circle::new(at, 4, color.filled()))?,
            1 => area.draw(&TriangleMarker::new(at, 5, color.filled()))?,
            2 => area.draw(&Cross::new(at, 4, color.stroke_width(2)))?,
            _ => area.draw(&Circle::new(at, 4, color.stroke_width(2)))?,
        }
        area.draw(&Text::new(entry.clone(), (42, y - 7), (FAMILY, 12).into_font().color(&BLACK)))?;
    }
    Ok(())
}
