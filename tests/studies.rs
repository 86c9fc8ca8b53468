//! Stage 1 engine: scores, selection, interventions and studies, each checked against a
//! value obtained another way.

use std::path::Path;

use burn::prelude::*;
use memscope_core::data::Split;
use memscope_core::device::DeviceSpec;
use memscope_core::edit::{self, Intervention};
use memscope_core::eval;
use memscope_core::experiment::Experiment;
use memscope_core::jobs::Silent;
use memscope_core::model::{LayerInfo, ModelConfig, layer_infos};
use memscope_core::neurons::scores::{self, Criterion, Sampling, percentile_ranks};
use memscope_core::neurons::select::{Scope, Selection, select};
use memscope_core::neurons::weights::{read_weights, with_weights};
use memscope_core::neurons::{CandidateFilter, Granularity, NeuronSpace};
use memscope_core::session::Session;
use memscope_core::studies::intervention::{self, InterventionResult, InterventionSpec};
use memscope_core::studies::{control, ranks, sensitivity};
use memscope_core::util::rng::seeded;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits");

fn cpu() -> Device {
    DeviceSpec::Cpu.device().unwrap()
}

fn session() -> Session {
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    Session::new(exp, data, cpu()).unwrap()
}

fn gradient(group: usize, split: Split) -> Criterion {
    Criterion::Gradient { group: Some(group), split, sampling: Sampling::default(), seed: 0 }
}

fn spec(intervention: Intervention, criterion: Criterion, selection: Selection) -> InterventionSpec {
    InterventionSpec::neurons(40)
        .seed(7)
        .change(intervention)
        .criterion(criterion)
        .select(selection)
        .repeats(3)
}

/// An intervention that reports nowhere.
fn run(session: &mut Session, spec: &InterventionSpec) -> anyhow::Result<InterventionResult> {
    intervention::run(session, spec, &mut memscope_core::jobs::Silent)
}

fn after(result: &memscope_core::studies::intervention::InterventionResult) -> Vec<Option<f64>> {
    result.groups.iter().map(|g| g.after).collect()
}

fn before(result: &memscope_core::studies::intervention::InterventionResult) -> Vec<Option<f64>> {
    result.groups.iter().map(|g| g.before).collect()
}

#[test]
fn a_hand_built_network_has_its_only_live_stem_filter_as_the_critical_neuron() {
    // Every stem filter but #0 is zero, and BatchNorm is at its initial identity, so
    // channels 1.. are exactly 0 after the ReLU: no gradient reaches those filters, and
    // with filter 0 zeroed as well nothing reaches the head but its bias.
    let device = cpu();
    let config = ModelConfig::default();
    memscope_core::device::seed(&device, 3);
    let fresh = config.init(&device).unwrap();
    let mut weights = read_weights(&fresh).unwrap();
    let stem = weights.iter_mut().find(|w| w.name == "stem.conv").unwrap();
    let per = stem.weight.len() / 16;
    stem.weight[per..].fill(0.0);
    // Filter 0 positive, so it responds to the (non-negative) pixels and survives the ReLU.
    stem.weight[..per].iter_mut().for_each(|v| *v = v.abs() + 0.05);
    let stem = stem.clone();
    let model = with_weights(&fresh, &[&stem]);

    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let layers: Vec<LayerInfo> = layer_infos(&model);
    let filter = CandidateFilter { layers: vec!["stem.conv".into()], ..Default::default() };
    let space = NeuronSpace::new(&layers, &filter, Granularity::Unit).unwrap();
    let autodiff = device.clone().autodiff();
    let graded = scores::for_gradients(model.clone());
    let examples: Vec<usize> = (0..64).collect();
    let grads =
        scores::loss_gradients(&graded, &data, Split::Val, &examples, 256, &autodiff, &mut Silent).unwrap();
    let g = scores::norms(&grads, &space).unwrap();
    assert!(g[0] > 0.0, "{g:?}");
    assert!(g[1..].iter().all(|&v| v == 0.0), "{g:?}");
    assert_eq!(select(&g, Selection::TopK(1), 0).unwrap(), vec![0]);
    let m = scores::norms(&read_weights(&model).unwrap(), &space).unwrap();
    assert_eq!(select(&m, Selection::TopK(1), 0).unwrap(), vec![0]);

    // Zeroing a dead filter changes nothing; zeroing #0 leaves only the head's bias.
    let base = eval::logits(&model, &data, Split::Val, &device, &mut Silent).unwrap();
    let mut set = read_weights(&model).unwrap();
    let mut rng = seeded(0, 0);
    edit::apply(&Intervention::ZeroOut, &mut set, &space, &[5], None, &mut rng).unwrap();
    let stem5 = set.iter().find(|w| w.name == "stem.conv").unwrap();
    assert_eq!(
        eval::logits(&with_weights(&model, &[stem5]), &data, Split::Val, &device, &mut Silent).unwrap(),
        base
    );
    edit::apply(&Intervention::ZeroOut, &mut set, &space, &[0], None, &mut rng).unwrap();
    let stem0 = set.iter().find(|w| w.name == "stem.conv").unwrap();
    let dead =
        eval::logits(&with_weights(&model, &[stem0]), &data, Split::Val, &device, &mut Silent).unwrap();
    let bias = set.iter().find(|w| w.name == "head").unwrap().bias.clone().unwrap();
    for row in dead.chunks(2) {
        assert!((row[0] - bias[0]).abs() < 1e-6 && (row[1] - bias[1]).abs() < 1e-6, "{row:?} vs {bias:?}");
    }
}

#[test]
fn gradient_scores_match_finite_differences() {
    let mut s = session();
    let device = cpu();
    let model = s.network(40).unwrap();
    let criterion = gradient(2, Split::Val);
    let grads = s.score_source(40, &criterion, &mut Silent).unwrap();
    let examples =
        scores::choose_examples(s.dataset(), Some(2), Split::Val, Sampling::default(), 0, &mut |pool| {
            scores::example_losses(&model, s.dataset(), Split::Val, pool, 100, &device, &mut Silent)
        })
        .unwrap();
    assert_eq!(examples.len(), 100); // lowest-confidence:200 of a 100-example group: all of them
    let subset = s.dataset().val.subset(&examples);
    let weights = read_weights(&model).unwrap();
    let loss = |layer: &memscope_core::neurons::weights::LayerWeights| -> f64 {
        let changed = with_weights(&model, &[layer]);
        let logits =
            eval::logits_of(&changed, s.dataset(), Split::Val, &examples, 100, &device, &mut Silent).unwrap();
        let mut total = 0.0;
        for (row, &label) in logits.chunks(2).zip(&subset.labels) {
            let (a, b) = (f64::from(row[0]), f64::from(row[1]));
            let m = a.max(b);
            total += m + ((a - m).exp() + (b - m).exp()).ln() - f64::from(row[label]);
        }
        total / subset.len() as f64
    };
    for name in ["stage3.block0.conv2", "stage2.block0.conv1", "head"] {
        let g = grads.iter().find(|w| w.name == name).unwrap();
        let (i, &gi) = g.weight.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        let h = 1e-2_f32;
        let mut plus = weights.iter().find(|w| w.name == name).unwrap().clone();
        let mut minus = plus.clone();
        plus.weight[i] += h;
        minus.weight[i] -= h;
        let fd = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(h));
        let gi = f64::from(gi);
        assert!(
            (fd - gi).abs() <= 0.05 * gi.abs() + 1e-4,
            "{name}[{i}]: autodiff {gi}, finite difference {fd}"
        );
    }
}

#[test]
fn lowest_confidence_picks_the_highest_loss_examples_of_the_group() {
    let mut s = session();
    let device = cpu();
    let model = s.network(40).unwrap();
    let data = s.dataset();
    // Per-example loss of the whole val split, computed here.
    let logits = eval::logits(&model, data, Split::Val, &device, &mut Silent).unwrap();
    let mut g2: Vec<(f64, usize)> = (0..data.val.len())
        .filter(|&i| data.val.groups[i] == 2)
        .map(|i| {
            let (a, b) = (f64::from(logits[2 * i]), f64::from(logits[2 * i + 1]));
            let m = a.max(b);
            (m + ((a - m).exp() + (b - m).exp()).ln() - f64::from(logits[2 * i + data.val.labels[i]]), i)
        })
        .collect();
    g2.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let pick = |sampling: &str| {
        let mut v =
            scores::choose_examples(data, Some(2), Split::Val, sampling.parse().unwrap(), 0, &mut |pool| {
                scores::example_losses(&model, data, Split::Val, pool, 100, &device, &mut Silent)
            })
            .unwrap();
        v.sort_unstable();
        v
    };
    let mut top30: Vec<usize> = g2.iter().take(30).map(|p| p.1).collect();
    top30.sort_unstable();
    assert_eq!(pick("lowest-confidence:30"), top30);
    // Asking for at least the whole group (or a high-loss pool and draw that cover it) is the group.
    let mut all: Vec<usize> = g2.iter().map(|p| p.1).collect();
    all.sort_unstable();
    assert_eq!(pick("lowest-confidence:100"), all);
    assert_eq!(pick("high-loss:100:100"), all);
    assert_eq!(pick("all"), all);
    assert_eq!(pick("high-loss:100:40").len(), 40);
}

/// Gradient scores map a copy of the network onto the autodiff device; burn shares BatchNorm
/// running statistics between copies and maps them in place, which once left the cached
/// network's evaluations recording a gradient tape that was never freed (36 MB each).
#[test]
fn gradient_scores_leave_the_cached_network_on_the_plain_device() {
    let mut s = session();
    let device = cpu();
    s.score_source(40, &gradient(2, Split::Train), &mut Silent).unwrap();
    let network = s.network(40).unwrap();
    let x = memscope_core::data::batch::images(s.dataset(), Split::Val, &[0, 1, 2, 3, 4, 5, 6, 7], &device)
        .unwrap();
    let y = network.forward(x, memscope_core::model::Mode::Eval);
    assert!(!y.is_autodiff(), "evaluation runs on {:?}", y.device());
}

#[test]
fn null_interventions_leave_every_accuracy_unchanged() {
    let mut s = session();
    let crit = gradient(2, Split::Train);
    for (intervention, selection) in [
        (Intervention::ZeroOut, Selection::TopK(0)),
        (Intervention::Noise { sigma: 0.0 }, Selection::TopK(5)),
        (Intervention::RewindNeurons { epochs_back: 0 }, Selection::TopK(5)),
        (
            Intervention::RewindLayer { layer: "stage2.block0.conv1".into(), epochs_back: 0 },
            Selection::TopK(0),
        ),
    ] {
        let r = run(&mut s, &spec(intervention.clone(), crit.clone(), selection)).unwrap();
        assert_eq!(after(&r), before(&r), "{intervention}");
        assert!(r.groups.iter().all(|g| g.change == Some(0.0) && g.abs_change == Some(0.0)));
    }
}

#[test]
fn reinit_with_zero_sigma_is_zero_out() {
    let mut s = session();
    let crit = Criterion::Magnitude;
    let zero = run(&mut s, &spec(Intervention::ZeroOut, crit.clone(), Selection::TopK(3))).unwrap();
    let reinit =
        run(&mut s, &spec(Intervention::Reinit { sigma: 0.0, uniform: false }, crit, Selection::TopK(3)))
            .unwrap();
    assert_eq!(zero.neurons, reinit.neurons);
    assert_eq!(after(&zero), after(&reinit));
    assert_ne!(after(&zero), before(&zero), "zeroing the top-3 magnitude neurons should move something");
}

#[test]
fn layer_rewind_equals_loading_that_layer_from_the_earlier_checkpoint() {
    let mut s = session();
    let layer = "stage3.block0.conv1";
    let r = run(
        &mut s,
        &spec(
            Intervention::RewindLayer { layer: layer.into(), epochs_back: 30 },
            Criterion::Magnitude,
            Selection::TopK(0),
        ),
    )
    .unwrap();
    // Independently: the epoch-10 checkpoint's tensors for this layer, put into epoch 40.
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let old = read_weights(&exp.load_network(10, &cpu()).unwrap()).unwrap();
    let old_layer = old.iter().find(|w| w.name == layer).unwrap();
    let mixed = with_weights(&exp.load_network(40, &cpu()).unwrap(), &[old_layer]);
    let report = eval::evaluate(&mixed, s.dataset(), Split::Val, &cpu(), &mut Silent).unwrap();
    let expected: Vec<Option<f64>> = report.groups.iter().map(|g| g.accuracy).collect();
    assert_eq!(after(&r), expected);
    assert_eq!(r.layers_changed, vec![layer.to_string()]);
}

#[test]
fn the_loaded_model_is_unchanged_by_interventions_and_seeds_repeat() {
    let mut s = session();
    let device = cpu();
    let model = s.network(40).unwrap();
    let logits = eval::logits(&model, s.dataset(), Split::Val, &device, &mut Silent).unwrap();
    let noise = spec(Intervention::Noise { sigma: 0.05 }, gradient(2, Split::Train), Selection::TopK(5));
    let first = run(&mut s, &noise).unwrap();
    run(&mut s, &spec(Intervention::ZeroOut, Criterion::Magnitude, Selection::TopFraction(0.2))).unwrap();
    run(
        &mut s,
        &spec(Intervention::RewindNeurons { epochs_back: 20 }, Criterion::Magnitude, Selection::TopK(10)),
    )
    .unwrap();
    let again = s.network(40).unwrap();
    assert_eq!(eval::logits(&again, s.dataset(), Split::Val, &device, &mut Silent).unwrap(), logits);
    assert_eq!(eval::logits(&model, s.dataset(), Split::Val, &device, &mut Silent).unwrap(), logits);
    let fresh = Experiment::open(Path::new(DEMO)).unwrap().load_network(40, &device).unwrap();
    assert_eq!(eval::logits(&fresh, s.dataset(), Split::Val, &device, &mut Silent).unwrap(), logits);

    assert_eq!(run(&mut s, &noise).unwrap(), first);
    assert_eq!(first.runs, 3);
    // Another seed draws other noise.
    let space = s.space(&CandidateFilter::default(), Granularity::Unit).unwrap();
    let w = s.weights(40).unwrap();
    let noisy = |seed| {
        let mut set = (*w).clone();
        edit::apply(
            &Intervention::Noise { sigma: 0.05 },
            &mut set,
            &space,
            &[0, 1],
            None,
            &mut seeded(seed, 0),
        )
        .unwrap();
        set
    };
    assert_eq!(noisy(1), noisy(1));
    assert_ne!(noisy(1), noisy(2));
}

#[test]
fn percentile_ranks_and_selection_agree_with_brute_force() {
    let scores = [0.5f32, 3.0, 1.0, 3.0, -2.0, 0.0];
    let ranks = percentile_ranks(&scores);
    for (i, &s) in scores.iter().enumerate() {
        let below = scores.iter().filter(|&&o| o < s).count();
        assert_eq!(ranks[i], 100.0 * below as f64 / 5.0);
    }
    assert_eq!(select(&scores, Selection::TopK(3), 0).unwrap(), vec![1, 3, 2]);
    assert_eq!(select(&scores, Selection::TopFraction(0.5), 0).unwrap(), vec![1, 3, 2]);
    let random = select(&scores, Selection::Random { count: 2, outside_top: 0.5 }, 9).unwrap();
    assert_eq!(random.len(), 2);
    assert!(random.iter().all(|i| [0, 4, 5].contains(i)));
    assert_eq!(random, select(&scores, Selection::Random { count: 2, outside_top: 0.5 }, 9).unwrap());
}

#[test]
fn bad_requests_are_refused_with_clear_messages() {
    let mut s = session();
    let err = |r: anyhow::Result<_>| format!("{:#}", r.expect_err("should fail"));
    let crit = Criterion::Magnitude;
    let mut layer_scope = spec(Intervention::ZeroOut, crit.clone(), Selection::TopK(1));
    layer_scope.query.scope = Scope::Layer("stage9.conv".into());
    assert!(
        err(run(&mut s, &layer_scope)).contains("stage9.conv' is not a candidate layer (valid: stem.conv")
    );
    assert!(
        err(run(&mut s, &spec(Intervention::ZeroOut, crit.clone(), Selection::TopK(10_000))))
            .contains("k = 10000 is larger than the 338 candidate neurons")
    );
    for q in [0.0, 1.5, f64::NAN] {
        assert!(
            err(run(&mut s, &spec(Intervention::ZeroOut, crit.clone(), Selection::TopFraction(q))))
                .contains("outside (0, 1]")
        );
    }
    assert!(
        err(run(
            &mut s,
            &spec(Intervention::RewindNeurons { epochs_back: 41 }, crit.clone(), Selection::TopK(1))
        ))
        .contains("cannot rewind 41 epochs from epoch 40 (valid: 0..=40)")
    );
    assert!(
        err(run(&mut s, &spec(Intervention::Noise { sigma: -0.1 }, crit.clone(), Selection::TopK(1))))
            .contains("sigma = -0.1 must be a number >= 0")
    );
    let rewind = Intervention::RewindLayer { layer: "nope".into(), epochs_back: 5 };
    assert!(
        err(run(&mut s, &spec(rewind, crit.clone(), Selection::TopK(0)))).contains("unknown layer 'nope'")
    );

    // A group with no examples in the split: its accuracy is n/a, its gradient an error.
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let keep: Vec<usize> = (0..data.val.len()).filter(|&i| data.val.groups[i] != 1).collect();
    let data = data.restrict(Split::Val, &keep);
    let mut s = Session::new(exp, data, cpu()).unwrap();
    let r = run(&mut s, &spec(Intervention::ZeroOut, crit, Selection::TopK(2))).unwrap();
    assert_eq!((r.groups[1].before, r.groups[1].after, r.groups[1].change), (None, None, None));
    assert!(r.groups[0].before.is_some());
    assert!(
        err(run(&mut s, &spec(Intervention::ZeroOut, gradient(1, Split::Val), Selection::TopK(1))))
            .contains("no examples of group G1 in the val split")
    );
}

#[test]
fn studies_are_consistent_with_single_interventions() {
    let mut s = session();
    let rank_spec = ranks::RankSpec {
        epoch: 40,
        fraction: 0.05,
        granularity: Granularity::Unit,
        candidates: CandidateFilter::default(),
        split: Split::Train,
        sampling: Sampling::default(),
        seed: 0,
    };
    let study = ranks::run(&mut s, &rank_spec, &mut memscope_core::jobs::Silent).unwrap();
    assert_eq!(study.selected, 17); // ceil(0.05 * 338)
    for g in &study.groups {
        assert_eq!(g.magnitude_rank_of_top_gradient.iter().sum::<usize>(), 17);
        assert_eq!(g.gradient_rank_of_top_magnitude.iter().sum::<usize>(), 17);
    }

    let sens_spec = sensitivity::SensitivitySpec {
        epoch: 40,
        split: Split::Val,
        epochs_back: vec![10, 40],
        threshold: 0.01,
        candidates: CandidateFilter { exclude_head: true, ..Default::default() },
    };
    let sens = sensitivity::run(&mut s, &sens_spec, &mut memscope_core::jobs::Silent).unwrap();
    assert_eq!(sens.rows.len(), 2 * 9);
    for (i, &n) in sens_spec.epochs_back.iter().enumerate() {
        for g in 0..4 {
            let count = sens.rows.iter().filter(|r| r.epochs_back == n && r.sensitive[g]).count();
            assert_eq!(sens.counts[i][g], count);
        }
    }
    let row = &sens.rows[3];
    let single = run(
        &mut s,
        &spec(
            Intervention::RewindLayer { layer: row.layer.clone(), epochs_back: row.epochs_back },
            Criterion::Magnitude,
            Selection::TopK(0),
        ),
    )
    .unwrap();
    assert_eq!(row.change, single.groups.iter().map(|g| g.change).collect::<Vec<_>>());

    let control_spec = control::ControlSpec {
        epoch: 40,
        split: Split::Val,
        fractions: vec![0.01],
        criterion: Criterion::Magnitude,
        granularity: Granularity::Unit,
        candidates: CandidateFilter::default(),
        repeats: 2,
        seed: 0,
    };
    let table = control::run(&mut s, &control_spec, &mut memscope_core::jobs::Silent).unwrap();
    assert_eq!(table.rows[0].count, 4);
    let critical =
        run(&mut s, &spec(Intervention::ZeroOut, Criterion::Magnitude, Selection::TopK(4))).unwrap();
    assert_eq!(table.rows[0].critical, critical.groups);
}

#[test]
fn the_activation_cache_gives_exactly_the_uncached_results() {
    let mut cached = session();
    let mut plain = session();
    plain.set_activation_budget(0);
    let cases = [
        ("stage1.block0.conv2", Intervention::ZeroOut),
        ("stage2.block0.conv1", Intervention::Noise { sigma: 0.05 }),
        ("stage2.block0.shortcut.conv", Intervention::ZeroOut),
        ("stage3.block0.conv2", Intervention::Reinit { sigma: 0.1, uniform: false }),
        ("head", Intervention::RewindNeurons { epochs_back: 30 }),
        ("stem.conv", Intervention::ZeroOut),
    ];
    for (layer, intervention) in cases {
        let mut request = spec(intervention, gradient(1, Split::Train), Selection::TopK(2));
        request.query.scope = Scope::Layer(layer.into());
        assert_eq!(run(&mut cached, &request).unwrap(), run(&mut plain, &request).unwrap(), "{layer}");
    }
    let rewind = Intervention::RewindLayer { layer: "stage3.block0.conv1".into(), epochs_back: 20 };
    let request = spec(rewind, Criterion::Magnitude, Selection::TopK(0));
    assert_eq!(run(&mut cached, &request).unwrap(), run(&mut plain, &request).unwrap());
    assert!(cached.cached_activation_bytes() > 0);
    assert_eq!(plain.cached_activation_bytes(), 0);
}

/// Every report a job makes, refusing the `stop`th (and any after it).
struct StopAt {
    stop: usize,
    reports: Vec<(usize, usize)>,
}

impl memscope_core::jobs::Progress for StopAt {
    fn report(&mut self, done: usize, total: usize) -> Result<(), memscope_core::jobs::Cancelled> {
        self.reports.push((done, total));
        if self.reports.len() >= self.stop { Err(memscope_core::jobs::Cancelled) } else { Ok(()) }
    }
}

/// Runs `job` on fresh demo sessions (50 examples per evaluation pass, 20 per backward pass)
/// to the end, then stopped at its first, middle and last report: each time it returns the
/// typed cancellation right at the refused report (no report after it), and the same session
/// then computes what a fresh one does (nothing half-done was cached). Returns the reports of
/// the whole run.
fn stops_where_told<T: PartialEq + std::fmt::Debug>(
    job: impl Fn(&mut Session, &mut dyn memscope_core::jobs::Progress) -> anyhow::Result<T>,
) -> Vec<(usize, usize)> {
    let fresh = || {
        let mut s = session();
        let mut budgets = s.budgets();
        budgets.batches = memscope_core::data::batch::BatchSizes { eval: 50, gradient: 20 };
        s.set_budgets(budgets);
        s
    };
    let mut whole = StopAt { stop: usize::MAX, reports: Vec::new() };
    let expected = job(&mut fresh(), &mut whole).unwrap();
    let n = whole.reports.len();
    for stop in [1, n.div_ceil(2), n] {
        let mut s = fresh();
        let mut progress = StopAt { stop, reports: Vec::new() };
        let err = job(&mut s, &mut progress).unwrap_err();
        assert!(memscope_core::jobs::is_cancelled(&err), "stopped at report {stop}: {err:#}");
        assert_eq!(progress.reports, whole.reports[..stop], "went on after report {stop}");
        assert!(job(&mut s, &mut Silent).unwrap() == expected, "stopped at report {stop}, then different");
    }
    whole.reports
}

#[test]
fn baselines_gradient_scores_and_flips_report_each_batch_and_stop_at_the_one_refused() {
    use memscope_core::studies::flips::{self, FlipsSpec};
    let passes = |n: usize| (1..=n).map(move |d| (d, n));

    // Val (400 examples) in 8 passes that fill the activation cache; the head resumed from it
    // keeps the count full.
    let reports = stops_where_told(|s, p| s.baseline(40, Split::Val, p));
    assert_eq!(reports, passes(8).chain([(8, 8); 8]).collect::<Vec<_>>());

    // G2's 100 val examples (all taken) in 5 backward passes.
    let reports =
        stops_where_told(|s, p| s.score_source(40, &gradient(2, Split::Val), p).map(|g| (*g).clone()));
    assert_eq!(reports, passes(5).collect::<Vec<_>>());
    // The 10 lowest-confidence of them: their losses first (2 passes), then 1 backward pass.
    let lowest = Criterion::Gradient {
        group: Some(2),
        split: Split::Val,
        sampling: Sampling::LowestConfidence(10),
        seed: 0,
    };
    let reports = stops_where_told(|s, p| s.score_source(40, &lowest, p).map(|g| (*g).clone()));
    assert_eq!(reports, passes(2).chain(passes(1)).collect::<Vec<_>>());

    // The Images view: G1's 80 train examples' gradient (4 passes), val before (8), then val
    // after a change inside stage 2 (8 passes that fill the cache, 8 resumed from it).
    let spec = FlipsSpec {
        intervention: InterventionSpec::neurons(40).gradient_of(Some(1)).within("stage2.block0.conv2"),
        group: 1,
    };
    let reports = stops_where_told(|s, p| flips::run(s, &spec, p));
    let expected: Vec<_> = passes(4).chain(passes(8)).chain(passes(8)).chain(passes(8)).collect();
    assert_eq!(reports, expected);
}

/// The boundary-shift control on the demo, recomputed from the logits by brute force: every
/// candidate constant (0, and a point between each pair of neighbouring thresholds and beyond
/// both ends) tried on every example, the best kept (ties: nearest 0).
#[test]
fn the_boundary_shift_on_the_demo_is_the_best_constant_margin_shift() {
    let layer = "stage3.block0.conv1";
    let mut s = session();
    let r = run(&mut s, &InterventionSpec::rewind_layer(40, layer, 15)).unwrap();
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let old = read_weights(&exp.load_network(25, &cpu()).unwrap()).unwrap();
    let old_layer = old.iter().find(|w| w.name == layer).unwrap();
    let network = exp.load_network(40, &cpu()).unwrap();
    let before = eval::logits(&network, s.dataset(), Split::Val, &cpu(), &mut Silent).unwrap();
    let after =
        eval::logits(&with_weights(&network, &[old_layer]), s.dataset(), Split::Val, &cpu(), &mut Silent)
            .unwrap();
    let margin: Vec<f64> = before.chunks(2).map(|z| f64::from(z[1]) - f64::from(z[0])).collect();
    let was: Vec<bool> = margin.iter().map(|&m| m > 0.0).collect();
    let now: Vec<bool> = after.chunks(2).map(|z| z[1] > z[0]).collect();
    let mut thresholds: Vec<f64> = margin.iter().map(|m| -m).collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut candidates = vec![0.0, thresholds[0] - 1.0, thresholds[thresholds.len() - 1] + 1.0];
    candidates.extend(thresholds.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    let agree = |c: f64| margin.iter().zip(&now).filter(|(m, n)| (**m + c > 0.0) == **n).count();
    let best = candidates
        .iter()
        .copied()
        .max_by(|&a, &b| agree(a).cmp(&agree(b)).then(b.abs().total_cmp(&a.abs())))
        .unwrap();
    let flips = (0..margin.len()).filter(|&i| was[i] != now[i]).count();
    let explained =
        (0..margin.len()).filter(|&i| was[i] != now[i] && (margin[i] + best > 0.0) == now[i]).count();
    let extra = (0..margin.len()).filter(|&i| was[i] == now[i] && (margin[i] + best > 0.0) != was[i]).count();
    let fit = &r.boundary_shift.as_ref().unwrap().runs[0];
    assert_eq!((fit.flips, fit.explained, fit.extra), (flips, explained, extra));
    assert!(
        flips > explained && explained > 0,
        "a case with flips a shift cannot explain: {flips}, {explained}"
    );
    assert_eq!(agree(fit.shift[1]), agree(best));
}
