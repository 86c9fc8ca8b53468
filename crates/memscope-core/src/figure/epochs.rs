//! `epochs`: one intervention at every checkpoint, every group's signed change per epoch:
//! when, over training, a few neurons come to carry a group.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::pp;
use super::style::{group_color, markers};
use crate::studies::epochs::EpochSeries;

pub(crate) fn describe(s: &EpochSeries) -> (String, Vec<String>) {
    let base = &s.spec.base;
    let first = s.points.first().map_or(0, |p| p.epoch);
    let last = s.points.last().map_or(0, |p| p.epoch);
    let title = format!("Δ accuracy per group over training · {} · epochs {first}-{last}", base.split);
    let q = &base.query;
    let what = match &base.intervention {
        crate::edit::Intervention::RewindLayer { epochs_back, .. } => {
            format!("The whole layer rewound by {epochs_back} epochs")
        }
        change if q.selection.by_hand() => format!(
            "{change} of the neurons {} ({} granularity){}",
            q.selection,
            q.granularity,
            if base.repeats > 1 && change.is_random() {
                format!(", mean of {} runs", base.repeats)
            } else {
                String::new()
            }
        ),
        change => format!(
            "{change} of the {} neurons by {} ({} granularity, {} ranking{}){}",
            q.selection,
            q.criterion,
            q.granularity,
            q.scope,
            if q.normalize_layers { ", scores divided by their layer's mean" } else { "" },
            if base.repeats > 1 && change.is_random() {
                format!(", mean of {} runs", base.repeats)
            } else {
                String::new()
            }
        ),
    };
    let examples: Vec<String> = s
        .points
        .iter()
        .find(|p| !p.groups.is_empty())
        .map(|p| p.groups.iter().map(|g| format!("G{} {}", g.group, g.examples)).collect())
        .unwrap_or_default();
    let skipped: Vec<String> =
        s.points.iter().filter(|p| p.error.is_some()).map(|p| p.epoch.to_string()).collect();
    let mut caption = vec![
        format!(
            "{what}, at each checkpoint in turn, neurons ranked afresh by that checkpoint's scores \
             (memscope intervene --epoch E gives each point)."
        ),
        format!(
            "Signed mean of (after − before) in percentage points: below 0 the group lost accuracy. Examples per \
             group on {}: {}. Seed {}.",
            base.split,
            examples.join(", "),
            base.seed
        ),
    ];
    if !skipped.is_empty() {
        caption.push(format!("Not applicable at epochs {} (no point drawn).", skipped.join(", ")));
    }
    (title, caption)
}

/// Every group's signed change, in percentage points, at the epochs where it applies.
pub(crate) fn series(s: &EpochSeries, group: usize) -> Vec<(f64, f64)> {
    s.points
        .iter()
        .filter_map(|p| p.groups.get(group).and_then(|g| g.change).map(|c| (p.epoch as f64, pp(c))))
        .collect()
}

pub(crate) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &EpochSeries) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let last = s.points.last().map_or(1, |p| p.epoch).max(1) as f64;
    let first = s.points.first().map_or(0, |p| p.epoch) as f64;
    let axes = super::curves::EpochAxes {
        first,
        last,
        y: -100f64..100f64,
        x_desc: "epoch",
        y_desc: "Δ accuracy (pp, after − before)",
        legend_room: true,
    };
    let mut chart = super::curves::epoch_chart(area, axes, &|v| format!("{v:+.0}"))?;
    chart.draw_series(LineSeries::new([(first, 0.0), (last, 0.0)], BLACK.stroke_width(1)))?;
    let names = s.points.iter().find(|p| !p.groups.is_empty()).map(|p| p.groups.clone()).unwrap_or_default();
    for g in &names {
        let points = series(s, g.group);
        let color = group_color(g.group);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("G{} {} ({} examples)", g.group, g.name, g.examples))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        markers(&mut chart, g.group, &points, color)?;
    }
    super::curves::legend(&mut chart)
}
