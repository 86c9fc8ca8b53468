//! `diagnostics`: what fine-tuning runs recorded at each epoch, in small panels over one epoch
//! axis: NT-Xent, the supervised term, the gradient norm and the dense-vs-masked distance (both
//! on log scales), and worst-group val accuracy for context. A line per run; a run of several
//! seeds is their mean, shaded from the lowest to the highest seed.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::curves::{Chart, EpochAxes, beside_legend, epoch_chart};
use super::pp;
use super::style::{self, markers, series_color};
use crate::studies::diagnostics::{DiagnosticCurves, Quantity, Spread};

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 190;

/// The figure's size: five panels, and the caption's lines below them.
pub(super) fn size(d: &DiagnosticCurves) -> (u32, u32) {
    let (_, caption) = describe(d);
    let chars = (WIDTH as usize / 7).max(40);
    // The caption's lines and the provenance line.
    let lines = caption.iter().map(|c| style::wrap(c, chars).len()).sum::<usize>() + 1;
    (WIDTH, 34 + PANEL_HEIGHT * Quantity::ALL.len() as u32 + 16 * lines as u32 + 8)
}

pub(super) fn describe(d: &DiagnosticCurves) -> (String, Vec<String>) {
    let title =
        "Fine-tuning diagnostics per epoch: training-batch means, and worst-group val accuracy".to_string();
    let mut caption = vec![
        "Each point is one fine-tuning epoch as the run recorded it when the epoch ended (epoch 0, the start \
         checkpoint, trained nothing and has only its val accuracy). NT-Xent (its two terms summed, nats), the \
         supervised term (before λ) and the dense-vs-masked distance (per example, the L2 distance between the \
         softmax outputs of the dense and the masked pass, 0 to √2) are means over the epoch's training batches \
         (train split, augmented as the run trained); the gradient norm is the L2 norm of a step's whole gradient, \
         mean over the epoch's steps (log scale, as the distance); worst-group accuracy is the lowest group's \
         accuracy on val, in %."
            .to_string(),
        supervised_sentence(d),
        "One line per run as given: a folder of seed-N runs is the arithmetic mean over its seeds at each epoch \
         (worst group: each seed's worst group, then the mean), shaded from the lowest to the highest seed \
         (min-max, not a standard deviation). The folders are in the JSON."
            .to_string(),
    ];
    caption.extend(left_out(d));
    (title, caption)
}

/// The supervised term of every run that records it, in words.
fn supervised_sentence(d: &DiagnosticCurves) -> String {
    let mut terms: Vec<(&str, Vec<&str>)> = Vec::new();
    for run in &d.runs {
        let Some(term) = run.supervised.as_deref() else { continue };
        match terms.iter_mut().find(|(t, _)| *t == term) {
            Some((_, labels)) => labels.push(&run.label),
            None => terms.push((term, vec![&run.label])),
        }
    }
    match &terms[..] {
        [(term, _)] => format!("Supervised term: {term}, in every run that records it."),
        _ => {
            let each: Vec<String> =
                terms.iter().map(|(term, labels)| format!("{term} ({})", labels.join("; "))).collect();
            format!("Supervised term: {}.", each.join("; "))
        }
    }
}

/// The runs each panel leaves out: those that record no such quantity, and on a log scale
/// the values ≤ 0 it cannot draw.
fn left_out(d: &DiagnosticCurves) -> Vec<String> {
    let mut lines = Vec::new();
    let mut missing: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
    for quantity in Quantity::ALL {
        let runs = d.missing(quantity);
        if runs.is_empty() {
            continue;
        }
        match missing.iter_mut().find(|(r, _)| *r == runs) {
            Some((_, panels)) => panels.push(short_name(quantity)),
            None => missing.push((runs, vec![short_name(quantity)])),
        }
    }
    for (runs, panels) in missing {
        lines.push(format!("Not in the {} panels (not recorded): {}.", panels.join(", "), runs.join("; ")));
    }
    for quantity in Quantity::ALL.into_iter().filter(|q| q.log_scale()) {
        for run in &d.runs {
            let Some(series) = run.series(quantity) else { continue };
            let epochs: Vec<String> =
                series.points.iter().filter(|p| p.min <= 0.0).map(|p| p.epoch.to_string()).collect();
            if !epochs.is_empty() {
                lines.push(format!(
                    "{}: {} ≤ 0 at epoch {} (a seed's, or all), not drawable on its log scale: left out there.",
                    run.label,
                    short_name(quantity),
                    epochs.join(", ")
                ));
            }
        }
    }
    lines
}

fn short_name(quantity: Quantity) -> &'static str {
    match quantity {
        Quantity::Ntxent => "NT-Xent",
        Quantity::Supervised => "supervised",
        Quantity::GradNorm => "gradient norm",
        Quantity::Distance => "distance",
        Quantity::WorstGroupVal => "worst-group",
    }
}

/// The panel's title, drawn above it (the SVG names every panel by it).
pub(super) fn panel_title(d: &DiagnosticCurves, quantity: Quantity) -> String {
    match quantity {
        Quantity::Ntxent => "NT-Xent, both terms (nats)".to_string(),
        Quantity::Supervised => {
            let mut terms: Vec<&str> = d.runs.iter().filter_map(|r| r.supervised.as_deref()).collect();
            terms.sort_unstable();
            terms.dedup();
            match terms[..] {
                [term] => format!("supervised term before λ: {term}"),
                _ => "supervised term before λ (each run's: see the caption)".to_string(),
            }
        }
        Quantity::GradNorm => "gradient norm (L2, every parameter; log scale)".to_string(),
        Quantity::Distance => "dense-vs-masked distance (L2 of softmax outputs; log scale)".to_string(),
        Quantity::WorstGroupVal => "worst-group val accuracy (%)".to_string(),
    }
}

pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, d: &DiagnosticCurves) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let entries: Vec<String> = d.runs.iter().map(|r| r.label.clone()).collect();
    let plot = beside_legend(area, &entries)?;
    let last = d
        .runs
        .iter()
        .flat_map(|r| r.series.iter().flat_map(|s| s.points.iter().map(|p| p.epoch)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let panels = plot.split_evenly((Quantity::ALL.len(), 1));
    for (i, (panel, quantity)) in panels.iter().zip(Quantity::ALL).enumerate() {
        let bottom = i + 1 == Quantity::ALL.len();
        draw_panel(panel, d, quantity, last, bottom)?;
    }
    Ok(())
}

/// A point's value on its panel's y axis: log10 on a log scale (none for a value ≤ 0),
/// percent for accuracy.
fn on_axis(quantity: Quantity, value: f64) -> Option<f64> {
    let y = match quantity {
        Quantity::WorstGroupVal => pp(value),
        q if q.log_scale() => value.log10(),
        _ => value,
    };
    y.is_finite().then_some(y)
}

/// (epoch, mean, min, max) on the axis, of the points it can draw.
fn drawable(quantity: Quantity, points: &[Spread]) -> Vec<(f64, f64, f64, f64)> {
    points
        .iter()
        .filter_map(|p| {
            let (mean, min, max) =
                (on_axis(quantity, p.mean)?, on_axis(quantity, p.min)?, on_axis(quantity, p.max)?);
            Some((p.epoch as f64, mean, min, max))
        })
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &DiagnosticCurves,
    quantity: Quantity,
    last: f64,
    bottom: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.draw_text(&panel_title(d, quantity), &style::text(13, HPos::Left, VPos::Top), (68, 4))?;
    let lines: Vec<Vec<(f64, f64, f64, f64)>> = d
        .runs
        .iter()
        .map(|r| r.series(quantity).map_or_else(Vec::new, |s| drawable(quantity, &s.points)))
        .collect();
    let (y, label) = y_axis(quantity, lines.iter().flatten().flat_map(|p| [p.2, p.3]));
    let axes = EpochAxes {
        first: 0.0,
        last,
        y,
        x_desc: if bottom { "fine-tuning epoch" } else { "" },
        y_desc: unit(quantity),
        legend_room: false,
    };
    let below_title = area.margin(14, 0, 0, 0);
    let mut chart = epoch_chart(&below_title, axes, &label)?;
    for (i, points) in lines.iter().enumerate() {
        draw_run(&mut chart, i, points)?;
    }
    Ok(())
}

fn unit(quantity: Quantity) -> &'static str {
    match quantity {
        Quantity::Ntxent | Quantity::Supervised => "batch mean",
        Quantity::GradNorm | Quantity::Distance => "L2 (log)",
        Quantity::WorstGroupVal => "%",
    }
}

type Label = Box<dyn Fn(&f64) -> String>;

/// The y range holding `values` (already on the axis) and how its ticks read: whole decades
/// on a log scale, 0-100 for accuracy, else the values' range with a margin.
fn y_axis(quantity: Quantity, values: impl Iterator<Item = f64>) -> (std::ops::Range<f64>, Label) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    match quantity {
        Quantity::WorstGroupVal => (0.0..100.0, Box::new(|v: &f64| format!("{v:.0}"))),
        q if q.log_scale() => {
            let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
            let decade = |v: &f64| {
                if (v - v.round()).abs() < 1e-9 { format!("1e{:.0}", v.round() + 0.0) } else { String::new() }
            };
            (lo..hi, Box::new(decade))
        }
        _ => {
            let span = hi - lo;
            let pad =
                if span > 1e-12 * hi.abs().max(1.0) { 0.08 * span } else { (0.01 * hi.abs()).max(1e-6) };
            let (lo, hi) = (lo - pad, hi + pad);
            let decimals = (1.0 - (hi - lo).log10().floor()).clamp(0.0, 8.0) as usize;
            (lo..hi, Box::new(move |v: &f64| format!("{v:.decimals$}")))
        }
    }
}

/// Run `i`'s mean line with its markers, over its seeds' min-max band where it has several.
fn draw_run<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    i: usize,
    points: &[(f64, f64, f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let color = series_color(i);
    if points.iter().any(|p| p.3 > p.2) {
        let upper = points.iter().map(|p| (p.0, p.3));
        let band: Vec<(f64, f64)> = upper.chain(points.iter().rev().map(|p| (p.0, p.2))).collect();
        chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18).filled())))?;
    }
    let means: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    chart.draw_series(LineSeries::new(means.clone(), color.stroke_width(2)))?;
    markers(chart, i, &means, color)
}
