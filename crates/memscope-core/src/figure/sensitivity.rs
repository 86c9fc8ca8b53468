//! `sensitivity`: the count of sensitive layers per group against the rewinding distance
//! (left), and every (layer, distance, group) change as a heat map (right), a dot marking
//! each change at or beyond the threshold.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::curves::Chart;
use super::style::{FAMILY, GRID, group_color, markers, text};
use super::{axis_max, pp};
use crate::studies::sensitivity::SensitivityStudy;

pub(super) fn describe(study: &SensitivityStudy) -> (String, Vec<String>) {
    let spec = &study.spec;
    let distances: Vec<String> = spec.epochs_back.iter().map(usize::to_string).collect();
    let title = format!("Sensitive layers under rewinding · {} · epoch {}", spec.split, spec.epoch);
    let examples: Vec<String> = study
        .threshold_in_examples
        .iter()
        .map(|t| format!("G{} {} of {}", t.group, t.min_examples, t.examples))
        .collect();
    let caption = vec![
        format!(
            "Each layer (weight and bias) rewound alone by n = {} epochs, everything else unchanged. \
             A layer is sensitive for a group when |Δ accuracy| ≥ {} percentage points ({} examples).",
            distances.join(", "),
            pp(spec.threshold),
            examples.join(", ")
        ),
        "Heat map: signed Δ accuracy (after − before), percentage points; a dot marks a sensitive cell. \
         Deterministic (no seed)."
            .to_string(),
    ];
    (title, caption)
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    body: &DrawingArea<DB, Shift>,
    study: &SensitivityStudy,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, _) = body.dim_in_pixel();
    let (left, right) = body.split_horizontally(w * 36 / 100);
    counts(&left, study)?;
    heat_map(root, &right, study)
}

fn counts<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, study: &SensitivityStudy) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let distances = &study.spec.epochs_back;
    let x_max = distances.iter().copied().max().unwrap_or(1) as f64;
    let layers = study.rows.len() / distances.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption("sensitive layers per group", (FAMILY, 14))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(46)
        .build_cartesian_2d(0f64..x_max * 1.05, 0f64..layers.max(1) as f64 + 0.5)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .x_desc("rewinding distance n (epochs)")
        .y_desc(format!("sensitive layers (of {layers})"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() })
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .draw()?;
    for (g, name) in study.groups.iter().enumerate() {
        let points: Vec<(f64, f64)> = distances
            .iter()
            .zip(&study.counts)
            .map(|(&n, row)| (n as f64, row.get(g).copied().unwrap_or(0) as f64))
            .collect();
        let color = group_color(g);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("G{g} {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        markers(&mut chart, g, &points, color)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 11))
        .draw()?;
    Ok(())
}

/// Orange for a loss, blue for a gain, white for none, darker with the size of the change.
pub(super) fn diverging(value: f64, max: f64) -> RGBColor {
    let t = (value.abs() / max).clamp(0.0, 1.0);
    let (r, g, b) = if value < 0.0 { (0xD5, 0x5E, 0x00) } else { (0x00, 0x72, 0xB2) };
    let mix = |c: u8| (255.0 + (c as f64 - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

fn heat_map<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    study: &SensitivityStudy,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let distances = &study.spec.epochs_back;
    let groups = study.groups.len().max(1);
    let layers: Vec<&str> = study
        .rows
        .iter()
        .filter(|r| Some(&r.epochs_back) == distances.first())
        .map(|r| r.layer.as_str())
        .collect();
    let columns = distances.len() * groups;
    let rows = layers.len().max(1);
    let max = axis_max(
        study.rows.iter().flat_map(|r| r.change.iter().flatten()).map(|c| pp(c.abs())).fold(0.0, f64::max),
        5.0,
    );
    let name_width = 8 * layers.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32 + 12;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(64)
        .margin_left(name_width)
        .x_label_area_size(40)
        .build_cartesian_2d(0f64..columns as f64, 0f64..rows as f64)?;
    let (x, y) = chart.backend_coord(&(columns as f64 / 2.0, rows as f64));
    root.draw_text(
        &format!("Δ accuracy per layer, n and group (colour scale ±{max:.0} percentage points)"),
        &text(14, HPos::Center, VPos::Bottom),
        (x, y - 40),
    )?;
    for (i, &n) in distances.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(((i * groups) as f64) + groups as f64 / 2.0, rows as f64));
        root.draw_text(&format!("n = {n}"), &text(12, HPos::Center, VPos::Bottom), (x, y - 18))?;
        for g in 0..groups {
            let (x, y) = chart.backend_coord(&((i * groups + g) as f64 + 0.5, rows as f64));
            root.draw_text(
                &g.to_string(),
                &text(10, HPos::Center, VPos::Bottom).color(&group_color(g)),
                (x, y - 2),
            )?;
        }
    }
    for (l, name) in layers.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, (rows - l) as f64 - 0.5));
        root.draw_text(name, &text(11, HPos::Right, VPos::Center), (x - 4, y))?;
    }
    cells(&mut chart, study, &layers, max)?;
    let (x, y) = chart.backend_coord(&(0.0, 0.0));
    root.draw_text(
        "columns: group number under each n; orange = accuracy lost, blue = gained",
        &text(11, HPos::Left, VPos::Top),
        (x, y + 8),
    )?;
    Ok(())
}

/// A square per (layer, distance, group) coloured by the change, a dot on each sensitive
/// one, and a line between the distances' blocks.
fn cells<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    study: &SensitivityStudy,
    layers: &[&str],
    max: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let distances = &study.spec.epochs_back;
    let groups = study.groups.len().max(1);
    let rows = layers.len().max(1);
    for (i, &n) in distances.iter().enumerate() {
        for (l, layer) in layers.iter().enumerate() {
            let Some(row) = study.rows.iter().find(|r| r.epochs_back == n && r.layer == *layer) else {
                continue;
            };
            let y0 = (rows - l - 1) as f64;
            for g in 0..groups {
                let x0 = (i * groups + g) as f64;
                let value = row.change.get(g).copied().flatten();
                let color = value.map_or(RGBColor(0xEE, 0xEE, 0xEE), |v| diverging(pp(v), max));
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                    color.filled(),
                )))?;
                if row.sensitive.get(g).copied().unwrap_or(false) {
                    let dark = value.is_some_and(|v| pp(v.abs()) > max * 0.6);
                    let dot = if dark { WHITE } else { BLACK };
                    chart.draw_series(std::iter::once(Circle::new((x0 + 0.5, y0 + 0.5), 3, dot.filled())))?;
                }
            }
        }
        // A line between the distances' blocks.
        if i > 0 {
            let x = (i * groups) as f64;
            chart.draw_series(LineSeries::new([(x, 0.0), (x, rows as f64)], BLACK.stroke_width(2)))?;
        }
    }
    Ok(())
}
