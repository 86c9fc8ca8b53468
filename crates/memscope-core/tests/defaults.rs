//! Every study's and method's default is the value its source gives. The expected values are
//! written here from the sources (the slides, the authors' released code, the baselines'
//! reference code; /work/shared/reference/METHOD.md and research/MITIGATION.md,
//! research/BASELINES.md), not read from the code.

use std::str::FromStr;

use memscope_core::data::augment::Augment;
use memscope_core::data::{DatasetSpec, Split};
use memscope_core::edit::Intervention;
use memscope_core::experiment::lineage::{Critical, Dfr, Features, GroupDro, Jtt, SilentMajority, Variant};
use memscope_core::experiment::{CrossEntropyOn, OptimizerKind, Schedule, TrainSettings};
use memscope_core::mitigate::{METHODS, MitigationPlan, default_methods, released_training};
use memscope_core::neurons::scores::{Criterion, Sampling};
use memscope_core::neurons::select::{Scope, Selection};
use memscope_core::neurons::{CandidateFilter, Granularity};
use memscope_core::report::ReportSpec;
use memscope_core::studies::control::ControlSpec;
use memscope_core::studies::grid::GridSpec;
use memscope_core::studies::intervention::InterventionSpec;
use memscope_core::studies::ranks::RankSpec;
use memscope_core::studies::sensitivity::SensitivitySpec;

/// The authors' code's gradient: the group's 200 lowest-confidence examples of train.
fn authors_gradient(group: usize, seed: u64) -> Criterion {
    Criterion::Gradient {
        group: Some(group),
        split: Split::Train,
        sampling: Sampling::LowestConfidence(200),
        seed,
    }
}

#[test]
fn an_intervention_is_the_slides_top_3_of_the_authors_units_on_val_averaged_over_10_runs() {
    let spec = InterventionSpec::neurons(40);
    assert_eq!(spec.epoch, 40);
    assert_eq!(spec.intervention, Intervention::ZeroOut);
    assert_eq!(spec.query.selection, Selection::TopK(3));
    assert_eq!(spec.query.scope, Scope::Global, "ranking is global over all candidate layers");
    assert!(!spec.query.normalize_layers, "with no normalisation across layers");
    assert_eq!(spec.query.granularity, Granularity::Unit, "one output filter, as the authors' code");
    assert_eq!(spec.query.candidates, CandidateFilter::default());
    assert_eq!(spec.query.criterion, authors_gradient(0, 0));
    assert_eq!((spec.split, spec.repeats, spec.seed), (Split::Val, 10, 0));
}

#[test]
fn the_changes_take_the_authors_sigma_and_distance() {
    // The code's configurations: re-init σ 0.02, noise σ 0.01; a neuron rewind of 10 epochs.
    let spec = GridSpec::slides(InterventionSpec::neurons(40));
    assert_eq!(
        spec.interventions,
        [
            Intervention::ZeroOut,
            Intervention::Reinit { sigma: 0.02, uniform: false },
            Intervention::Noise { sigma: 0.01 },
            Intervention::RewindNeurons { epochs_back: 10 },
        ]
    );
    assert_eq!(spec.ks, [1, 2, 3], "the slides' k = 1, 2, 3");
    assert_eq!(spec.base.query.selection, Selection::TopK(1), "the base is recorded as top-1");
}

#[test]
fn the_rank_histograms_take_the_top_0_01_percent() {
    let spec = RankSpec::at(40);
    assert_eq!(spec.epoch, 40);
    assert_eq!(spec.fraction, 0.0001, "the slides: top 0.01%");
    assert_eq!((spec.split, spec.sampling), (Split::Train, Sampling::LowestConfidence(200)));
    assert_eq!((spec.granularity, spec.seed), (Granularity::Unit, 0));
    assert_eq!(spec.candidates, CandidateFilter::default());
}

#[test]
fn a_sensitive_layer_moves_a_group_by_one_point_when_rewound_5_to_40_epochs() {
    let spec = SensitivitySpec::at(40);
    assert_eq!(spec.epochs_back, [5, 10, 20, 30, 40], "the slides' distances");
    assert_eq!(spec.threshold, 0.01, "the slides: +1%");
    assert_eq!((spec.epoch, spec.split), (40, Split::Val));
    assert_eq!(SensitivitySpec::at(12).reachable().epochs_back, [5, 10]);
    assert!(SensitivitySpec::at(4).reachable().epochs_back.is_empty());
    assert_eq!(SensitivitySpec::at(40).on(Split::Test).split, Split::Test);
}

#[test]
fn the_control_zeroes_0_01_to_0_03_percent_with_10_random_draws() {
    let spec = ControlSpec::default();
    assert_eq!(spec.fractions, [0.0001, 0.0002, 0.0003], "the slides' table's first rows");
    assert_eq!((spec.repeats, spec.seed, spec.split), (10, 0, Split::Val));
    assert_eq!(spec.granularity, Granularity::Unit);
    let seeded = ControlSpec::default().seed(7);
    assert_eq!(seeded.criterion, authors_gradient(0, 7), "the seed reaches the gradient's sampling");
}

#[test]
fn a_listing_shows_twenty_neurons() {
    // memscope's own choice (no source gives one): a screenful.
    assert_eq!(memscope_core::studies::intervention::DEFAULT_TOP, 20);
}

#[test]
fn the_report_measures_val_with_seed_0_and_10_repeats_at_the_last_epoch() {
    let spec = ReportSpec::default();
    assert_eq!((spec.epoch, spec.split, spec.seed, spec.repeats), (None, Split::Val, 0, 10));
}

#[test]
fn the_label_free_sampling_is_the_slides_256_highest_losses_128_drawn() {
    assert_eq!(Sampling::LABEL_FREE, Sampling::HighLoss { pool: 256, draw: 128 });
    assert_eq!("high-loss".parse::<Sampling>().unwrap(), Sampling::HighLoss { pool: 256, draw: 128 });
    assert_eq!("lowest-confidence".parse::<Sampling>().unwrap(), Sampling::LowestConfidence(200));
}

#[test]
fn mitigation_fine_tunes_as_released() {
    // SpuriousCorrelationFinetuningPruning.py: Adam(lr 2e-4, weight_decay 0), batch 100,
    // n_epochs 21, ReduceLROnPlateau(factor 0.5, patience 1), RandomResizedCrop(scale 0.7-1,
    // ratio 3/4-4/3) + RandomHorizontalFlip.
    // torch.optim.Adam's default eps 1e-8; CrossEntropyLoss on the softmax output of the
    // Sequential(Linear, Softmax) head.
    let birds = DatasetSpec::from_str("waterbirds:/data/waterbirds").unwrap();
    let t = released_training(&birds, 3);
    assert_eq!((t.optimizer, t.learning_rate, t.weight_decay), (OptimizerKind::Adam, 2e-4, 0.0));
    assert_eq!((t.batch_size, t.epochs, t.seed), (100, 21, 3));
    assert_eq!(t.schedule, Schedule::Plateau { factor: 0.5, patience: 1 });
    assert_eq!(t.adam_epsilon, 1e-8);
    assert_eq!(t.ce_on, CrossEntropyOn::Softmax);
    assert_eq!(t.augment, Augment::CropFlip { scale: (0.7, 1.0), ratio: (0.75, 4.0 / 3.0), flip: true });
    let plan = MitigationPlan::default();
    let digits = DatasetSpec::default();
    assert_eq!((plan.start_epoch, plan.name, plan.training), (None, None, released_training(&digits, 0)));
    assert_eq!(
        plan.method,
        memscope_core::experiment::lineage::Method::SilentMajority(SilentMajority::code())
    );
}

#[test]
fn the_augmentation_policy_flips_every_data_set_but_the_digits() {
    // A mirrored digit is not that digit: the crop alone on the digits, the release's crop
    // and flip on image folders.
    let crop = Augment::CropFlip { scale: (0.7, 1.0), ratio: (0.75, 4.0 / 3.0), flip: false };
    assert_eq!(released_training(&DatasetSpec::default(), 0).augment, crop);
    assert_eq!(released_training(&DatasetSpec::from_str("digits:64").unwrap(), 0).augment, crop);
    for folder in ["waterbirds:/w", "celeba:/c", "csv:/x/m.csv"] {
        let spec = DatasetSpec::from_str(folder).unwrap();
        assert_eq!(released_training(&spec, 0).augment, Augment::released(), "{folder}");
    }
    assert_eq!(
        Augment::released(),
        Augment::CropFlip { scale: (0.7, 1.0), ratio: (0.75, 4.0 / 3.0), flip: true }
    );
}

#[test]
fn train_keeps_burns_adam_epsilon_and_cross_entropy_on_logits() {
    // `memscope train` is unchanged (the bundled demo reproduces), and a record written
    // before these settings existed reads as what ran: burn's 1e-5, logits.
    let t = TrainSettings::default();
    assert_eq!((t.adam_epsilon, t.ce_on, &t.augment), (1e-5, CrossEntropyOn::Logits, &Augment::None));
    let old: TrainSettings = ron::from_str("(learning_rate: 0.0002, batch_size: 100)").unwrap();
    assert_eq!((old.adam_epsilon, old.ce_on), (1e-5, CrossEntropyOn::Logits));
    // Written only when they differ from that, so train's experiment.ron is unchanged.
    let written = ron::to_string(&t).unwrap();
    assert!(!written.contains("adam_epsilon") && !written.contains("ce_on"), "{written}");
}

#[test]
fn silent_majority_is_offered_as_released_and_as_the_slides_write_it() {
    // The release: τ 0.5, mse_lambda 0.2 (a cross-entropy), 1% smallest-|w| conv weights, on
    // the softmax outputs.
    let code = SilentMajority::code();
    assert_eq!((code.variant, code.features), (Variant::Code, Features::Probs));
    assert_eq!((code.temperature, code.lambda, code.fraction), (0.5, 0.2, 0.01));
    // The slides: the 0.01% critical neurons by the label-free gradient, NT-Xent on features.
    let paper = SilentMajority::paper();
    assert_eq!((paper.variant, paper.features), (Variant::Paper, Features::Penultimate));
    assert_eq!(paper.fraction, 0.0001);
    assert_eq!(paper.critical, Critical::Gradient(Sampling::HighLoss { pool: 256, draw: 128 }));
    assert_eq!(paper.granularity, Granularity::Unit);
    assert_eq!(SilentMajority::default(), code);
}

#[test]
fn the_baselines_take_their_reference_code_defaults() {
    // SpuCo: T = 1, upsample factor 100 (JTT's Waterbirds λ_up = 100).
    let jtt = Jtt::default();
    assert_eq!((jtt.identification_epoch, jtt.upweight), (1, 100));
    // group_DRO README: --robust_step_size 0.01, --generalization_adjustment 0, --reweight_groups.
    let dro = GroupDro::default();
    assert_eq!((dro.step_size, dro.adjustment, dro.reweight_groups), (0.01, 0.0, true));
    // dfr_evaluate_spurious.py: C in [1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01], 20 retrains.
    let dfr = Dfr::default();
    assert_eq!(dfr.c_grid, [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]);
    assert_eq!(dfr.retrains, 20);
}

#[test]
fn the_method_table_lists_each_method_once_with_the_labels_it_reads() {
    let rows: Vec<(&str, String)> = METHODS.iter().map(|m| (m.name, m.labels.to_string())).collect();
    let expected = [
        ("silent-majority", "none"),
        ("erm", "none"),
        ("jtt", "none"),
        ("group-dro", "train groups"),
        ("dfr", "val groups"),
    ];
    assert_eq!(rows, expected.map(|(n, l)| (n, l.to_string())));
    let labels: Vec<String> = default_methods().iter().map(|m| m.label()).collect();
    assert_eq!(
        labels,
        [
            "silent-majority (code, probs)",
            "silent-majority (paper as read, penultimate)",
            "erm",
            "jtt",
            "group-dro",
            "dfr"
        ]
    );
}

/// The lineage records of runs written before methods had a module each (memscope 0.1.0,
/// `mitigate --epochs 1` on the demo) read back as the same settings.
#[test]
fn the_records_of_earlier_runs_read_back_unchanged() {
    use memscope_core::experiment::lineage::Method;
    let read = |text: &str| ron::from_str::<Method>(text).unwrap();
    let high_loss = "critical: gradient(r#high-loss( pool: 256, draw: 128, )), granularity: unit, ";
    assert_eq!(
        read(&format!(
            "r#silent-majority(( variant: code, features: probs, temperature: 0.5, lambda: 0.2, fraction: 0.01, {high_loss}))"
        )),
        Method::SilentMajority(SilentMajority::code())
    );
    assert_eq!(
        read(&format!(
            "r#silent-majority(( variant: paper, features: penultimate, temperature: 0.5, lambda: 0.2, fraction: 0.0001, {high_loss}))"
        )),
        Method::SilentMajority(SilentMajority::paper())
    );
    assert_eq!(read("erm"), Method::Erm);
    assert_eq!(
        read("jtt(( identification_epoch: 1, upweight: 100, errors: 59, ))"),
        Method::Jtt(Jtt { errors: 59, ..Jtt::default() })
    );
    assert_eq!(
        read("r#group-dro(( step_size: 0.01, adjustment: 0.0, reweight_groups: true, ))"),
        Method::GroupDro(GroupDro::default())
    );
    assert_eq!(
        read(
            "dfr(( c_grid: [ 1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01, ], c: 1.0, retrains: 2, per_group: 40, ))"
        ),
        Method::Dfr(Dfr { c: 1.0, retrains: 2, per_group: 40, ..Dfr::default() })
    );
}
