//! The layer sweep and the epoch series: layer × group and epoch × group tables of changes.

use super::Render;
use super::intervention::{GROUP_COLUMNS, group_cells};
use super::text::{csv, fixed6, points, table};
use crate::studies::GroupChange;
use crate::studies::epochs::EpochSeries;
use crate::studies::intervention::InterventionResult;
use crate::studies::sweep::Sweep;

/// The explorer's History: its runs, newest first, each with its full spec.
#[derive(Clone, Debug, serde::Serialize)]
pub struct History {
    pub runs: Vec<InterventionResult>,
}

impl Render for History {
    fn table(&self) -> String {
        self.runs.iter().map(Render::table).collect::<Vec<_>>().join("\n")
    }

    /// One row per run and group; `run` 1 is the newest, its settings in `spec` (JSON).
    fn csv(&self) -> String {
        let rows = self.runs.iter().enumerate().flat_map(|(i, r)| {
            let spec = serde_json::to_string(&r.spec).unwrap_or_default();
            r.groups.iter().map(move |g| {
                let mut row = vec![(i + 1).to_string()];
                row.extend(group_cells(g));
                row.push(spec.clone());
                row
            })
        });
        let header: Vec<&str> = std::iter::once("run").chain(GROUP_COLUMNS).chain(["spec"]).collect();
        csv(&header, rows)
    }
}

impl Render for Sweep {
    fn table(&self) -> String {
        let rows = self.rows.iter().map(|r| (r.layer.clone(), &r.groups[..], r.error.as_deref()));
        format!(
            "Change in points per layer (epoch {}, on {})\n{}",
            self.spec.base.epoch,
            self.spec.base.split,
            grid_table("layer", rows)
        )
    }

    fn csv(&self) -> String {
        grid_csv("layer", self.rows.iter().map(|r| (r.layer.clone(), &r.groups[..], r.error.as_deref())))
    }
}

impl Render for EpochSeries {
    fn table(&self) -> String {
        let rows = self.points.iter().map(|p| (p.epoch.to_string(), &p.groups[..], p.error.as_deref()));
        format!("Change in points per epoch (on {})\n{}", self.spec.base.split, grid_table("epoch", rows))
    }

    fn csv(&self) -> String {
        grid_csv(
            "epoch",
            self.points.iter().map(|p| (p.epoch.to_string(), &p.groups[..], p.error.as_deref())),
        )
    }
}

/// One row per layer or epoch: each group's signed change, or why the row has none.
fn grid_table<'a>(
    what: &str,
    rows: impl Iterator<Item = (String, &'a [GroupChange], Option<&'a str>)>,
) -> String {
    let rows: Vec<_> = rows.collect();
    let groups = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut header = vec![what.to_string()];
    header.extend((0..groups).map(|g| format!("G{g}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows = rows.into_iter().map(|(label, groups, error)| {
        let mut cells = vec![label];
        match error {
            Some(e) => cells.push(e.to_string()),
            None => cells.extend(groups.iter().map(|g| points(g.change))),
        }
        cells
    });
    table(&header, rows)
}

/// One CSV row per (layer or epoch, group); a row without changes carries its error.
fn grid_csv<'a>(
    what: &str,
    rows: impl Iterator<Item = (String, &'a [GroupChange], Option<&'a str>)>,
) -> String {
    let rows = rows.flat_map(|(label, groups, error)| {
        let failed = error.map(|e| {
            let mut row = vec![label.clone()];
            row.extend(std::iter::repeat_n(String::new(), 7));
            row.push(e.to_string());
            row
        });
        failed.into_iter().chain(groups.iter().map(move |g| {
            vec![
                label.clone(),
                g.group.to_string(),
                g.name.clone(),
                g.examples.to_string(),
                fixed6(g.before),
                fixed6(g.after),
                fixed6(g.change),
                fixed6(g.abs_change),
                String::new(),
            ]
        }))
    });
    csv(&[what, "group", "name", "examples", "before", "after", "change", "abs_change", "error"], rows)
}
