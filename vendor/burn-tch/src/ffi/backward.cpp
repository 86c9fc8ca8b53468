// memscope: libtorch's own backward kernels for convolution and training-mode batch norm
// (what PyTorch's autograd calls), which tch does not bind: its generator skips functions
// that take a `bool[3] output_mask`. Used by src/ops/backward.rs; see README.md.
#include <ATen/core/Tensor.h>
#include <ATen/ops/add.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/native_batch_norm_backward.h>
#include <ATen/ops/rsqrt.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <tuple>
#include <vector>

extern "C" {

// The gradients of a (not transposed) convolution of `input` by `weight` with respect to the
// input (when `want_input`) and the weight (when `want_weight`), given the output's gradient.
// `stride`, `padding` and `dilation` have `dims` entries (the spatial dimensions). Writes new
// tensors, owned by the caller (tch's convention: `new at::Tensor`), to `*grad_input` and
// `*grad_weight`. Returns nullptr, or an error message allocated with malloc.
char *burn_tch_convolution_backward(const at::Tensor *grad_output, const at::Tensor *input,
                                    const at::Tensor *weight, const int64_t *stride,
                                    const int64_t *padding, const int64_t *dilation, size_t dims,
                                    int64_t groups, bool want_input, bool want_weight,
                                    at::Tensor **grad_input, at::Tensor **grad_weight) {
  try {
    std::vector<int64_t> output_padding(dims, 0);
    auto grads = at::convolution_backward(
        *grad_output, *input, *weight, c10::nullopt, at::IntArrayRef(stride, dims),
        at::IntArrayRef(padding, dims), at::IntArrayRef(dilation, dims), false, output_padding,
        groups, {want_input, want_weight, false});
    if (want_input) *grad_input = new at::Tensor(std::get<0>(grads));
    if (want_weight) *grad_weight = new at::Tensor(std::get<1>(grads));
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// The gradients of training-mode batch norm (normalised by the batch's `mean` and biased
// `variance`, per channel) with respect to the input, gamma (`weight`) and beta, given the
// output's gradient. Writes three new tensors. Returns nullptr, or a malloc'd message.
char *burn_tch_batch_norm_backward(const at::Tensor *grad_output, const at::Tensor *input,
                                   const at::Tensor *weight, const at::Tensor *mean,
                                   const at::Tensor *variance, double eps,
                                   at::Tensor **grad_input, at::Tensor **grad_weight,
                                   at::Tensor **grad_bias) {
  try {
    // What PyTorch's forward saves for its backward: 1 / sqrt(var + eps).
    at::Tensor invstd = at::rsqrt(at::add(*variance, eps));
    auto grads = at::native_batch_norm_backward(*grad_output, *input, *weight, c10::nullopt,
                                                c10::nullopt, *mean, invstd, true, eps,
                                                {true, true, true});
    *grad_input = new at::Tensor(std::get<0>(grads));
    *grad_weight = new at::Tensor(std::get<1>(grads));
    *grad_bias = new at::Tensor(std::get<2>(grads));
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
