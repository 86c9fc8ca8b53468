//! memscope: explore spurious memorization (critical neurons that memorize minority
//! groups) in classifiers trained on spuriously correlated data.
//!
//! The engine runs data → model → experiment (checkpoints) → training → evaluation →
//! inspection and returns plain serde-serialisable results; `cli` is a thin front end.

// No panics on what a user can influence: the library and binary never unwrap (tests may).
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod data;
pub mod device;
pub mod eval;
pub mod experiment;
pub mod figure;
pub mod inspect;
pub mod intervene;
pub mod jobs;
pub mod mitigate;
pub mod model;
pub mod neurons;
pub mod page;
pub mod report;
pub mod session;
pub mod studies;
pub mod train;
pub mod tui;
pub mod util;
