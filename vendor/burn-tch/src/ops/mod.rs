mod activation;
mod base;
mod bool_tensor;
// memscope: conv2d's gradients and training-mode batch norm through libtorch's kernels.
#[cfg_attr(not(libtorch_backward), allow(dead_code))]
mod backward;
mod int_tensor;
mod module;
mod qtensor;
mod tensor;
mod transaction;

pub(crate) use base::*;
