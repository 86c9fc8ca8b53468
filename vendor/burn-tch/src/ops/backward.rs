//! memscope: gradients through libtorch's own kernels, the ones PyTorch's autograd calls,
//! instead of burn-backend's generic rules:
//!
//! - conv2d: `at::convolution_backward` instead of a transposed convolution for the input's
//!   gradient and a convolution with batch and channel axes swapped for the weight's;
//! - training-mode batch norm: one statistics pass and libtorch's fused normalisation forward,
//!   `at::native_batch_norm_backward` backward, instead of a dozen element-wise operations
//!   and reductions (each copying a channels-last activation to swap its axes).
//!
//! tch has no binding for either backward, so `src/ffi/backward.cpp` provides them. See
//! README.md.

use crate::{LibTorch, TchTensor};
use burn_backend::{
    TensorMetadata,
    ops::{BatchNormTrain, BatchNormTrainBackward, ConvOptions, conv::pad_asymmetric_conv_input},
};
use std::ffi::{CStr, c_char};
use torch_sys::C_tensor;

unsafe extern "C" {
    fn burn_tch_convolution_backward(
        grad_output: *const C_tensor,
        input: *const C_tensor,
        weight: *const C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        dims: usize,
        groups: i64,
        want_input: bool,
        want_weight: bool,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
    ) -> *mut c_char;

    fn burn_tch_batch_norm_backward(
        grad_output: *const C_tensor,
        input: *const C_tensor,
        weight: *const C_tensor,
        mean: *const C_tensor,
        variance: *const C_tensor,
        eps: f64,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
        grad_bias: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// Panics with the binding's error message, if any (burn-tch panics on libtorch errors).
///
/// # Safety
///
/// `error` is null or a string the binding allocated with malloc.
unsafe fn check(error: *mut c_char, what: &str) {
    if !error.is_null() {
        // SAFETY: a NUL-terminated string from strdup, freed once here.
        let message = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        unsafe { libc::free(error.cast()) };
        panic!("libtorch {what} failed: {message}");
    }
}

/// Takes ownership of a tensor the binding allocated.
///
/// # Safety
///
/// `tensor` is null or a new tensor owned by nobody else.
unsafe fn owned(tensor: *mut C_tensor, what: &str) -> tch::Tensor {
    assert!(!tensor.is_null(), "libtorch {what} returned no gradient");
    // SAFETY: see above; tch frees it on drop.
    unsafe { tch::Tensor::from_ptr(tensor) }
}

/// Which gradient of a convolution to compute.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrt {
    Input,
    Weight,
}

/// The gradient with respect to `wrt` of the convolution `conv(x, weight, options)` (bias
/// or not: its gradient is apart), given the gradient of its output.
pub(crate) fn conv_backward<const N: usize>(
    x: TchTensor,
    weight: TchTensor,
    output_grad: TchTensor,
    options: ConvOptions<N>,
    wrt: Wrt,
) -> TchTensor {
    // Asymmetric padding: as the forward pass, on the input padded explicitly; the input's
    // gradient is then cropped back to the input.
    let input_shape = x.shape();
    let padding = options.padding;
    let asymmetric = options.is_asymmetric();
    let (x, options) = pad_asymmetric_conv_input::<LibTorch, N>(x, options);
    let mut grad = convolution_backward(
        &x.tensor,
        &weight.tensor,
        &output_grad.tensor,
        &options,
        wrt,
    );
    if wrt == Wrt::Input && asymmetric {
        for (dim, (begin, _)) in padding.iter().enumerate() {
            grad = grad.narrow(dim as i64 + 2, *begin as i64, input_shape[dim + 2] as i64);
        }
    }
    TchTensor::new(grad)
}

fn convolution_backward<const N: usize>(
    x: &tch::Tensor,
    weight: &tch::Tensor,
    output_grad: &tch::Tensor,
    options: &ConvOptions<N>,
    wrt: Wrt,
) -> tch::Tensor {
    let stride = options.stride.map(|v| v as i64);
    let padding = options.padding_begin().map(|v| v as i64);
    let dilation = options.dilation.map(|v| v as i64);
    let mut grad_input: *mut C_tensor = std::ptr::null_mut();
    let mut grad_weight: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: the tensor pointers are live tch tensors borrowed for the call; the arrays have
    // N entries; the binding writes at most the two requested outputs, each a new tensor, or
    // returns a malloc'd message.
    unsafe {
        let error = burn_tch_convolution_backward(
            output_grad.as_ptr(),
            x.as_ptr(),
            weight.as_ptr(),
            stride.as_ptr(),
            padding.as_ptr(),
            dilation.as_ptr(),
            N,
            options.groups as i64,
            wrt == Wrt::Input,
            wrt == Wrt::Weight,
            &mut grad_input,
            &mut grad_weight,
        );
        check(error, "convolution_backward");
        match wrt {
            Wrt::Input => owned(grad_input, "convolution_backward"),
            Wrt::Weight => owned(grad_weight, "convolution_backward"),
        }
    }
}

/// The bias gradient: the output's gradient summed over every axis but the channels.
pub(crate) fn bias_backward(bias: TchTensor, output_grad: TchTensor) -> TchTensor {
    let dims: Vec<i64> = (0..output_grad.tensor.dim() as i64)
        .filter(|&d| d != 1)
        .collect();
    let grad = output_grad
        .tensor
        .sum_dim_intlist(dims, false, bias.tensor.kind());
    TchTensor::new(grad.reshape(bias.tensor.size()))
}

/// Batch norm with the batch's own statistics: the mean and biased variance per channel in
/// one pass, then libtorch's fused normalisation with them (as statistics given, which is
/// faster on CPU than its training mode, whose saved 1/√(σ² + ε) would not give σ² exactly).
pub(crate) fn batch_norm_train(
    x: TchTensor,
    gamma: TchTensor,
    beta: TchTensor,
    epsilon: f64,
) -> BatchNormTrain<LibTorch> {
    // libtorch's statistics kernel (the one its training-mode batch norm runs); without
    // running statistics to update it returns the mean and the biased variance.
    let (mean, variance) =
        x.tensor
            .batch_norm_update_stats(None::<&tch::Tensor>, None::<&tch::Tensor>, 0.0);
    let (output, _, _) = x.tensor.native_batch_norm(
        Some(&gamma.tensor),
        Some(&beta.tensor),
        Some(&mean),
        Some(&variance),
        false,
        0.0,
        epsilon,
    );
    BatchNormTrain::new(
        TchTensor::new(output),
        TchTensor::new(mean),
        TchTensor::new(variance),
    )
}

/// The gradients of [`batch_norm_train`] through `at::native_batch_norm_backward`.
pub(crate) fn batch_norm_train_backward(
    x: TchTensor,
    gamma: TchTensor,
    mean: TchTensor,
    variance: TchTensor,
    epsilon: f64,
    output_grad: TchTensor,
) -> BatchNormTrainBackward<LibTorch> {
    let mut grads = [std::ptr::null_mut::<C_tensor>(); 3];
    let [x_grad, gamma_grad, beta_grad] = &mut grads;
    // SAFETY: live tch tensors borrowed for the call; the binding writes three new tensors,
    // or returns a malloc'd message.
    let [x_grad, gamma_grad, beta_grad] = unsafe {
        let error = burn_tch_batch_norm_backward(
            output_grad.tensor.as_ptr(),
            x.tensor.as_ptr(),
            gamma.tensor.as_ptr(),
            mean.tensor.as_ptr(),
            variance.tensor.as_ptr(),
            epsilon,
            x_grad,
            gamma_grad,
            beta_grad,
        );
        check(error, "native_batch_norm_backward");
        grads.map(|g| TchTensor::new(owned(g, "native_batch_norm_backward")))
    };
    BatchNormTrainBackward::new(x_grad, gamma_grad, beta_grad)
}
