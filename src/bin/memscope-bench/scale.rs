//! `memscope-bench --scale`: the engine's tasks on a large model (a torchvision ResNet at
//! 224 px), for BENCHMARKS.md beside the PyTorch eager reference (`bench/scale`).

use anyhow::{Context, Result};
use burn::prelude::*;

use super::{spec, time};
use memscope_core::data::GroupedDataset;
use memscope_core::data::Split;
use memscope_core::eval::evaluate;
use memscope_core::experiment::Experiment;
use memscope_core::jobs::Silent;
use memscope_core::model::LayerKind;
use memscope_core::neurons::{CandidateFilter, Granularity};
use memscope_core::render::{ScaleReport, Timing};
use memscope_core::session::Session;
use memscope_core::studies::DEFAULT_SEED;
use memscope_core::studies::intervention::{self, default_group, gradient};
use memscope_core::util::memory::{Memory, megabytes};

/// Times one forward pass over val, a cold and a warm zero-out of the top-3 neurons ranked
/// globally and within the last conv of the last stage (by the smallest training group's
/// gradient), and the gradient scores of that group, `runs` times each.
pub fn run(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    device: &Device,
    runs: usize,
    cache_mb: usize,
) -> Result<ScaleReport> {
    let epoch = experiment.last_epoch();
    let group = default_group(dataset);
    let fresh = || -> Result<Session> {
        let mut session = Session::new(experiment.clone(), dataset.clone(), device.clone())?;
        session.set_activation_budget(cache_mb << 20);
        Ok(session)
    };
    let layer = fresh()?
        .layers()
        .iter()
        .rev()
        .find(|l| l.kind == LayerKind::Conv && l.stage.is_some())
        .map(|l| l.name.clone())
        .context("the model has no conv layer inside a stage")?;
    let global = spec(group, epoch);
    let within = spec(group, epoch).within(layer.clone());
    let (forward, forward_accuracy) = forward_pass(experiment, dataset, device, runs)?;
    let mut timings = vec![forward];

    let mut afters = Vec::new();
    for (key, what, spec) in [("global", "global", &global), ("layer", "within the last conv", &within)] {
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let mut session = fresh()?;
            let (ms, result) = time(|| intervention::run(&mut session, spec, &mut Silent))?;
            cold.push(ms);
            let (ms, _) = time(|| intervention::run(&mut session, spec, &mut Silent))?;
            warm.push(ms);
            afters.push(result.groups.iter().map(|g| g.after).collect::<Vec<_>>());
        }
        timings.push(Timing::of(
            &format!("cold_{key}"),
            &format!("intervention {what}, cold (checkpoint, baseline, gradient, after)"),
            cold,
        ));
        timings.push(Timing::of(
            &format!("warm_{key}"),
            &format!("intervention {what}, warm (same request again)"),
            warm,
        ));
    }

    let mut grads = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        session.network(epoch)?;
        let space = session.space(&CandidateFilter::default(), Granularity::default())?;
        let (ms, _) =
            time(|| session.scores(epoch, &gradient(Some(group), DEFAULT_SEED), &space, &mut Silent))?;
        grads.push(ms);
    }
    timings.push(Timing::of(
        "grads",
        "gradient scores of the smallest group (train, lowest-confidence:200)",
        grads,
    ));

    Ok(ScaleReport {
        experiment: experiment.dir.display().to_string(),
        threads: tch::get_num_threads(),
        val_examples: dataset.val.len(),
        layer,
        cache_mb,
        timings,
        forward_accuracy,
        global_after: afters.first().cloned().unwrap_or_default(),
        layer_after: afters.last().cloned().unwrap_or_default(),
        peak_rss_mb: megabytes(Memory::PeakResident),
    })
}

/// One forward pass over val with the last checkpoint loaded, and its per-group accuracy.
fn forward_pass(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    device: &Device,
    runs: usize,
) -> Result<(Timing, Vec<Option<f64>>)> {
    let network = experiment.load_network(experiment.last_epoch(), device)?;
    let mut forward = Vec::new();
    let mut accuracy = Vec::new();
    for _ in 0..runs {
        let (ms, report) = time(|| evaluate(&network, dataset, Split::Val, device, &mut Silent))?;
        forward.push(ms);
        accuracy = report.groups.iter().map(|g| g.accuracy).collect();
    }
    Ok((Timing::of("forward", "one forward pass over val (checkpoint loaded)", forward), accuracy))
}
