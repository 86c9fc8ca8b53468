#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![allow(clippy::single_range_in_vec_init)]
#![deprecated(
    since = "0.22.0",
    note = "burn-tch is deprecated and will be removed in a future release. For GPU acceleration use a CubeCL backend: burn-cuda (NVIDIA), burn-rocm (AMD), or burn-wgpu (Metal, Vulkan, WebGPU). For CPU execution use burn-cpu (CubeCL) or burn-flex (pure Rust)."
)]

//! Burn Tch Backend
//!
//! **Deprecated:** This backend is deprecated and will be removed in a future release.
//! Please migrate to one of the actively maintained backends:
//! - CubeCL GPU backends: `burn-cuda` (NVIDIA), `burn-rocm` (AMD), `burn-wgpu` (Metal, Vulkan,
//!   WebGPU)
//! - CPU backends: `burn-cpu` (CubeCL) or `burn-flex` (pure Rust, std/no_std/WASM)

mod backend;
mod device;
mod element;
mod ops;
mod optim;
mod script;
mod tensor;

pub use backend::*;
pub use device::*;
pub use element::*;
pub use optim::*;
pub use script::*;
pub use tensor::*;

/// memscope: true when conv2d's gradients and training-mode batch norm are computed by
/// libtorch's own kernels (`convolution_backward`, `native_batch_norm_backward`: their
/// headers were found at build time), false when burn-backend's generic rules are kept. See
/// README.md.
pub fn libtorch_backward() -> bool {
    cfg!(libtorch_backward)
}
