//! `ranks`: for every group, where its top-gradient neurons sit in the magnitude ranking
//! (left) and where the top-magnitude neurons sit in its gradient ranking (right): counts per
//! 5-point bin of percentile rank, each nonzero bin labelled with its count.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::bars::candidates;
use super::style::{FAMILY, GRID, group_color, text};
use crate::studies::ranks::{BINS, RankStudy};

pub(super) fn describe(study: &RankStudy) -> (String, Vec<String>) {
    let spec = &study.spec;
    let title = format!(
        "Rank histograms, top {}% of {} {}s · gradients on {} · epoch {}",
        100.0 * spec.fraction,
        study.candidates,
        spec.granularity,
        spec.split,
        spec.epoch
    );
    let caption = vec![format!(
        "Each top set holds {} (the top {}% by magnitude, or by the gradient norm of the group's loss: \
         {} of {}{}). Percentile rank among all {} candidates; bins of 5 points, 95-100 at the right. Seed {}.",
        super::count(study.selected, "neuron"),
        100.0 * spec.fraction,
        spec.sampling,
        spec.split,
        candidates(&spec.candidates),
        study.candidates,
        spec.seed
    )];
    (title, caption)
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    body: &DrawingArea<DB, Shift>,
    study: &RankStudy,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let rows = study.groups.len().max(1);
    let areas = body.split_evenly((rows, 2));
    for (g, group) in study.groups.iter().enumerate() {
        let name = format!("G{} {}", group.group, group.name);
        histogram(
            root,
            &areas[2 * g],
            &group.magnitude_rank_of_top_gradient,
            &format!("{name}: top by gradient → magnitude rank"),
            "magnitude percentile rank (%)",
            g,
        )?;
        histogram(
            root,
            &areas[2 * g + 1],
            &group.gradient_rank_of_top_magnitude,
            &format!("{name}: top by magnitude → gradient rank (overlap {})", group.overlap),
            &format!("gradient percentile rank for G{} (%)", group.group),
            g,
        )?;
    }
    Ok(())
}

fn histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    counts: &[usize],
    title: &str,
    x_desc: &str,
    g: usize,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let most = counts.iter().copied().max().unwrap_or(0);
    let top = (most as f64 * 1.2).ceil().max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 13))
        .margin(6)
        .x_label_area_size(34)
        .y_label_area_size(46)
        .build_cartesian_2d(0f64..100f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(11)
        .y_labels(5)
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .x_desc(x_desc)
        .y_desc("neurons")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() })
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 11))
        .draw()?;
    let width = 100.0 / BINS as f64;
    for (b, &count) in counts.iter().enumerate() {
        let x0 = b as f64 * width;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x0 + 0.4, 0.0), (x0 + width - 0.4, count as f64)],
            group_color(g).filled(),
        )))?;
        if count > 0 {
            let (x, y) = chart.backend_coord(&(x0 + width / 2.0, count as f64));
            root.draw_text(&count.to_string(), &text(11, HPos::Center, VPos::Bottom), (x, y - 2))?;
        }
    }
    Ok(())
}
