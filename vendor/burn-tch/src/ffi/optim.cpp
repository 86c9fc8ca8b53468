// memscope: one Adam step on one parameter through libtorch's fused kernel
// (`at::_fused_adam_`, what `torch.optim.Adam(fused=True)` calls: one pass over the
// parameter, its gradient and both moments), which tch does not bind. Used by src/optim.rs;
// see README.md.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

extern "C" {

// Adam with L2 weight decay (the decay added to the gradient, as burn's Adam and PyTorch's
// `Adam(weight_decay=...)` do), step number `step` (1 for the first), updating `param`,
// `exp_avg` and `exp_avg_sq` in place. `grad` is read, and may be overwritten. The kernel
// walks the four tensors' memory in one order, so each is first made dense in the
// parameter's layout (a copy only where it is not: a gradient in another memory format;
// `*param`, `*exp_avg` and `*exp_avg_sq` then name the copies). Returns nullptr, or an error
// message allocated with malloc.
char *burn_tch_adam_step(at::Tensor *param, at::Tensor *grad, at::Tensor *exp_avg,
                         at::Tensor *exp_avg_sq, int64_t step, double lr, double beta1,
                         double beta2, double weight_decay, double eps) {
  try {
    at::Tensor &p = *param;
    if (!p.is_non_overlapping_and_dense()) p = p.contiguous();
    auto like_param = [&p](at::Tensor &t) {
      if (t.strides() != p.strides()) {
        at::Tensor copy = at::empty_like(p);  // dense, p's strides
        copy.copy_(t);
        t = copy;
      }
    };
    at::Tensor g = *grad;
    like_param(g);
    like_param(*exp_avg);
    like_param(*exp_avg_sq);
    at::Tensor steps = at::full({}, static_cast<double>(step), p.options().dtype(at::kFloat));
    at::_fused_adam_({p}, {g}, {*exp_avg}, {*exp_avg_sq}, {}, {steps}, lr, beta1, beta2,
                     weight_decay, eps, false, false);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
