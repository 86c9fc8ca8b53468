//! memscope's engine: explore spurious memorization (critical neurons that memorize minority
//! groups) in classifiers trained on spuriously correlated data.
//!
//! The pipeline runs data → model → experiment (checkpoints) → training → evaluation →
//! neurons (scores) → edit (interventions) → studies → mitigation, and returns plain
//! serde-serialisable results with their provenance. No clap, no terminal, no printing: the
//! `memscope` crate's command line and explorer are front ends over it.

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
