//! The Stage 1 story of an experiment in one piece: [`build`] runs every study of the slides
//! on one epoch (each with its spec's defaults, as the separate commands run them, so each
//! number matches that command) into a [`ReportData`]; [`claims::assess`] says whether each of
//! the paper's claims holds on it; [`html`] writes the self-contained page of `memscope report`
//! (figures as inline SVG, no scripts, no links out). A front end can show the claims without
//! the page, from a `ReportData` it built or read back from the report's JSON.

pub mod claims;
mod html;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use html::{SECTIONS, escape, html};

use crate::data::Split;
use crate::eval::AccuracyReport;
use crate::jobs::{Progress, Within};
use crate::neurons::Granularity;
use crate::neurons::select::Scope;
use crate::render::Provenance;
use crate::session::Session;
use crate::studies::control::{self, ControlSpec, ControlStudy};
use crate::studies::grid::{self, GridSpec, InterventionGrid};
use crate::studies::intervention::{DEFAULT_REPEATS, InterventionSpec, NeuronQuery};
use crate::studies::ranks::{self, RankSpec, RankStudy};
use crate::studies::sensitivity::{self, SensitivitySpec, SensitivityStudy};
use crate::studies::timeline::{self, Timeline, TimelineSpec};
use crate::studies::{DEFAULT_SEED, DEFAULT_SPLIT};

/// What the report computes: the studies on one epoch, sharing a split, a seed, a number of
/// repeats and how neurons are counted and ranked; everything else is each study's default.
/// The data set (a subset, skipped images) is the session's. Its [`Default`] is the paper's:
/// a global ranking of raw scores over the authors' code's units, the slides' top 0.01% in the
/// rank histograms and 0.01%, 0.02%, 0.03% in the control table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportSpec {
    /// The epoch studied (default: the experiment's last).
    pub epoch: Option<usize>,
    /// The split accuracies are measured on.
    pub split: Split,
    /// Seed of every random choice.
    pub seed: u64,
    /// Runs of each random intervention, and random draws of the control.
    pub repeats: usize,
    /// Where the interventions rank their neurons: globally (the paper) or within one layer
    /// (the explorer's tour). The rank histograms and the control table always rank globally.
    pub scope: Scope,
    /// Divide scores by their layer's mean before a global ranking (the interventions).
    pub normalize_layers: bool,
    /// What one neuron is, in every study.
    pub granularity: Granularity,
    /// The top fraction each score takes in the rank histograms.
    pub rank_fraction: f64,
    /// Fractions of the candidates zeroed in the control table.
    pub control_fractions: Vec<f64>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        let query = NeuronQuery::default();
        ReportSpec {
            epoch: None,
            split: DEFAULT_SPLIT,
            seed: DEFAULT_SEED,
            repeats: DEFAULT_REPEATS,
            scope: query.scope,
            normalize_layers: query.normalize_layers,
            granularity: query.granularity,
            rank_fraction: ranks::DEFAULT_FRACTION,
            control_fractions: control::DEFAULT_FRACTIONS.to_vec(),
        }
    }
}

/// Everything the page shows, computed by the engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportData {
    /// Of the epoch studied (the last by default).
    pub provenance: Provenance,
    pub dataset: String,
    /// Training examples of each group.
    pub train_counts: Vec<usize>,
    pub erm: AccuracyReport,
    pub timeline: Timeline,
    pub bars: InterventionGrid,
    pub ranks: RankStudy,
    pub sensitivity: SensitivityStudy,
    pub control: ControlStudy,
    /// (epoch, checkpoint file, sha256) of every checkpoint read.
    pub checkpoints: Vec<(usize, String, String)>,
}

/// The requests of every study of a report at `epoch`.
struct Studies {
    timeline: TimelineSpec,
    bars: GridSpec,
    ranks: RankSpec,
    sensitivity: SensitivitySpec,
    control: ControlSpec,
}

impl Studies {
    /// As `figure bars`, `ranks`, `sensitivity` and `control` run by default with the
    /// report's split, seed and repeats; the sensitivity study takes the slides' distances that
    /// fit before the epoch (all of them from epoch 40 on; the epoch itself when none does).
    fn of(spec: &ReportSpec, session: &Session, epoch: usize) -> Studies {
        let dataset = session.dataset();
        let base = InterventionSpec::for_data(dataset, epoch)
            .seed(spec.seed)
            .on(spec.split)
            .repeats(spec.repeats)
            .scope(spec.scope.clone())
            .normalize_layers(spec.normalize_layers)
            .granularity(spec.granularity);
        let mut sensitivity = SensitivitySpec::at(epoch).on(spec.split).reachable();
        if sensitivity.epochs_back.is_empty() {
            sensitivity.epochs_back = vec![epoch];
        }
        Studies {
            timeline: TimelineSpec::every_epoch(session.experiment(), spec.split),
            bars: GridSpec::slides(base),
            ranks: RankSpec {
                seed: spec.seed,
                fraction: spec.rank_fraction,
                granularity: spec.granularity,
                ..RankSpec::at(epoch)
            },
            sensitivity,
            control: ControlSpec {
                fractions: spec.control_fractions.clone(),
                granularity: spec.granularity,
                ..ControlSpec::for_data(dataset, epoch)
            }
            .on(spec.split)
            .seed(spec.seed)
            .repeats(spec.repeats),
        }
    }
}

/// Runs every study of the report on `session`; `progress` hears of each finished study and
/// may cancel.
pub fn build(session: &mut Session, spec: &ReportSpec, progress: &mut dyn Progress) -> Result<ReportData> {
    let epoch = spec.epoch.unwrap_or_else(|| session.experiment().last_epoch());
    session.experiment().checkpoint(epoch)?;
    if epoch == 0 {
        bail!("epoch 0: the report rewinds layers and neurons, which needs an epoch after 0");
    }
    let studies = Studies::of(spec, session, epoch);
    let steps = 6;
    progress.report(0, steps)?;
    let erm = session.baseline(epoch, spec.split, &mut Within::new(progress, 0, steps))?;
    let timeline = timeline::run(session, &studies.timeline, &mut Within::new(progress, 0, steps))?;
    progress.report(1, steps)?;
    let bars = grid::run(session, &studies.bars, &mut Within::new(progress, 1, steps))?;
    progress.report(2, steps)?;
    let ranks = ranks::run(session, &studies.ranks, &mut Within::new(progress, 2, steps))?;
    progress.report(3, steps)?;
    let sensitivity = sensitivity::run(session, &studies.sensitivity, &mut Within::new(progress, 3, steps))?;
    progress.report(4, steps)?;
    let control = control::run(session, &studies.control, &mut Within::new(progress, 4, steps))?;
    progress.report(5, steps)?;

    let experiment = session.experiment();
    let checkpoints = experiment
        .epochs()
        .map(|e| experiment.checkpoint(e).map(|c| (e, c.file.clone(), c.sha256.clone())))
        .collect::<Result<Vec<_>>>()?;
    let request = serde_json::json!({
        "split": spec.split, "seed": spec.seed, "repeats": spec.repeats, "epoch": epoch,
        "scope": spec.scope, "normalize_layers": spec.normalize_layers, "granularity": spec.granularity,
        "intervention": studies.bars.base, "ranks": ranks.spec, "sensitivity": sensitivity.spec,
        "control": control.spec,
    });
    let data = ReportData {
        provenance: Provenance::new(experiment, &session.dataset().changes, epoch, &request)?,
        dataset: session.dataset().name.clone(),
        train_counts: session.dataset().train_group_counts(),
        erm,
        timeline,
        bars,
        ranks,
        sensitivity,
        control,
        checkpoints,
    };
    progress.report(6, steps)?;
    Ok(data)
}
