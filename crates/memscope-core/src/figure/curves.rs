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
    let axes =
        EpochAxes { first: 0.0, last: last_epoch.max(1.0), y: 0f64..100f64, x_desc, y_desc: "accuracy (%)" };
    epoch_chart(area, axes, &|v| format!("{v:.0}"))
}

/// The axes of a chart over epochs: x from `first` to `last`, with room on the right.
pub(super) struct EpochAxes<'s> {
    pub first: f64,
    pub last: f64,
    pub y: std::ops::Range<f64>,
    pub x_desc: &'s str,
    pub y_desc: &'s str,
}

/// A chart over epochs in the figures' style: epoch labels up to `last` only, and a third
/// more x range to the right for the legend, clear of the lines.
pub(super) fn epoch_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axes: EpochAxes,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let EpochAxes { first, last, y, x_desc, y_desc } = axes;
    let epochs = move |v: &f64| if *v <= last + 1e-9 { format!("{v:.0}") } else { String::new() };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(first..first + (last - first).max(1.0) * 1.35, y)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
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
    let last = m.runs.iter().flat_map(|r| r.worst_group.iter().map(|p| p.0)).max().unwrap_or(1) as f64;
    let mut chart = accuracy_chart(area, last, "fine-tuning epoch")?;
    let mut methods: Vec<&str> = Vec::new();
    for run in &m.runs {
        let method = match methods.iter().position(|&x| x == run.method) {
            Some(p) => p,
            None => {
                methods.push(&run.method);
                methods.len() - 1
            }
        };
        let color = series_color(method);
        let points: Vec<(f64, f64)> = run.worst_group.iter().map(|&(e, a)| (e as f64, pp(a))).collect();
        let series = chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        // One legend entry per method (its seeds share colour and marker; the caption lists runs).
        if !m.runs.iter().take_while(|r| !std::ptr::eq(*r, run)).any(|r| r.method == run.method) {
            let entry = if run.worst_group.len() == 1 { run.label.clone() } else { run.method.clone() };
            series
                .label(entry)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        markers(&mut chart, method, &points, color)?;
    }
    legend(&mut chart)
}
