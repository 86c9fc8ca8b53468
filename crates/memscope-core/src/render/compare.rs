//! The comparison of methods: a table per selection, CSV one row per experiment and
//! selection.

use super::Render;
use super::text::{csv, fixed6, percent, table};
use crate::mitigate::compare::{Comparison, Selection, Spread};

fn spread(s: Option<Spread>) -> String {
    match s {
        Some(Spread { mean, std: Some(std) }) => format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * std),
        Some(Spread { mean, std: None }) => format!("{:.1}", 100.0 * mean),
        None => "n/a".into(),
    }
}

impl Render for Comparison {
    fn table(&self) -> String {
        let mut out = format!(
            "Methods compared on {} (val {} examples, test {}); accuracies in %, mean ± sample std over runs.\n\
             worst = worst-group accuracy; mean = group accuracies weighted by the training split's group shares; \
             avg = all examples of the split; epochs = epochs after the start (a parent: its training, up to the \
             checkpoint its mitigations here started from; DFR: 1 refit); augment = the training's augmentation.\n\
             group labels = what the training read; best val worst-group selection also reads val group labels, \
             and never picks a mitigated run's epoch 0 (its unchanged parent, which has its own row).\n",
            self.data, self.val_examples, self.test_examples
        );
        for selection in Selection::ALL {
            out.push_str(&format!("\nModel selection: {}\n", selection.describe()));
            let rows = self.methods.iter().filter(|m| m.selection == selection).map(|m| {
                let val = |s| if m.val_in_sample { format!("{}*", spread(s)) } else { spread(s) };
                vec![
                    m.method.clone(),
                    m.labels.clone(),
                    m.augment.clone(),
                    m.epochs.to_string(),
                    m.runs.to_string(),
                    val(m.val.worst_group),
                    val(m.val.mean_train_weighted),
                    val(m.val.average),
                    spread(m.test.worst_group),
                    spread(m.test.mean_train_weighted),
                    spread(m.test.average),
                ]
            });
            out.push_str(&table(
                &[
                    "method",
                    "group labels",
                    "augment",
                    "epochs",
                    "runs",
                    "val worst",
                    "val mean",
                    "val avg",
                    "test worst",
                    "test mean",
                    "test avg",
                ],
                rows,
            ));
            out.push('\n');
        }
        out.push_str("\nExperiments (epoch chosen: last / best val worst-group)\n");
        let rows = self.experiments.iter().map(|e| {
            let [last, best] = [&e.selected[0], &e.selected[1]];
            vec![
                e.name.clone(),
                e.method.clone(),
                e.seed.map(|s| s.to_string()).unwrap_or_default(),
                e.augment.clone(),
                format!("{} / {}", last.epoch, best.epoch),
                percent(last.test.worst_group_accuracy),
                percent(best.test.worst_group_accuracy),
            ]
        });
        out.push_str(&table(
            &[
                "experiment",
                "method",
                "seed",
                "augment",
                "epochs",
                "test worst (last)",
                "test worst (best val)",
            ],
            rows,
        ));
        out.push('\n');
        for note in &self.notes {
            out.push_str(&format!("Note: {note}.\n"));
        }
        out
    }

    fn csv(&self) -> String {
        let header = [
            "experiment",
            "name",
            "method",
            "group_labels",
            "augment",
            "seed",
            "selection",
            "epoch",
            "val_worst_group",
            "val_mean_train_weighted",
            "val_average",
            "test_worst_group",
            "test_mean_train_weighted",
            "test_average",
        ];
        let rows = self.experiments.iter().flat_map(|e| {
            e.selected.iter().map(move |s| {
                vec![
                    e.experiment.clone(),
                    e.name.clone(),
                    e.method.clone(),
                    e.labels.clone(),
                    e.augment.clone(),
                    e.seed.map(|s| s.to_string()).unwrap_or_default(),
                    match s.selection {
                        Selection::LastEpoch => "last-epoch".to_string(),
                        Selection::BestValWorstGroup => "best-val-worst-group".to_string(),
                    },
                    s.epoch.to_string(),
                    fixed6(s.val.worst_group_accuracy),
                    fixed6(s.val.mean_accuracy_train_weighted),
                    fixed6(s.val.average_accuracy),
                    fixed6(s.test.worst_group_accuracy),
                    fixed6(s.test.mean_accuracy_train_weighted),
                    fixed6(s.test.average_accuracy),
                ]
            })
        });
        csv(&header, rows)
    }
}
