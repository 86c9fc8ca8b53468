//! Small helpers shared by every stage.

pub mod fsx;
pub mod interrupt;
pub mod lru;
pub mod memory;
pub mod rng;
