//! Small helpers shared by every stage.

pub mod fsx;
pub mod interrupt;
pub(crate) mod lru;
pub mod memory;
pub mod rng;
