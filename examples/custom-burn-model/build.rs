//! The binary's rpath to libtorch: the same build script as the engine crate's.
include!("../../crates/memscope-core/build.rs");
