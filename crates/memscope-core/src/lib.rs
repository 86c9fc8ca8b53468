//! memscope's engine: explore spurious memorization (critical neurons that memorize minority
//! groups) in classifiers trained on spuriously correlated data. No clap, no terminal, no
//! printing: the `memscope` crate's command line and explorer are front ends over it. Every
//! result is serde-serialisable and carries its provenance; every default lives on a spec.
//!
//! What it offers, in the order a study runs:
//! - [`experiment::Experiment::open`] a folder of checkpoints (`experiment::import` makes one of
//!   another tool's run, `train::train` of an ERM run) with its data set
//!   (`data::DatasetSpec::open`); [`session::Session`] holds both with the caches studies share.
//! - Your own burn model: implement [`model::BurnClassifier`] on your `Module`, register it
//!   ([`model::custom::register`]) and record its run ([`experiment::custom::create`]); see
//!   `docs/custom-burn-model.md` and `examples/custom-burn-model`.
//! - [`studies`]: each study is a spec with its `Default` (the paper's or the release's values)
//!   and `run(session, &spec, progress)`: `intervention`, `grid`, `ranks`, `sensitivity`,
//!   `control`, `sweep`, `epochs`, `flips`, `timeline`. [`edit::Intervention`] is the change.
//! - [`mitigate::mitigate`] Stage 2 (one module per method, listed in `mitigate::METHODS`),
//!   [`mitigate::compare`] its comparison.
//! - Output: [`render::render`] (table, CSV, JSON with [`render::Provenance`]), [`figure::svg`]
//!   and [`figure::png`], [`report::build`] and [`report::html`] (with `report::claims`).
//! - [`jobs::Progress`] reports and cancels long jobs; [`util::fsx`] writes files safely;
//!   [`util::interrupt`] cleans up on signals.
//!
//! Modules a front end never needs are private to the crate (`unreachable_pub` keeps it so).

// No panics on what a user can influence: the library never unwraps (tests may).
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![warn(unreachable_pub)]

pub mod data;
pub mod device;
pub mod edit;
pub mod eval;
pub mod experiment;
pub mod figure;
pub mod inspect;
pub mod jobs;
pub mod mitigate;
pub mod model;
pub mod neurons;
pub mod render;
pub mod report;
pub mod session;
pub mod studies;
pub mod train;
pub mod util;
