//! memscope's front ends over the engine (`memscope_core`): the command line (`cli`) and the
//! explorer (`tui`). They parse, call the engine, and draw or print what it returns.

// No panics on what a user can influence: the front ends never unwrap (tests may).
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod tui;
