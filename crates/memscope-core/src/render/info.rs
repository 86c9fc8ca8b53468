//! `memscope info`: an experiment's layers, groups and accuracy at one epoch.

use std::fmt::Write as _;

use super::Render;
use super::text::{csv, percent, table};
use crate::inspect::ExperimentInfo;
use crate::model::{LayerKind, ModelConfig};

impl Render for ExperimentInfo {
    fn table(&self) -> String {
        let mut out = self.header();
        out += &self.layer_table();
        out += &self.group_table();
        out += &self.accuracy_table();
        out
    }

    fn csv(&self) -> String {
        let acc = &self.accuracy;
        let rows = acc.groups.iter().map(|g| {
            vec![
                self.epoch.to_string(),
                acc.split.to_string(),
                g.group.to_string(),
                g.name.clone(),
                g.examples.to_string(),
                g.correct.to_string(),
                g.accuracy.map(|a| format!("{a:.6}")).unwrap_or_default(),
            ]
        });
        csv(&["epoch", "split", "group", "name", "examples", "correct", "accuracy"], rows)
    }
}

impl ExperimentInfo {
    /// Where the experiment came from, its model and data.
    fn header(&self) -> String {
        let mut out = String::new();
        let epochs = match (self.epochs.first(), self.epochs.last()) {
            (Some(first), Some(last)) => {
                format!("{} checkpoints, epochs {first}..={last}", self.epochs.len())
            }
            _ => "no checkpoints".into(),
        };
        let _ = writeln!(out, "experiment  {}  ({})", self.name, self.experiment);
        if let Some(import) = &self.import {
            let natural = import.label_order.iter().enumerate().all(|(i, &c)| i == c);
            let order = if natural {
                String::new()
            } else {
                format!("; the files' output i is class {:?}[i], reordered on reading", import.label_order)
            };
            let kept = match self.model {
                ModelConfig::TorchScript(_) => "each epoch's tensors are kept in the experiment",
                _ => "checkpoints are read in place",
            };
            let _ = writeln!(
                out,
                "imported    from {} (files by pattern {}{order}); {kept}",
                import.run, import.pattern
            );
        }
        if let Some(l) = &self.lineage {
            let _ = writeln!(
                out,
                "mitigated   {} from {} ({}) epoch {} (= epoch 0 here), seed {}; group labels used: {}",
                l.method.label(),
                l.parent_name,
                l.parent,
                l.start_epoch,
                l.seed,
                l.labels
            );
        }
        if let ModelConfig::TorchScript(c) = &self.model {
            let _ = writeln!(out, "model       {}", self.model.describe());
            let _ = writeln!(
                out,
                "            {} candidate layers (every *.weight of rank 2 or 4); no activation cache, no features \
                 for DFR or mitigation",
                c.layers.len()
            );
        }
        if let ModelConfig::Custom(c) = &self.model {
            let _ = writeln!(out, "model       {}", self.model.describe());
            let features = if c.features { "features for DFR" } else { "no features for DFR" };
            let _ = writeln!(
                out,
                "            {} candidate layers (its burn Conv2d and Linear modules); no activation cache, {features}",
                c.layers.len()
            );
        }
        if let Some(t) = &self.fine_tuning {
            let _ = writeln!(out, "fine-tuned  {}", t.summary());
        }
        let _ = writeln!(
            out,
            "model       {} trainable parameters (PyTorch's model.parameters()); {epochs}",
            self.trainable_parameters
        );
        let _ = writeln!(
            out,
            "            + {} buffer values (BatchNorm running_mean, running_var; num_batches_tracked is not stored)",
            self.buffers
        );
        let _ = writeln!(out, "data        {}", self.data);
        let _ = writeln!(out, "device      {}\n", self.device);
        out
    }

    fn layer_table(&self) -> String {
        let layers = self.layers.iter().map(|l| {
            let mut role = match l.kind {
                LayerKind::Conv => "conv".to_string(),
                LayerKind::Linear => "linear".to_string(),
            };
            if l.shortcut {
                role.push_str(" (shortcut)");
            }
            if l.head {
                role.push_str(" (head)");
            }
            if let Some(heads) = l.heads {
                // Its neurons are named layer:q|k|v:hH:ROW.
                role.push_str(&format!(" (q, k, v; {heads} heads)"));
            }
            let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            vec![l.name.clone(), role, shape, l.neurons.to_string()]
        });
        format!(
            "Layers (a neuron is one output filter of a conv, one output unit of a linear layer)\n{}\n\n",
            table(&["layer", "kind", "shape", "neurons"], layers)
        )
    }

    fn group_table(&self) -> String {
        let groups = self.groups.iter().map(|g| {
            vec![
                format!("G{} {}", g.group, g.name),
                g.train.to_string(),
                format!("{:.1}%", 100.0 * g.train_proportion),
                g.val.to_string(),
                g.test.to_string(),
            ]
        });
        format!(
            "Groups (examples per split)\n{}\n\n",
            table(&["group", "train", "train share", "val", "test"], groups)
        )
    }

    /// Every group's accuracy at the epoch, then the worst group, mean and average.
    fn accuracy_table(&self) -> String {
        let mut out = String::new();
        let acc = &self.accuracy;
        let _ = writeln!(out, "Accuracy on {} at epoch {}", acc.split, self.epoch);
        let rows = acc.groups.iter().map(|g| {
            let mark = if Some(g.group) == acc.worst_group { "  <- worst" } else { "" };
            vec![
                format!("G{} {}", g.group, g.name),
                g.examples.to_string(),
                g.correct.to_string(),
                format!("{}{mark}", percent(g.accuracy)),
            ]
        });
        let _ = writeln!(out, "{}", table(&["group", "examples", "correct", "accuracy"], rows));
        let worst_name = acc
            .worst_group
            .and_then(|g| acc.groups.get(g))
            .map(|g| format!(" (G{} {})", g.group, g.name))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "worst-group accuracy             {}{worst_name}",
            percent(acc.worst_group_accuracy)
        );
        let _ = writeln!(
            out,
            "mean accuracy                    {}  (group accuracies weighted by TRAINING group proportions)",
            percent(acc.mean_accuracy_train_weighted)
        );
        let _ = writeln!(
            out,
            "average accuracy                 {}  (over all {} examples of {}, unweighted)",
            percent(acc.average_accuracy),
            acc.groups.iter().map(|g| g.examples).sum::<usize>(),
            acc.split
        );
        out
    }
}
