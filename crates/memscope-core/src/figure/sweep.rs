//! `sweep`: the layer × group grid of one intervention run within each layer in turn (the
//! paper's layer-wise figures): each cell coloured by the signed change and labelled with it.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::sensitivity::diverging;
use super::style::{group_color, text};
use super::{axis_max, pp};
use crate::studies::sweep::Sweep;

/// Rows taken by one layer, in pixels.
pub(crate) const ROW: u32 = 26;

pub(crate) fn describe(s: &Sweep) -> (String, Vec<String>) {
    let base = &s.spec.base;
    let title = format!("Δ accuracy per layer and group · {} · epoch {}", base.split, base.epoch);
    let q = &base.query;
    let what = match &base.intervention {
        crate::edit::Intervention::RewindLayer { epochs_back, .. } => {
            format!("Each whole layer rewound by {epochs_back} epochs")
        }
        change => format!(
            "{change} of the {} neurons {} ({} granularity){}",
            q.selection,
            if q.selection.by_hand() {
                "of each row's layer".to_string()
            } else {
                format!("by {}", q.criterion)
            },
            q.granularity,
            if base.repeats > 1 && (s.spec.random_control || change.is_random()) {
                format!(", mean of {} runs", base.repeats)
            } else {
                String::new()
            }
        ),
    };
    let control = if s.spec.random_control {
        " Random control: in each layer, neurons drawn outside that layer's top (as --within LAYER --random-control)."
    } else {
        ""
    };
    let examples: Vec<String> = s
        .rows
        .iter()
        .find(|r| !r.groups.is_empty())
        .map(|r| r.groups.iter().map(|g| format!("G{} {}", g.group, g.examples)).collect())
        .unwrap_or_default();
    let caption = vec![
        format!(
            "{what}, run within each layer in turn (memscope intervene --within LAYER gives each row).{control}"
        ),
        format!(
            "Cells: signed mean of (after − before), percentage points; orange = accuracy lost, blue = gained. \
             Examples per group on {}: {}. Seed {}.",
            base.split,
            examples.join(", "),
            base.seed
        ),
    ];
    (title, caption)
}

/// A cell's text: the signed change in percentage points, one decimal ("+0.0", never "-0.0").
pub(crate) fn label(change: f64) -> String {
    let tenths = (pp(change) * 10.0).round();
    if tenths == 0.0 { "+0.0".to_string() } else { format!("{:+.1}", tenths / 10.0) }
}

/// The grid's height for `rows` layers (the figure adds title and caption).
pub(crate) fn height(rows: usize) -> u32 {
    230 + ROW * rows.max(1) as u32
}

pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let groups = s.rows.iter().map(|r| r.groups.len()).max().unwrap_or(0).max(1);
    let rows = s.rows.len().max(1);
    let max = axis_max(
        s.rows
            .iter()
            .flat_map(|r| r.groups.iter().filter_map(|g| g.change))
            .map(|c| pp(c.abs()))
            .fold(0.0, f64::max),
        5.0,
    );
    let name_width = 8 * s.rows.iter().map(|r| r.layer.chars().count()).max().unwrap_or(4) as u32 + 16;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(40)
        .margin_left(name_width)
        .margin_right(40)
        .x_label_area_size(28)
        .build_cartesian_2d(0f64..groups as f64, 0f64..rows as f64)?;
    let names: Vec<String> = s
        .rows
        .iter()
        .find(|r| !r.groups.is_empty())
        .map(|r| r.groups.iter().map(|g| format!("G{} {}", g.group, g.name)).collect())
        .unwrap_or_default();
    for g in 0..groups {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, rows as f64));
        let name = names.get(g).cloned().unwrap_or_else(|| format!("G{g}"));
        root.draw_text(&name, &text(12, HPos::Center, VPos::Bottom).color(&group_color(g)), (x, y - 6))?;
    }
    for (l, row) in s.rows.iter().enumerate() {
        let y0 = (rows - l - 1) as f64;
        let (x, y) = chart.backend_coord(&(0.0, y0 + 0.5));
        root.draw_text(&row.layer, &text(11, HPos::Right, VPos::Center), (x - 6, y))?;
        if let Some(error) = &row.error {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y0), (groups as f64, y0 + 1.0)],
                RGBColor(0xEE, 0xEE, 0xEE).filled(),
            )))?;
            let (x, y) = chart.backend_coord(&(groups as f64 / 2.0, y0 + 0.5));
            let short: String = error.chars().take(70).collect();
            root.draw_text(&format!("not run: {short}"), &text(10, HPos::Center, VPos::Center), (x, y))?;
            continue;
        }
        for g in 0..groups {
            let change = row.groups.get(g).and_then(|c| c.change);
            let x0 = g as f64;
            let color = change.map_or(RGBColor(0xEE, 0xEE, 0xEE), |v| diverging(pp(v), max));
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                color.filled(),
            )))?;
            let label = change.map_or("n/a".to_string(), label);
            let dark = change.is_some_and(|v| pp(v.abs()) > max * 0.6);
            let (x, y) = chart.backend_coord(&(x0 + 0.5, y0 + 0.5));
            let style = text(12, HPos::Center, VPos::Center).color(if dark { &WHITE } else { &BLACK });
            root.draw_text(&label, &style, (x, y))?;
        }
    }
    let (x, y) = chart.backend_coord(&(0.0, 0.0));
    root.draw_text(
        &format!("colour scale ±{max:.0} percentage points; n/a: the group has no example"),
        &text(11, HPos::Left, VPos::Top),
        (x, y + 8),
    )?;
    Ok(())
}
