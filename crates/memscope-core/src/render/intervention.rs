//! Interventions (`intervene`, `rewind`, the explorer's export) and score listings.

use std::fmt::Write as _;

use super::Render;
use super::text::{csv, fixed6, percent, points, table};
use crate::studies::GroupChange;
use crate::studies::intervention::{ALL_CANDIDATES, InterventionResult, ScoreList, SelectedNeuron, Target};
use crate::studies::shift::{BoundaryShift, count};

/// One line saying what was done, to what, and where it was measured.
pub(crate) fn headline(result: &InterventionResult) -> String {
    let s = &result.spec;
    match s.target() {
        Target::Layer(_) => format!("{} at epoch {}, measured on {}", s.intervention, s.epoch, s.split),
        Target::Neurons(q) if q.selection.by_hand() => format!(
            "{} of {} {} neurons {}, scored by {} among the {} in scope {}, epoch {}, measured on {}",
            s.intervention,
            result.neurons.len(),
            q.granularity,
            q.selection,
            q.criterion,
            result.candidates,
            q.scope,
            s.epoch,
            s.split
        ),
        Target::Neurons(q) => format!(
            "{} of the {} {} neurons ({} of {} in scope {}) by {}{}, epoch {}, measured on {}",
            s.intervention,
            q.selection,
            q.granularity,
            result.neurons.len(),
            result.candidates,
            q.scope,
            q.criterion,
            if q.normalize_layers { ", layer-normalised" } else { "" },
            s.epoch,
            s.split
        ),
    }
}

impl Render for InterventionResult {
    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", headline(self));
        if self.runs > 1 {
            let _ = writeln!(out, "mean of {} runs (seeds from {})", self.runs, self.spec.seed);
        }
        if !self.neurons.is_empty() {
            let normalized = self.spec.query.normalize_layers;
            let rows = self.neurons.iter().map(|n| neuron_cells(n, normalized));
            let _ = writeln!(
                out,
                "\nSelected neurons ({})\n{}",
                percentile_legend(&self.neurons, normalized),
                table(&neuron_header(normalized), rows)
            );
        }
        let rows = self.groups.iter().map(|g| {
            let after = match (g.after, g.after_std) {
                (Some(a), Some(sd)) if self.runs > 1 => format!("{} ± {:.1}", percent(Some(a)), 100.0 * sd),
                (a, _) => percent(a),
            };
            let mark = if Some(g.group) == self.before.worst_group { " (worst)" } else { "" };
            vec![
                format!("G{} {}{mark}", g.group, g.name),
                g.examples.to_string(),
                percent(g.before),
                after,
                points(g.change),
                g.abs_change.map(|c| format!("{:.1}", 100.0 * c)).unwrap_or_else(|| "n/a".into()),
            ]
        });
        let _ = writeln!(
            out,
            "\nAccuracy on {} (change in percentage points; |change| is the slides' Δacc)\n{}",
            self.spec.split,
            table(&["group", "examples", "before", "after", "change", "|change|"], rows)
        );
        let (b, a) = (&self.before_summary, &self.after_summary);
        let _ = writeln!(
            out,
            "worst-group accuracy   {} -> {}",
            percent(b.worst_group_accuracy),
            percent(a.worst_group_accuracy)
        );
        let _ = writeln!(
            out,
            "mean accuracy          {} -> {}  (weighted by TRAINING group proportions)",
            percent(b.mean_accuracy_train_weighted),
            percent(a.mean_accuracy_train_weighted)
        );
        if let Some(shift) = &self.boundary_shift {
            let _ = writeln!(out, "boundary shift         {}", shift_lines(shift));
        }
        out
    }

    fn csv(&self) -> String {
        csv(&GROUP_COLUMNS, self.groups.iter().map(group_cells))
    }
}

/// The boundary-shift control in two lines: its sentence with the shift itself (one run) or
/// how many runs; then the flips per group and what else the shift changes.
pub(crate) fn shift_lines(s: &BoundaryShift) -> String {
    let mut line = s.sentence();
    match s.runs.as_slice() {
        [one] if one.shift.len() == 2 => {
            let _ = write!(line, "; margin shift {:+.3} ({})", one.shift[1], s.method);
        }
        [one] => {
            let shift: Vec<String> = one.shift.iter().map(|v| format!("{v:+.3}")).collect();
            let _ = write!(line, "; logit shift [{}] ({})", shift.join(", "), s.method);
        }
        runs => {
            let _ = write!(line, "; means of {} runs ({})", runs.len(), s.method);
        }
    }
    if s.mean_flips > 0.0 {
        let groups: Vec<String> = (s.mean_group_flips.iter().zip(&s.mean_group_explained).enumerate())
            .filter(|(_, (f, _))| **f > 0.0)
            .map(|(g, (f, e))| format!("G{g} {}/{}", count(*e), count(*f)))
            .collect();
        let _ = write!(
            line,
            "\n                       explained/flips {}; the shift changes {} other predictions",
            groups.join(", "),
            count(s.mean_extra)
        );
    }
    line
}

/// The CSV columns of one group's change, and its cells ([`group_cells`]).
pub(super) const GROUP_COLUMNS: [&str; 8] =
    ["group", "name", "examples", "before", "after", "after_std", "change", "abs_change"];

/// One group's change as CSV cells, in the order of [`GROUP_COLUMNS`].
pub(super) fn group_cells(g: &GroupChange) -> Vec<String> {
    vec![
        g.group.to_string(),
        g.name.clone(),
        g.examples.to_string(),
        fixed6(g.before),
        fixed6(g.after),
        fixed6(g.after_std),
        fixed6(g.change),
        fixed6(g.abs_change),
    ]
}

/// The ranked column's header when `--normalize-layers` divides each score by its layer's mean.
const NORMALIZED: &str = "score / layer mean";

fn neuron_header(normalized: bool) -> Vec<&'static str> {
    let mut header = vec!["neuron", "score"];
    if normalized {
        header.push(NORMALIZED);
    }
    header.extend(["score pct", "magnitude", "magnitude pct"]);
    header
}

fn neuron_cells(n: &SelectedNeuron, normalized: bool) -> Vec<String> {
    let mut cells = vec![n.id.to_string(), format!("{:.4e}", n.score)];
    if normalized {
        cells.push(format!("{:.4}", n.ranking_score));
    }
    cells.extend([
        format!("{:.1}", n.score_percentile),
        format!("{:.4}", n.magnitude),
        format!("{:.1}", n.magnitude_percentile),
    ]);
    cells
}

/// What the percentile columns rank among (and, normalised, what the ranking sorts by).
fn percentile_legend(neurons: &[SelectedNeuron], normalized: bool) -> String {
    let scope = |f: fn(&SelectedNeuron) -> &str| neurons.first().map(f).unwrap_or(ALL_CANDIDATES);
    let mut legend = format!(
        "percentile rank, 100 = largest; score pct: {}; magnitude pct: {}",
        scope(|n| &n.score_percentile_scope),
        scope(|n| &n.magnitude_percentile_scope)
    );
    if normalized {
        legend.push_str("; ranked by score / layer mean (--normalize-layers)");
    }
    legend
}

impl ScoreList {
    fn normalized(&self) -> bool {
        self.ranking.normalize_layers
    }

    fn header(&self) -> Vec<&'static str> {
        let mut header = vec!["rank"];
        header.extend(neuron_header(self.normalized()));
        header
    }

    fn rows(&self) -> impl Iterator<Item = Vec<String>> + '_ {
        self.neurons.iter().enumerate().map(|(i, n)| {
            let mut cells = vec![(i + 1).to_string()];
            cells.extend(neuron_cells(n, self.normalized()));
            cells
        })
    }
}

impl Render for ScoreList {
    fn table(&self) -> String {
        format!(
            "Top {} of {} {} neurons (scope {}) by {}, epoch {}\n{}\n{}",
            self.neurons.len(),
            self.candidates,
            self.granularity,
            self.ranking.scope,
            self.ranking.criterion,
            self.ranking.epoch,
            table(&self.header(), self.rows()),
            percentile_legend(&self.neurons, self.normalized())
        )
    }

    fn csv(&self) -> String {
        csv(&self.header(), self.rows())
    }
}
