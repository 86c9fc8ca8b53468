// memscope: one Adam step on one parameter through libtorch's fused kernel
// (`at::_fused_adam_`, what `torch.optim.Adam(fused=True)` calls: one pass over the
// parameter, its gradient and both moments), which tch does not bind. Used by src/optim.rs;
// see README.md.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/add.h>
#include <ATen/ops/addcdiv.h>
#include <ATen/ops/addcmul.h>
#include <ATen/ops/div.h>
#include <ATen/ops/full.h>
#include <ATen/ops/lerp.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/sqrt.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

extern "C" {

// Adam with L2 weight decay (the decay added to the gradient, as burn's Adam and PyTorch's
// `Adam(weight_decay=...)` do), step number `step` (1 for the first), updating `param`,
// `exp_avg` and `exp_avg_sq` in place. `grad` is read, and may be overwritten. With equal
// strides (every tensor dense in the same layout) the fused kernel does it in one pass;
// otherwise PyTorch's single-tensor Adam (`_single_tensor_adam`) does it in a few passes.
// Returns nullptr, or an error message allocated with malloc.
char *burn_tch_adam_step(at::Tensor *param, at::Tensor *grad, at::Tensor *exp_avg,
                         at::Tensor *exp_avg_sq, int64_t step, double lr, double beta1,
                         double beta2, double weight_decay, double eps) {
  try {
    at::Tensor &p = *param;
    const at::Tensor &g = *grad;
    at::Tensor &m = *exp_avg;
    at::Tensor &v = *exp_avg_sq;
    bool dense = p.is_non_overlapping_and_dense() && g.strides() == p.strides() &&
                 m.strides() == p.strides() && v.strides() == p.strides();
    if (dense) {
      at::Tensor steps = at::full({}, static_cast<double>(step), p.options().dtype(at::kFloat));
      at::_fused_adam_({p}, {g}, {m}, {v}, {}, {steps}, lr, beta1, beta2, weight_decay, eps,
                       false, false);
      return nullptr;
    }
    at::Tensor d = weight_decay != 0.0 ? g.add(p, weight_decay) : g;
    m.lerp_(d, 1.0 - beta1);
    v.mul_(beta2).addcmul_(d, d, 1.0 - beta2);
    double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
    at::Tensor denom = v.sqrt().div_(bias_correction2_sqrt).add_(eps);
    p.addcdiv_(m, denom, -lr / bias_correction1);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
