//! Small helpers shared by every stage.

pub mod fsx;
pub mod memory;
pub mod rng;
