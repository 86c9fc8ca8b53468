//! Which examples of a group an intervention flipped: one row per example.

use super::Render;
use super::text::{csv, table};
use crate::studies::flips::Flips;

fn rows(f: &Flips) -> impl Iterator<Item = Vec<String>> + '_ {
    let class = |c: usize| f.class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
    f.examples.iter().map(move |e| {
        let what = ["broken", "fixed", "wrong", "right"][e.rank() as usize];
        vec![e.index.to_string(), class(e.label), class(e.before), class(e.after), what.to_string()]
    })
}

impl Render for Flips {
    fn table(&self) -> String {
        format!(
            "G{} {} on {}, run 1 of the intervention at epoch {}: {} of {} right before, {} after ({} broken, {} fixed)\n{}",
            self.spec.group,
            self.group_name,
            self.spec.intervention.split,
            self.spec.intervention.epoch,
            self.correct_before(),
            self.examples.len(),
            self.correct_after(),
            self.broken(),
            self.fixed(),
            table(&["example", "label", "before", "after", "flip"], rows(self))
        )
    }

    fn csv(&self) -> String {
        csv(&["example", "label", "before", "after", "flip"], rows(self))
    }
}
