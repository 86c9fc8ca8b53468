//! `memscope-bench --train`: time per fine-tuning batch of the training loop's step (the
//! objective's loss, backward, the optimizer's update), for BENCHMARKS.md beside the same
//! loop in PyTorch eager (`bench/train`).

use std::collections::BTreeMap;

use anyhow::Result;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::Serialize;

use super::time;
use memscope_core::data::{GroupedDataset, Split, batch};
use memscope_core::experiment::Experiment;
use memscope_core::experiment::lineage::SilentMajority;
use memscope_core::mitigate::released_training;
use memscope_core::mitigate::silent_majority::SilentMajorityObjective;
use memscope_core::render::text::csv;
use memscope_core::render::{Render, Timing, timing_rows, timing_table};
use memscope_core::train::fit::optimizer;
use memscope_core::train::{Erm, Objective, TrainBatch};
use memscope_core::util::rng::DEFAULT_SEED;

/// Untimed steps before the timed ones (libtorch's first passes allocate and pick kernels).
pub const WARMUP: usize = 2;

#[derive(Debug, Serialize)]
pub struct TrainBenchReport {
    pub experiment: String,
    pub epoch: usize,
    pub threads: i32,
    pub batch_size: usize,
    pub warmup: usize,
    pub timings: Vec<Timing>,
    /// Every step's loss (warm-up included) by objective, to check a reference against.
    pub losses: BTreeMap<String, Vec<f64>>,
}

/// From the experiment's last checkpoint, `runs` timed steps (after [`WARMUP`]) of the
/// released fine-tuning (Adam, lr 2e-4, batch 100, BatchNorm training) with ERM and with the
/// silent-majority code variant (released settings). Step `s` takes the `s`-th batch of the
/// training split in order, cycling, without augmentation: the pixels a reference reads from
/// `memscope export`. Batches are on the device before the clock starts.
pub fn run(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    device: &Device,
    runs: usize,
) -> Result<TrainBenchReport> {
    let epoch = experiment.last_epoch();
    let settings = released_training(&experiment.manifest.dataset, DEFAULT_SEED);
    let autodiff = device.clone().autodiff();
    let order: Vec<usize> = (0..dataset.train.len()).collect();
    let batches = order
        .chunks(settings.batch_size)
        .map(|chunk| {
            Ok(TrainBatch {
                images: batch::images(dataset, Split::Train, chunk, &autodiff)?,
                labels: batch::labels_of(dataset, Split::Train, chunk, &autodiff),
                groups: chunk.iter().map(|&i| dataset.train.groups[i]).collect(),
                indices: chunk.to_vec(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let code = SilentMajority::code();
    let mut timings = Vec::new();
    let mut losses = BTreeMap::new();
    for key in ["erm", "code"] {
        let mut model = experiment.load_network(epoch, device)?.fork(&autodiff).train();
        let mut objective: Box<dyn Objective> = match key {
            "erm" => Box::new(Erm::new(&autodiff, settings.ce_on)),
            _ => Box::new(
                SilentMajorityObjective::new(code.clone(), None, &autodiff)?.with_ce_on(settings.ce_on),
            ),
        };
        objective.begin_epoch(&model, 1)?;
        let mut optim = optimizer(&settings);
        let (mut ms, mut seen) = (Vec::new(), Vec::new());
        for step in 0..WARMUP + runs {
            let batch = &batches[step % batches.len()];
            let (elapsed, (next, loss)) = time(|| {
                let loss = objective.loss(&model, batch)?;
                let value = f64::from(loss.clone().into_scalar::<f32>());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                Ok((optim.step(settings.learning_rate, model.clone(), grads), value))
            })?;
            model = next;
            seen.push(loss);
            if step >= WARMUP {
                ms.push(elapsed);
            }
        }
        let task = match key {
            "erm" => "fine-tuning step, ERM (forward, CE, backward, Adam)",
            _ => "fine-tuning step, silent-majority code (3 passes, 2 NT-Xent, CE, backward, Adam)",
        };
        timings.push(Timing::of(key, task, ms));
        losses.insert(key.to_string(), seen);
    }
    Ok(TrainBenchReport {
        experiment: experiment.dir.display().to_string(),
        epoch,
        threads: tch::get_num_threads(),
        batch_size: settings.batch_size,
        warmup: WARMUP,
        timings,
        losses,
    })
}

impl Render for TrainBenchReport {
    fn table(&self) -> String {
        format!(
            "{} epoch {} (batch {}; libtorch threads: {})\n{}",
            self.experiment,
            self.epoch,
            self.batch_size,
            self.threads,
            timing_table(&self.timings, 1),
        )
    }

    fn csv(&self) -> String {
        csv(&["key", "runs", "median_ms", "p95_ms", "min_ms"], timing_rows(&self.timings))
    }
}
