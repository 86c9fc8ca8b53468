//! Deep Feature Reweighting (`dfr_evaluate_spurious.py` of PolinaKirichenko/
//! deep_feature_reweighting, DFR^Tr_Val): the last layer refit by L1 logistic regression on
//! standardised penultimate features of group-balanced subsets of the validation split.
//! Reads the validation split's group labels.

use anyhow::{Result, anyhow, ensure};
use burn::prelude::*;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::logistic::fit_l1;
use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start};
use crate::data::{GroupedDataset, Split, batch};
use crate::device::{Pass, guard};
use crate::eval::{accuracy_report, predictions};
use crate::experiment::lineage::{Dfr, LabelUse, Method};
use crate::jobs::{Progress, Within};
use crate::model::{LayerKind, Mode, Network};
use crate::neurons::weights::{LayerWeights, with_weights};
use crate::util::rng::seeded;

/// The reference's grid of C (inverse L1 strength).
pub(crate) const C_GRID: [f64; 7] = [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01];
/// Group-balanced refits averaged in the final head (the reference: 20).
pub(crate) const RETRAINS: usize = 20;

pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "dfr",
    about: "val group labels",
    labels: LabelUse::ValGroups,
    presets: &[Preset { name: "dfr", slug: "dfr", short: "dfr", settings: || Method::Dfr(Dfr::default()) }],
};

impl Default for Dfr {
    /// The reference's (`dfr_evaluate_spurious.py`): C tuned over `C_GRID`, `RETRAINS`
    /// balanced refits averaged.
    fn default() -> Self {
        Dfr { c_grid: C_GRID.to_vec(), c: 0.0, retrains: RETRAINS, per_group: 0 }
    }
}

impl Mitigation for Dfr {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn fine_tunes(&self) -> bool {
        false
    }

    fn found(&self) -> Option<String> {
        Some(format!("C = {} chosen, {} per group in each refit", self.c, self.per_group))
    }

    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method> {
        let outcome = dfr(
            &start.model,
            start.dataset,
            &self.c_grid,
            self.retrains,
            start.seed(),
            start.device,
            progress,
        )?;
        recorder.epoch(1, (None, None), &with_weights(&start.model, &[&outcome.head]), progress)?;
        Ok(Method::Dfr(Dfr { c: outcome.c, per_group: outcome.per_group, ..self.clone() }))
    }
}
/// The solver stops when no optimality condition is violated by more than this.
const TOLERANCE: f64 = 1e-6;

/// Penultimate features of every example of `split`, row-major `[n, d]`, eval mode; `progress`
/// hears of each batch.
pub(crate) fn features(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Vec<f64>, usize)> {
    let n = dataset.split(split).len();
    let all: Vec<usize> = (0..n).collect();
    let passes = n.div_ceil(batch::EVAL_BATCH);
    // Kept on the device and read once (on CUDA a read per pass would make each wait).
    let mut out = Vec::with_capacity(passes);
    for chunk in all.chunks(batch::EVAL_BATCH) {
        let pass =
            || -> Result<_> { Ok(model.features(batch::images(dataset, split, chunk, device)?, Mode::Eval)) };
        out.push(guard(Pass::Evaluation, chunk.len(), device, pass)??);
        progress.report(out.len(), passes)?;
    }
    if out.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let features = guard(Pass::Evaluation, batch::EVAL_BATCH, device, || {
        let features = Tensor::cat(out, 0); // [n, d]
        let dim = features.dims()[1];
        features.into_data().convert::<f32>().try_to_vec::<f32>().map(|values| (values, dim))
    })?;
    let (values, dim) = features.map_err(|e| anyhow!("cannot read features: {e:?}"))?;
    Ok((values.into_iter().map(f64::from).collect(), dim))
}

/// Per-feature mean and standard deviation.
pub(crate) type Scaler = (Vec<f64>, Vec<f64>);

/// Per-feature mean and standard deviation (population, as `StandardScaler`; a feature
/// with no spread is scaled by 1).
pub(crate) fn scaler(x: &[f64], d: usize) -> Scaler {
    let n = (x.len() / d.max(1)).max(1) as f64;
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let mut var = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let scale = var.into_iter().map(|v| if v > 0.0 { v.sqrt() } else { 1.0 }).collect();
    (mean, scale)
}

fn standardise(x: &[f64], d: usize, rows: &[usize], (mean, scale): &Scaler) -> Vec<f64> {
    rows.iter()
        .flat_map(|&r| x[r * d..(r + 1) * d].iter().zip(mean).zip(scale).map(|((v, m), s)| (v - m) / s))
        .collect()
}

/// A group-balanced subset of `rows`: each group cut to the smallest group's size, in a
/// random order per group (as the reference's `np.random.shuffle(g); g[:min_g]`).
pub(crate) fn balanced(
    rows: &[usize],
    groups: &[usize],
    n_groups: usize,
    rng: &mut impl Rng,
) -> Result<Vec<usize>> {
    let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    for &r in rows {
        by_group[groups[r]].push(r);
    }
    let smallest = by_group.iter().map(Vec::len).min().unwrap_or(0);
    ensure!(smallest > 0, "a group has no validation example: DFR balances the groups of val");
    let mut out = Vec::new();
    for mut members in by_group {
        members.shuffle(rng);
        out.extend_from_slice(&members[..smallest]);
    }
    Ok(out)
}

/// A linear classifier on raw features: `[classes, d]` weights and `[classes]` biases.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Linear {
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

impl Linear {
    fn scores(&self, x: &[f64], d: usize) -> Vec<f32> {
        let classes = self.bias.len();
        x.chunks_exact(d)
            .flat_map(|row| {
                (0..classes).map(move |c| {
                    (self.weights[c * d..(c + 1) * d].iter().zip(row).map(|(w, v)| w * v).sum::<f64>()
                        + self.bias[c]) as f32
                })
            })
            .collect()
    }
}

/// One fit on standardised rows: for two classes a single problem (class 1 positive; the
/// head's row 0 is zero, so the arg-max is the sign, ties to class 0 as scikit-learn's
/// `predict`); for more, one-vs-rest.
fn fit(x: &[f64], labels: &[usize], d: usize, classes: usize, c: f64) -> Result<Linear> {
    let mut weights = vec![0.0; classes * d];
    let mut bias = vec![0.0; classes];
    let positives: Vec<usize> = if classes == 2 { vec![1] } else { (0..classes).collect() };
    for class in positives {
        let y: Vec<bool> = labels.iter().map(|&l| l == class).collect();
        let binary = fit_l1(x, &y, d, c, TOLERANCE)?;
        weights[class * d..(class + 1) * d].copy_from_slice(&binary.weights);
        bias[class] = binary.intercept;
    }
    Ok(Linear { weights, bias })
}

/// What DFR chose and the head it fitted.
#[derive(Clone, Debug)]
pub(crate) struct DfrOutcome {
    pub c: f64,
    /// Examples per group in each balanced refit.
    pub per_group: usize,
    /// The head, folded with the standardisation (PyTorch layout `[classes, d]`).
    pub head: LayerWeights,
}

/// Penultimate features of train and val, `d` wide, and where a run's progress stands.
struct Fitting<'a> {
    dataset: &'a GroupedDataset,
    train_x: Vec<f64>,
    val_x: Vec<f64>,
    d: usize,
    classes: usize,
    /// Steps done and in all (the two feature passes, each C, each refit).
    done: usize,
    total: usize,
}

impl Fitting<'_> {
    fn step(&mut self, progress: &mut dyn Progress) -> Result<()> {
        self.done += 1;
        progress.report(self.done, self.total)?;
        Ok(())
    }
}

/// Runs DFR^Tr_Val on `model`: tune C on half of val (a balanced subset of one half, scaled
/// by its own statistics; worst-group accuracy on the other half), then average `retrains`
/// fits on balanced subsets of the whole of val, scaled by the training split's statistics.
pub(crate) fn dfr(
    model: &Network,
    dataset: &GroupedDataset,
    c_grid: &[f64],
    retrains: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<DfrOutcome> {
    ensure!(
        !c_grid.is_empty() && c_grid.iter().all(|&c| c > 0.0 && c.is_finite()),
        "DFR needs positive values of C"
    );
    ensure!(retrains >= 1, "DFR needs at least one refit");
    let total = 2 + c_grid.len() + retrains;
    let (train_x, d) = features(model, dataset, Split::Train, device, &mut Within::new(progress, 0, total))?;
    progress.report(1, total)?;
    let (val_x, _) = features(model, dataset, Split::Val, device, &mut Within::new(progress, 1, total))?;
    progress.report(2, total)?;
    let classes = dataset.class_names.len();
    let mut fitting = Fitting { dataset, train_x, val_x, d, classes, done: 2, total };
    let mut rng = seeded(seed, 7);
    // (C, worst-group accuracy on the held-out half of val) for each C tried; the first C
    // with the best worst-group accuracy is chosen (`np.argmax`).
    let tuning = tune(&mut fitting, c_grid, &mut rng, progress)?;
    let c = tuning
        .iter()
        .fold((f64::NAN, f64::NEG_INFINITY), |best, &(c, w)| if w > best.1 { (c, w) } else { best })
        .0;
    let (sum, final_scaler, per_group) = refit(&mut fitting, c, retrains, &mut rng, progress)?;
    let head = fold(model, &sum, &final_scaler, classes, d)?;
    Ok(DfrOutcome { c, per_group, head })
}

/// Each C's worst-group accuracy on the held-out half of val, fitted on a balanced subset of
/// the other half scaled by its own statistics.
fn tune(
    f: &mut Fitting<'_>,
    c_grid: &[f64],
    rng: &mut ChaCha8Rng,
    progress: &mut dyn Progress,
) -> Result<Vec<(f64, f64)>> {
    let (dataset, d) = (f.dataset, f.d);
    let val = &dataset.val;
    let mut order: Vec<usize> = (0..val.len()).collect();
    order.shuffle(rng);
    let half = val.len() / 2;
    let (held_out, fit_half) = order.split_at(half);
    let tune_rows = balanced(fit_half, &val.groups, dataset.num_groups(), rng)?;
    let tune_scaler = {
        let raw: Vec<f64> =
            tune_rows.iter().flat_map(|&r| f.val_x[r * d..(r + 1) * d].iter().copied()).collect();
        scaler(&raw, d)
    };
    let tune_x = standardise(&f.val_x, d, &tune_rows, &tune_scaler);
    let tune_y: Vec<usize> = tune_rows.iter().map(|&r| val.labels[r]).collect();
    let held_x = standardise(&f.val_x, d, held_out, &tune_scaler);
    let held = val.subset(held_out);
    let mut tuning = Vec::new();
    for &c in c_grid {
        let linear = fit(&tune_x, &tune_y, d, f.classes, c)?;
        let preds = predictions(&linear.scores(&held_x, d), f.classes);
        let report =
            accuracy_report(Split::Val, &held, &preds, &dataset.group_names, &dataset.train_proportions());
        tuning.push((c, report.worst_group_accuracy.unwrap_or(0.0)));
        f.step(progress)?;
    }
    Ok(tuning)
}

/// The mean of `retrains` fits at `c` on balanced subsets of the whole of val, scaled by the
/// training split's statistics; with that scaler and the examples per group of each subset.
fn refit(
    f: &mut Fitting<'_>,
    c: f64,
    retrains: usize,
    rng: &mut ChaCha8Rng,
    progress: &mut dyn Progress,
) -> Result<(Linear, Scaler, usize)> {
    let (val, d, classes) = (&f.dataset.val, f.d, f.classes);
    let n_groups = f.dataset.num_groups();
    let final_scaler = scaler(&f.train_x, d);
    let all: Vec<usize> = (0..val.len()).collect();
    let mut sum = Linear { weights: vec![0.0; classes * d], bias: vec![0.0; classes] };
    let mut per_group = 0;
    for _ in 0..retrains {
        let rows = balanced(&all, &val.groups, n_groups, rng)?;
        per_group = rows.len() / n_groups;
        let x = standardise(&f.val_x, d, &rows, &final_scaler);
        let y: Vec<usize> = rows.iter().map(|&i| val.labels[i]).collect();
        let linear = fit(&x, &y, d, classes, c)?;
        for (s, w) in sum.weights.iter_mut().zip(&linear.weights) {
            *s += w / retrains as f64;
        }
        for (s, b) in sum.bias.iter_mut().zip(&linear.bias) {
            *s += b / retrains as f64;
        }
        f.step(progress)?;
    }
    Ok((sum, final_scaler, per_group))
}

/// `linear` (on standardised features) as the network's head on raw features:
/// w·(x − μ)/s + b = (w/s)·x + (b − Σ w μ/s).
fn fold(
    model: &Network,
    linear: &Linear,
    (mean, scale): &Scaler,
    classes: usize,
    d: usize,
) -> Result<LayerWeights> {
    let mut weight = vec![0.0f32; classes * d];
    let mut bias = vec![0.0f32; classes];
    for class in 0..classes {
        let mut shift = 0.0;
        for j in 0..d {
            let w = linear.weights[class * d + j] / scale[j];
            weight[class * d + j] = w as f32;
            shift += w * mean[j];
        }
        bias[class] = (linear.bias[class] - shift) as f32;
    }
    let head = model
        .layers()
        .into_iter()
        .find(|l| l.head)
        .ok_or_else(|| anyhow!("the network has no classifier head to refit"))?;
    ensure!(
        head.kind == LayerKind::Linear && head.shape == [classes, d],
        "the head {} is not a {classes}x{d} linear layer",
        head.name
    );
    Ok(LayerWeights {
        name: head.name,
        kind: LayerKind::Linear,
        shape: vec![classes, d],
        weight,
        bias: Some(bias),
    })
}
