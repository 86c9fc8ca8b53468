//! Small helpers shared by every stage.

pub mod fsx;
pub mod rng;
