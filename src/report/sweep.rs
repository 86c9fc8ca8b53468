//! The layer sweep: a layer × group table of changes.

use super::Render;
use super::text::{csv, fixed6, points, table};
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
                vec![
                    (i + 1).to_string(),
                    g.group.to_string(),
                    g.name.clone(),
                    g.examples.to_string(),
                    fixed6(g.before),
                    fixed6(g.after),
                    fixed6(g.after_std),
                    fixed6(g.change),
                    fixed6(g.abs_change),
                    spec.clone(),
                ]
            })
        });
        csv(
            &[
                "run",
                "group",
                "name",
                "examples",
                "before",
                "after",
                "after_std",
                "change",
                "abs_change",
                "spec",
            ],
            rows,
        )
    }
}

impl Render for Sweep {
    fn table(&self) -> String {
        let groups = self.rows.iter().map(|r| r.groups.len()).max().unwrap_or(0);
        let mut header = vec!["layer".to_string()];
        header.extend((0..groups).map(|g| format!("G{g}")));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let rows = self.rows.iter().map(|r| {
            let mut cells = vec![r.layer.clone()];
            match &r.error {
                Some(e) => cells.push(e.clone()),
                None => cells.extend(r.groups.iter().map(|g| points(g.change))),
            }
            cells
        });
        format!(
            "Change in points per layer (epoch {}, on {})\n{}",
            self.spec.base.epoch,
            self.spec.base.split,
            table(&header, rows)
        )
    }

    fn csv(&self) -> String {
        let rows = self.rows.iter().flat_map(|r| {
            let failed = r.error.as_ref().map(|e| {
                vec![
                    r.layer.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    e.clone(),
                ]
            });
            failed.into_iter().chain(r.groups.iter().map(|g| {
                vec![
                    r.layer.clone(),
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
        csv(&["layer", "group", "name", "examples", "before", "after", "change", "abs_change", "error"], rows)
    }
}
