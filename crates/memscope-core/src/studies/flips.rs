//! Which examples an intervention flipped: every example of one group, its label and the
//! network's prediction before and after the intervention's first run, and its pixels (as the
//! model sees them) for drawing. The counts are the intervention's own: a group's accuracy
//! before and after run 1 is its share of `correct_before` and `correct_after`.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::intervention::{self, InterventionSpec};
use crate::eval::predictions;
use crate::jobs::Progress;
use crate::session::Session;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlipsSpec {
    /// The intervention; its first run (seed `seed`, run 1) is the one shown.
    pub intervention: InterventionSpec,
    pub group: usize,
}

/// One example of the group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlipExample {
    /// Position in the split.
    pub index: usize,
    pub label: usize,
    pub before: usize,
    pub after: usize,
}

/// Examples whose pixels are read and drawn, at most: a group of a large data set (CelebA's
/// test split has groups of thousands at 224 px) is never held in memory whole.
pub(crate) const MAX_DRAWN: usize = 120;

impl FlipExample {
    /// Where it is shown: broken first, then fixed, then wrong both times, then right both.
    pub fn rank(&self) -> u8 {
        if self.broken() {
            0
        } else if self.fixed() {
            1
        } else if self.after != self.label {
            2
        } else {
            3
        }
    }

    /// Right before, wrong after.
    pub fn broken(&self) -> bool {
        self.before == self.label && self.after != self.label
    }

    /// Wrong before, right after.
    pub fn fixed(&self) -> bool {
        self.before != self.label && self.after == self.label
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flips {
    pub spec: FlipsSpec,
    pub group_name: String,
    pub class_names: Vec<String>,
    /// Every example of the group in the split, in split order.
    pub examples: Vec<FlipExample>,
    /// Positions in `examples` of those drawn, in display order (by [`FlipExample::rank`],
    /// then split order), at most `MAX_DRAWN`.
    pub drawn: Vec<usize>,
    /// `[channels, height, width]` of each image in `pixels`.
    pub image_shape: [usize; 3],
    /// The drawn examples' pixels as the model sees them (after the data set's transform), in
    /// `drawn`'s order; not exported.
    #[serde(skip)]
    pub pixels: Vec<f32>,
}

impl Flips {
    pub fn correct_before(&self) -> usize {
        self.examples.iter().filter(|e| e.before == e.label).count()
    }

    pub fn correct_after(&self) -> usize {
        self.examples.iter().filter(|e| e.after == e.label).count()
    }

    pub fn broken(&self) -> usize {
        self.examples.iter().filter(|e| e.broken()).count()
    }

    pub fn fixed(&self) -> usize {
        self.examples.iter().filter(|e| e.fixed()).count()
    }
}

/// Runs the intervention's first run on the split and reads the group's predictions before and
/// after it. `progress` hears of each batch of its passes (the ranking's gradient when it is
/// not cached, the split before, the split after) and may stop them.
pub fn run(session: &mut Session, spec: &FlipsSpec, progress: &mut dyn Progress) -> Result<Flips> {
    let at = &spec.intervention;
    let dataset = session.dataset().clone();
    ensure!(
        spec.group < dataset.num_groups(),
        "no group G{} (the data set has {})",
        spec.group,
        dataset.num_groups()
    );
    let prepared = intervention::prepare(session, at, progress)?;
    let (weights, changed) = intervention::changed_weights(at, &prepared, &prepared.targets, 0)?;
    let layers: Vec<_> = weights.iter().filter(|w| changed.contains(&w.name)).collect();
    let classes = dataset.class_names.len();
    let before = predictions(&session.logits_with(at.epoch, at.split, &[], progress)?, classes);
    let after = predictions(&session.logits_with(at.epoch, at.split, &layers, progress)?, classes);
    let split = dataset.split(at.split);
    let indices = split.indices_of_group(spec.group);
    let examples: Vec<FlipExample> = indices
        .iter()
        .map(|&i| FlipExample { index: i, label: split.labels[i], before: before[i], after: after[i] })
        .collect();
    let mut drawn: Vec<usize> = (0..examples.len()).collect();
    drawn.sort_by_key(|&p| (examples[p].rank(), p));
    drawn.truncate(MAX_DRAWN);
    let rows: Vec<usize> = drawn.iter().map(|&p| examples[p].index).collect();
    Ok(Flips {
        spec: spec.clone(),
        group_name: dataset.group_names[spec.group].clone(),
        class_names: dataset.class_names.clone(),
        examples,
        drawn,
        image_shape: dataset.image_shape,
        pixels: dataset.images(at.split, &rows)?,
    })
}
