//! Which training examples an epoch visits, in what order.

use anyhow::{Result, anyhow, ensure};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;

use crate::data::SplitData;

/// How an epoch's examples are drawn from the training split.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Sampler {
    /// Every example once, shuffled (ERM).
    #[default]
    Shuffle,
    /// Example i `multiplicity[i]` times, shuffled (JTT's upweighted error set, as
    /// `ConcatDataset([train, Subset(train, errors * λ_up)])`).
    Repeat(Vec<usize>),
    /// As many draws as examples, with replacement, each group equally likely
    /// (GroupDRO's `--reweight_groups`: `WeightedRandomSampler` with weight 1/n_g).
    GroupBalanced,
}

impl Sampler {
    /// The examples (positions in `train`) of one epoch, in order.
    pub fn epoch(&self, train: &SplitData, n_groups: usize, rng: &mut impl Rng) -> Result<Vec<usize>> {
        let n = train.len();
        Ok(match self {
            Sampler::Shuffle => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(rng);
                order
            }
            Sampler::Repeat(multiplicity) => {
                ensure!(multiplicity.len() == n, "a multiplicity for each of the {n} training examples");
                let mut order: Vec<usize> =
                    multiplicity.iter().enumerate().flat_map(|(i, &m)| std::iter::repeat_n(i, m)).collect();
                order.shuffle(rng);
                order
            }
            Sampler::GroupBalanced => {
                let counts = train.group_counts(n_groups);
                let weights: Vec<f64> = train.groups.iter().map(|&g| 1.0 / counts[g] as f64).collect();
                let draw = WeightedIndex::new(&weights)
                    .map_err(|e| anyhow!("cannot balance groups of an empty training split: {e}"))?;
                (0..n).map(|_| draw.sample(rng)).collect()
            }
        })
    }
}
