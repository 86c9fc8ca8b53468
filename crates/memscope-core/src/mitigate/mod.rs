//! Stage 2: mitigation, and the baselines it is measured against. Each method starts from
//! a parent experiment's checkpoint and writes a NEW experiment (epoch 0 = the start), whose
//! manifest records the parent, the method with every setting, the seed, and which group
//! labels the method read ([`Lineage`]). [`compare`] puts several such experiments side by
//! side.
//!
//! Training methods are objectives ([`crate::train::Objective`]) and samplers run by the one
//! training loop ([`crate::train::fit`]); DFR refits only the last layer.

pub mod compare;
pub mod dfr;
pub mod group_dro;
pub mod jtt;
pub mod logistic;
pub mod ntxent;
pub mod prune;
pub mod silent_majority;

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::prelude::*;

use crate::data::augment::Augment;
use crate::data::{GroupedDataset, Split};
use crate::experiment::lineage::{
    Critical, Dfr, Features, GroupDro, Jtt, Lineage, Method, SilentMajority, Variant,
};
use crate::experiment::{
    Experiment, ExperimentWriter, FORMAT, Manifest, OptimizerKind, Schedule, TrainSettings,
};
use crate::jobs::Progress;
use crate::model::Network;
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{Selection, select};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::train::{EpochReport, Erm, Objective, Sampler, fit, record_epoch};

/// What to run: the method (its settings as requested; what the run finds, such as JTT's
/// error count or DFR's chosen C, is filled in the record), the parent's checkpoint to start
/// from (default: its last), and the fine-tuning settings (ignored by DFR).
#[derive(Clone, Debug)]
pub struct MitigationPlan {
    pub method: Method,
    pub start_epoch: Option<usize>,
    pub training: TrainSettings,
    /// The new experiment's name (default: parent-method-seedN).
    pub name: Option<String>,
}

/// The released mitigation's fine-tuning (`SpuriousCorrelationFinetuningPruning.py`): Adam,
/// lr 2e-4, no weight decay, batch 100, 21 epochs, learning rate halved when the epoch's
/// loss has not improved for more than one epoch, random resized crop and flip. Every
/// training method uses it unless told otherwise, so that only the objective differs.
pub fn released_training(seed: u64) -> TrainSettings {
    TrainSettings {
        optimizer: OptimizerKind::Adam,
        learning_rate: 2e-4,
        momentum: 0.0,
        weight_decay: 0.0,
        batch_size: 100,
        epochs: 21,
        seed,
        schedule: Schedule::Plateau { factor: 0.5, patience: 1 },
        augment: Augment::released(),
    }
}

/// Every method with the settings `memscope mitigate` uses when none is given (the released
/// code's, the slides', the reference implementations'): silent-majority code and paper, erm,
/// jtt, group-dro, dfr. The explorer offers these.
pub fn default_methods() -> [Method; 6] {
    let silent_majority = |variant| {
        Method::SilentMajority(SilentMajority {
            variant,
            features: match variant {
                Variant::Code => Features::Probs,
                Variant::Paper => Features::Penultimate,
            },
            temperature: 0.5,
            lambda: 0.2,
            fraction: match variant {
                Variant::Code => 0.01,
                Variant::Paper => 0.0001,
            },
            critical: Critical::Gradient(Sampling::HighLoss { pool: 256, draw: 128 }),
            granularity: Granularity::Unit,
        })
    };
    [
        silent_majority(Variant::Code),
        silent_majority(Variant::Paper),
        Method::Erm,
        Method::Jtt(Jtt { identification_epoch: 1, upweight: 100, errors: 0 }),
        Method::GroupDro(GroupDro { step_size: 0.01, adjustment: 0.0, reweight_groups: true }),
        Method::Dfr(Dfr { c_grid: dfr::C_GRID.to_vec(), c: 0.0, retrains: dfr::RETRAINS, per_group: 0 }),
    ]
}

/// True when `a` and `b` are the same folder or `b` lies inside `a`.
fn contains(a: &Path, b: &Path) -> bool {
    match (resolve(a), resolve(b)) {
        (Some(a), Some(b)) => b.starts_with(a),
        _ => false,
    }
}

/// The absolute path of `p` with links resolved, for a path that may not exist yet.
fn resolve(p: &Path) -> Option<std::path::PathBuf> {
    if let Ok(real) = p.canonicalize() {
        return Some(real);
    }
    let absolute = std::path::absolute(p).ok()?;
    let parent = absolute.parent()?.canonicalize().ok()?;
    Some(parent.join(absolute.file_name()?))
}

/// Refuses `out` when it is the parent experiment or a folder that holds it (replacing it
/// would lose the parent).
pub fn check_destination(parent: &Experiment, out: &Path) -> Result<()> {
    if contains(out, &parent.dir) {
        bail!(
            "writing to {} would replace the parent experiment {}: write the mitigated experiment elsewhere",
            out.display(),
            parent.dir.display()
        );
    }
    Ok(())
}

/// Runs `plan` from `parent` on `dataset` and writes the new experiment to `out` (staged,
/// locked, installed when complete, as `train`). `out` may not be the parent or a folder
/// holding it. `on_epoch` hears of every recorded epoch; `progress` of every batch and can
/// cancel (nothing is left behind then).
#[allow(clippy::too_many_arguments)]
pub fn mitigate(
    parent: &Experiment,
    dataset: &GroupedDataset,
    plan: &MitigationPlan,
    out: &Path,
    overwrite: bool,
    device: &Device,
    on_epoch: &mut dyn FnMut(&EpochReport),
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    check_destination(parent, out)?;
    let settings = &plan.training;
    settings.validate()?;
    let start = plan.start_epoch.unwrap_or_else(|| parent.last_epoch());
    let start_entry = parent.checkpoint(start)?.clone();
    ensure!(!dataset.train.is_empty(), "the training split is empty");
    let seed = settings.seed;
    crate::device::seed(device, seed);
    let start_model = parent.load_network(start, device)?;

    // What the method needs before training: JTT's error set, the paper's critical neurons.
    let mut method = plan.method.clone();
    let mut sampler = Sampler::Shuffle;
    let mut critical = None;
    match &mut method {
        Method::Jtt(jtt) => {
            let identification =
                parent.load_network(jtt.identification_epoch, device).with_context(|| {
                    format!("JTT's identification epoch {} (--jtt-epoch)", jtt.identification_epoch)
                })?;
            let errors = jtt::error_set(&identification, dataset, device)?;
            jtt.errors = errors.iter().filter(|&&e| e).count();
            sampler = Sampler::Repeat(jtt::multiplicities(&errors, jtt.upweight));
        }
        Method::GroupDro(dro) if dro.reweight_groups => sampler = Sampler::GroupBalanced,
        Method::SilentMajority(sm) if sm.variant == Variant::Paper => {
            let mut session = Session::new(parent.clone(), dataset.clone(), device.clone())?;
            let filter = CandidateFilter { exclude_head: true, ..CandidateFilter::default() };
            let space = session.space(&filter, sm.granularity)?;
            let criterion = match sm.critical {
                Critical::Magnitude => Criterion::Magnitude,
                Critical::Gradient(sampling) => {
                    Criterion::Gradient { group: None, split: Split::Train, sampling, seed }
                }
            };
            let scores = session.scores(start, &criterion, &space)?;
            let chosen = select(&scores, Selection::TopFraction(sm.fraction), seed)?;
            critical = Some(prune::neurons(&space, &chosen)?);
        }
        _ => {}
    }

    let is_dfr = matches!(method, Method::Dfr(_));
    let name =
        plan.name.clone().unwrap_or_else(|| format!("{}-{}-seed{seed}", parent.manifest.name, method.name()));
    let lineage = Lineage {
        parent: std::path::absolute(&parent.dir).unwrap_or_else(|_| parent.dir.clone()).display().to_string(),
        parent_name: parent.manifest.name.clone(),
        start_epoch: start,
        start_sha256: start_entry.sha256.clone(),
        labels: method.labels(),
        method: method.clone(),
        seed,
        data_changes: dataset.changes.lines(),
    };
    let manifest = Manifest {
        format: FORMAT,
        name,
        model: parent.manifest.model.clone(),
        dataset: parent.manifest.dataset.clone(),
        classes: parent.manifest.classes.clone(),
        groups: parent.manifest.groups.clone(),
        training: (!is_dfr).then(|| settings.clone()),
        import: None,
        lineage: Some(lineage),
        checkpoints: Vec::new(),
    };
    let mut writer = ExperimentWriter::create(out, manifest, overwrite)?;
    let epochs = if is_dfr { 1 } else { settings.epochs };
    let mut record = |writer: &mut ExperimentWriter, epoch: usize, loss: Option<f64>, model: &Network| {
        record_epoch(writer, model, dataset, device, (epoch, epochs), loss, on_epoch)
    };
    record(&mut writer, 0, None, &start_model)?;

    if let Method::Dfr(settings_dfr) = &mut method {
        let outcome = dfr::dfr(
            &start_model,
            dataset,
            &settings_dfr.c_grid,
            settings_dfr.retrains,
            seed,
            device,
            progress,
        )?;
        settings_dfr.c = outcome.c;
        settings_dfr.per_group = outcome.per_group;
        let refit = crate::neurons::weights::with_weights(&start_model, &[&outcome.head]);
        record(&mut writer, 1, None, &refit)?;
        set_method(&mut writer, method)?;
        return writer.finish();
    }

    let autodiff = device.clone().autodiff();
    let model = start_model.fork(&autodiff).train();
    let mut objective: Box<dyn Objective> = match &method {
        Method::SilentMajority(sm) => Box::new(silent_majority::SilentMajorityObjective::new(
            sm.clone(),
            critical.as_ref().map(|m| (m, &model)),
            &autodiff,
        )?),
        Method::Erm | Method::Jtt(_) => Box::new(Erm::new(&autodiff)),
        Method::GroupDro(dro) => Box::new(group_dro::GroupDroObjective::new(
            dro.clone(),
            dataset.train.group_counts(dataset.num_groups()),
        )),
        Method::Dfr(_) => unreachable!("DFR returned above"),
    };
    fit(
        model,
        objective.as_mut(),
        &sampler,
        dataset,
        settings,
        &autodiff,
        &mut |epoch, loss, model| record(&mut writer, epoch, Some(loss), &model.valid()),
        progress,
    )?;
    set_method(&mut writer, method)?;
    writer.finish()
}

/// Records what the run found (JTT's error count, DFR's C) in the lineage.
fn set_method(writer: &mut ExperimentWriter, method: Method) -> Result<()> {
    writer.update_manifest(|m| {
        if let Some(lineage) = m.lineage.as_mut() {
            lineage.method = method;
        }
    })
}
