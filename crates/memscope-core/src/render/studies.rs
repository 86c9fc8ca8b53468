//! The studies: rank histograms, sensitive layers and the control table.

use std::fmt::Write as _;

use super::Render;
use super::text::{csv, fixed6, percent, points, table};
use crate::studies::control::ControlStudy;
use crate::studies::ranks::{self, RankStudy};
use crate::studies::sensitivity::SensitivityStudy;

/// The sensitivity threshold in points and in examples of each group, e.g. "|change| >= 1.0
/// point = >= 1 of 100 examples in each group".
pub fn threshold_in_words(study: &SensitivityStudy) -> String {
    let points = 100.0 * study.spec.threshold;
    let unit = if (points - 1.0).abs() < 1e-9 { "point" } else { "points" };
    let per_group = &study.threshold_in_examples;
    let examples = match per_group.first() {
        Some(first)
            if per_group
                .iter()
                .all(|t| t.examples == first.examples && t.min_examples == first.min_examples) =>
        {
            format!(">= {} of {} examples in each group", first.min_examples, first.examples)
        }
        _ => {
            let each: Vec<String> = per_group
                .iter()
                .map(|t| format!("G{} >= {} of {}", t.group, t.min_examples, t.examples))
                .collect();
            format!("{} examples", each.join(", "))
        }
    };
    format!("|change| >= {points:.1} {unit} = {examples}")
}

/// "0-5", "5-10", … "95-100": the histogram bins' names.
fn bins() -> Vec<String> {
    (0..ranks::BINS).map(|b| format!("{}-{}", 5 * b, 5 * b + 5)).collect()
}

impl Render for RankStudy {
    fn table(&self) -> String {
        let spec = &self.spec;
        let bins = bins();
        let mut out = format!(
            "Rank histograms, epoch {}: the top {} of {} {} neurons by each score \
             (gradient on {} with {}); counts per 5-point percentile bin, 100 = largest\n",
            spec.epoch, self.selected, self.candidates, spec.granularity, spec.split, spec.sampling
        );
        let shown: Vec<usize> = (0..ranks::BINS).rev().take(6).collect();
        let mut header = vec!["group".to_string(), "histogram".to_string()];
        header.extend(shown.iter().map(|&b| bins[b].clone()));
        header.push("below 70".into());
        header.push("in both tops".into());
        let rows = self.groups.iter().flat_map(|g| {
            [
                ("magnitude rank of top-gradient", &g.magnitude_rank_of_top_gradient),
                ("gradient rank of top-magnitude", &g.gradient_rank_of_top_magnitude),
            ]
            .map(|(what, h)| {
                let mut row = vec![format!("G{} {}", g.group, g.name), what.to_string()];
                row.extend(shown.iter().map(|&b| h[b].to_string()));
                row.push(h[..ranks::BINS - shown.len()].iter().sum::<usize>().to_string());
                row.push(g.overlap.to_string());
                row
            })
        });
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&table(&header, rows));
        out.push('\n');
        out
    }

    fn csv(&self) -> String {
        let bins = bins();
        let mut header = vec!["group", "direction"];
        header.extend(bins.iter().map(String::as_str));
        let rows = self.groups.iter().flat_map(|g| {
            [
                ("magnitude_rank_of_top_gradient", &g.magnitude_rank_of_top_gradient),
                ("gradient_rank_of_top_magnitude", &g.gradient_rank_of_top_magnitude),
            ]
            .map(|(dir, h)| {
                let mut row = vec![g.group.to_string(), dir.to_string()];
                row.extend(h.iter().map(|c| c.to_string()));
                row
            })
        });
        csv(&header, rows)
    }
}

impl Render for SensitivityStudy {
    fn table(&self) -> String {
        let spec = &self.spec;
        let mut out = format!(
            "Sensitive layers, epoch {}, {}: signed accuracy change (points) when one layer is \
             rewound n epochs; * marks |change| >= {:.1} points\n",
            spec.epoch,
            spec.split,
            100.0 * spec.threshold
        );
        for (i, &n) in spec.epochs_back.iter().enumerate() {
            let mut header = vec![format!("rewind {n}")];
            header.extend(self.groups.iter().enumerate().map(|(g, name)| format!("G{g} {name}")));
            let rows = self.rows.iter().filter(|r| r.epochs_back == n).map(|r| {
                let mut row = vec![r.layer.clone()];
                row.extend(
                    r.change
                        .iter()
                        .zip(&r.sensitive)
                        .map(|(c, &s)| format!("{}{}", points(*c), if s { "*" } else { " " })),
                );
                row
            });
            let mut rows: Vec<Vec<String>> = rows.collect();
            let mut count = vec!["sensitive layers".to_string()];
            count.extend(self.counts[i].iter().map(|c| format!("{c} ")));
            rows.push(count);
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", table(&header, rows));
        }
        let before: Vec<String> =
            self.before.groups.iter().map(|g| format!("G{} {}", g.group, percent(g.accuracy))).collect();
        let _ = writeln!(out, "before: {}", before.join(", "));
        let _ = writeln!(out, "threshold: {}", threshold_in_words(self));
        out
    }

    fn csv(&self) -> String {
        let mut header = vec!["layer".to_string(), "epochs_back".to_string()];
        header.extend((0..self.groups.len()).map(|g| format!("G{g}_change")));
        let rows = self.rows.iter().map(|r| {
            let mut row = vec![r.layer.clone(), r.epochs_back.to_string()];
            row.extend(r.change.iter().map(|&c| fixed6(c)));
            row
        });
        csv(&header.iter().map(String::as_str).collect::<Vec<_>>(), rows)
    }
}

impl Render for ControlStudy {
    fn table(&self) -> String {
        let spec = &self.spec;
        let mut header = vec!["zeroed".to_string(), "neurons".to_string()];
        let groups = self.rows.first().map(|r| r.critical.as_slice()).unwrap_or_default();
        header.extend(groups.iter().map(|g| format!("G{} {}", g.group, g.name)));
        let rows = self.rows.iter().flat_map(|r| {
            [("critical (top)", &r.critical), ("control (random)", &r.control)].map(|(which, changes)| {
                let mut row = vec![format!("{} ({:.2}%)", r.count, 100.0 * r.fraction), which.to_string()];
                row.extend(changes.iter().map(|g| points(g.change)));
                row
            })
        });
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        format!(
            "Control, epoch {}, {}: signed accuracy change (points) from zeroing the top neurons by {} \
             vs the same number drawn at random outside the top (mean of {} draws), of {} {} neurons\n{}\n",
            spec.epoch,
            spec.split,
            spec.criterion,
            spec.repeats,
            self.candidates,
            spec.granularity,
            table(&header, rows)
        )
    }

    fn csv(&self) -> String {
        let rows = self.rows.iter().flat_map(|r| {
            let mut rows = Vec::new();
            for (which, changes) in [("critical", &r.critical), ("control", &r.control)] {
                for g in changes {
                    rows.push(vec![
                        r.fraction.to_string(),
                        r.count.to_string(),
                        which.to_string(),
                        g.group.to_string(),
                        fixed6(g.change),
                        fixed6(g.abs_change),
                    ]);
                }
            }
            rows
        });
        csv(&["fraction", "count", "neurons", "group", "change", "abs_change"], rows)
    }
}
