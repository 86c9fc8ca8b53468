//! `bars`: the slides' Stage 1 figure. One panel per intervention; in each, a cluster of
//! group bars per k: the mean signed change of the group's accuracy (percentage points),
//! with ±1 standard deviation over the repeats of a random intervention.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{FAMILY, GRID, group_color, text};
use super::{axis_max, pp};
use crate::neurons::CandidateFilter;
use crate::neurons::select::Selection;
use crate::studies::grid::InterventionGrid;
use crate::studies::intervention::InterventionResult;

/// Title and caption lines.
pub(super) fn describe(grid: &InterventionGrid) -> (String, Vec<String>) {
    let Some(first) = grid.results.first() else {
        return ("Δ accuracy per group (no results)".into(), Vec::new());
    };
    let spec = &first.spec;
    let q = &spec.query;
    let which =
        if q.selection.by_hand() { "the first k neurons chosen by hand" } else { "the top-k neurons" };
    let title =
        format!("Δ accuracy per group after changing {which} · {} · epoch {}", spec.split, spec.epoch);
    let changes: Vec<String> = grid
        .interventions
        .iter()
        .enumerate()
        .map(|(i, iv)| {
            let runs = grid.get(i, 0).map_or(1, |r| r.runs);
            if runs > 1 { format!("{iv} ({runs} runs)") } else { iv.to_string() }
        })
        .collect();
    let ks: Vec<String> = grid.ks.iter().map(usize::to_string).collect();
    let neurons = match grid.results.last().map(|r| &r.spec.query.selection) {
        Some(chosen @ Selection::ByHand(_)) => format!("Neurons {chosen}, scored by {}", q.criterion),
        _ => format!("Neurons ranked by {}", q.criterion),
    };
    let caption = vec![
        format!(
            "{neurons} ({} granularity, {} ranking{}{}); k = {}. Changes: {}.",
            q.granularity,
            q.scope,
            if q.normalize_layers { ", scores divided by their layer's mean" } else { "" },
            candidates(&q.candidates),
            ks.join(", "),
            changes.join("; ")
        ),
        format!(
            "Bars: mean over runs of (after − before), percentage points; whiskers ±1 sd over runs. \
             {} examples per group on {}. Seed {}.",
            examples(first),
            spec.split,
            spec.seed
        ),
    ];
    (title, caption)
}

/// The candidate filter in words ("" for every layer).
pub(super) fn candidates(c: &CandidateFilter) -> String {
    let mut parts = Vec::new();
    if c.exclude_head {
        parts.push("head excluded".to_string());
    }
    if c.exclude_shortcuts {
        parts.push("shortcuts excluded".to_string());
    }
    if !c.layers.is_empty() {
        parts.push(format!("layers {}", c.layers.join(", ")));
    }
    parts.iter().map(|p| format!(", {p}")).collect()
}

fn examples(r: &InterventionResult) -> String {
    let counts: Vec<usize> = r.groups.iter().map(|g| g.examples).collect();
    if counts.windows(2).all(|w| w[0] == w[1]) {
        counts.first().map_or("0".into(), usize::to_string)
    } else {
        counts.iter().enumerate().map(|(g, n)| format!("G{g} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// The symmetric y range: every bar and whisker, rounded up to 10 points.
pub(super) fn y_max(grid: &InterventionGrid) -> f64 {
    let reach = grid
        .results
        .iter()
        .flat_map(|r| &r.groups)
        .filter_map(|g| g.change.map(|c| pp(c.abs()) + pp(g.after_std.unwrap_or(0.0))))
        .fold(0.0, f64::max);
    axis_max(reach, 10.0)
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    body: &DrawingArea<DB, Shift>,
    grid: &InterventionGrid,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let groups: Vec<String> = grid
        .results
        .first()
        .map(|r| r.groups.iter().map(|g| format!("G{} {}", g.group, g.name)).collect())
        .unwrap_or_default();
    let (legend, panels) = body.split_vertically(24);
    let mut x = 60;
    for (g, name) in groups.iter().enumerate() {
        let label = format!("■ {name}");
        legend.draw_text(&label, &text(13, HPos::Left, VPos::Top).color(&group_color(g)), (x, 4))?;
        x += 24 + 8 * label.chars().count() as i32;
    }
    let n = grid.interventions.len();
    let cols = if n == 1 { 1 } else { 2 };
    let areas = panels.split_evenly((n.div_ceil(cols), cols));
    let top = y_max(grid);
    for (i, area) in areas.iter().enumerate().take(n) {
        panel(root, area, grid, i, top)?;
    }
    Ok(())
}

fn panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    grid: &InterventionGrid,
    i: usize,
    top: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let ks = grid.ks.len();
    let mut chart = ChartBuilder::on(area)
        .caption(grid.interventions[i].to_string(), (FAMILY, 15))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(58)
        .build_cartesian_2d(0f64..ks as f64, -top..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(9)
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .y_desc("Δ accuracy (percentage points)")
        .x_desc("k (neurons changed)")
        .y_label_formatter(&|v| if v.abs() < 1e-9 { "0".into() } else { format!("{v:+.0}") })
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 12))
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (ks as f64, 0.0)], BLACK.stroke_width(1)))?;
    for (j, &k) in grid.ks.iter().enumerate() {
        let (cx, cy) = chart.backend_coord(&(j as f64 + 0.5, -top));
        root.draw_text(&format!("k = {k}"), &text(12, HPos::Center, VPos::Top), (cx, cy + 4))?;
        let Some(result) = grid.get(i, j) else { continue };
        let width = 0.8 / result.groups.len().max(1) as f64;
        for (g, change) in result.groups.iter().enumerate() {
            let Some(c) = change.change else { continue };
            let x0 = j as f64 + 0.1 + g as f64 * width;
            let mid = x0 + width * 0.45;
            let value = pp(c);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.9, value)],
                group_color(g).filled(),
            )))?;
            let sd = pp(change.after_std.unwrap_or(0.0));
            if result.runs > 1 && sd > 0.0 {
                let cap = width * 0.2;
                let whisker = [
                    vec![(mid, value - sd), (mid, value + sd)],
                    vec![(mid - cap, value - sd), (mid + cap, value - sd)],
                    vec![(mid - cap, value + sd), (mid + cap, value + sd)],
                ];
                chart.draw_series(whisker.into_iter().map(|p| PathElement::new(p, BLACK.stroke_width(1))))?;
            }
        }
    }
    Ok(())
}
