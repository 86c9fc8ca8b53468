//! Seeded stratified subsets (`--max-per-group N`): a quick look at a large data set that
//! keeps every group, the smallest included.

use rand::seq::SliceRandom;

use super::changes::Subset;
use super::{GroupedDataset, Split, SplitData};

/// The examples kept of `data`: for each group, its indices (in split order) shuffled by
/// ChaCha8 seeded with `seed` on stream `split << 32 | group`, the first `n` of them; the
/// kept indices are returned in split order.
pub(crate) fn per_group_indices(
    data: &SplitData,
    n_groups: usize,
    n: usize,
    seed: u64,
    split: Split,
) -> Vec<usize> {
    let mut keep = Vec::new();
    for g in 0..n_groups {
        let mut members = data.indices_of_group(g);
        members.shuffle(&mut crate::util::rng::seeded(seed, ((split as u64) << 32) | g as u64));
        members.truncate(n);
        keep.extend(members);
    }
    keep.sort_unstable();
    keep
}

impl GroupedDataset {
    /// Every split cut down to at most `n` examples per group (see `per_group_indices`).
    /// The training proportions (the weights of the mean accuracy) and the smallest training
    /// group stay those of the full data set; [`GroupedDataset::changes`] records the subset.
    pub fn subset_per_group(&self, n: usize, seed: u64) -> GroupedDataset {
        let n_groups = self.num_groups();
        let mut out = self.clone();
        let mut kept = [0; 3];
        let mut total = [0; 3];
        for (k, split) in Split::ALL.into_iter().enumerate() {
            let keep = per_group_indices(self.split(split), n_groups, n, seed, split);
            total[k] = self.split(split).len();
            kept[k] = keep.len();
            out = out.restrict(split, &keep);
        }
        out.changes.subset = Some(Subset {
            max_per_group: n,
            seed,
            kept,
            total,
            train_group_counts: self.train_group_counts(),
        });
        out
    }

    /// Examples per group in the training split of the full data set (before a subset).
    pub fn train_group_counts(&self) -> Vec<usize> {
        match &self.changes.subset {
            Some(s) => s.train_group_counts.clone(),
            None => self.train.group_counts(self.num_groups()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(groups: &[usize]) -> SplitData {
        SplitData {
            labels: groups.iter().map(|g| g / 2).collect(),
            groups: groups.to_vec(),
            sources: vec![0; groups.len()],
        }
    }

    #[test]
    fn keeps_at_most_n_of_each_group_the_same_way_every_time() {
        let data = split(&[0, 1, 0, 2, 0, 0, 3, 1, 0, 2]);
        let keep = per_group_indices(&data, 4, 2, 7, Split::Val);
        let groups: Vec<usize> = keep.iter().map(|&i| data.groups[i]).collect();
        assert_eq!(data.subset(&keep).group_counts(4), [2, 2, 2, 1]);
        assert!(keep.windows(2).all(|w| w[0] < w[1]), "split order: {keep:?} ({groups:?})");
        assert_eq!(keep, per_group_indices(&data, 4, 2, 7, Split::Val));
        assert_eq!(per_group_indices(&data, 4, 100, 7, Split::Val), (0..10).collect::<Vec<_>>());
        // Another seed draws other examples of group 0 (5 of them, 2 kept) for some seed.
        assert!((0..20).any(|s| per_group_indices(&data, 4, 2, s, Split::Val) != keep));
    }
}
