// memscope: a TorchScript module (`torch.jit.script` / `torch.jit.trace`, saved with
// `torch.jit.save`) loaded onto a device, its parameters AND buffers by name (tch's CModule
// lists parameters only, so BatchNorm's running statistics could not be set), and its forward
// pass on one tensor. Used by src/script.rs; see README.md.
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

extern "C" {

// Loads the module at `path` onto CPU (`cuda` < 0) or CUDA device `cuda`, in eval mode, into
// `*out` (owned by the caller; free with burn_tch_script_free). Returns nullptr, or a
// malloc'd message.
char *burn_tch_script_load(const char *path, int64_t cuda, void **out) {
  try {
    c10::Device device = cuda < 0 ? c10::Device(c10::kCPU)
                                  : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(cuda));
    auto module = new torch::jit::Module(torch::jit::load(std::string(path), device));
    module->eval();
    *out = module;
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

void burn_tch_script_free(void *module) { delete static_cast<torch::jit::Module *>(module); }

// Calls `f(data, name, is_buffer, tensor)` for every parameter, then every buffer, of the
// module and its submodules (names as in the state dict). Each tensor is a new handle on the
// module's own tensor (`new at::Tensor`, owned by the callee): changing its data changes the
// module's. Returns nullptr, or a malloc'd message.
char *burn_tch_script_tensors(void *module, void *data,
                              void (*f)(void *, const char *, bool, at::Tensor *)) {
  try {
    auto m = static_cast<torch::jit::Module *>(module);
    for (const auto &p : m->named_parameters(/*recurse=*/true)) {
      f(data, p.name.c_str(), false, new at::Tensor(p.value));
    }
    for (const auto &b : m->named_buffers(/*recurse=*/true)) {
      f(data, b.name.c_str(), true, new at::Tensor(b.value));
    }
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// `module.forward(input)` into `*out` (a new tensor owned by the caller). Gradients are
// recorded when `grad` is true (autograd through the module's parameters), not otherwise.
// Returns nullptr, or a malloc'd message (also when the output is not one tensor).
char *burn_tch_script_forward(void *module, const at::Tensor *input, bool grad, at::Tensor **out) {
  try {
    auto m = static_cast<torch::jit::Module *>(module);
    c10::AutoGradMode mode(grad);
    auto result = m->forward({*input});
    if (!result.isTensor()) {
      return strdup(("forward returned " + result.tagKind() + ", not one tensor of logits").c_str());
    }
    *out = new at::Tensor(result.toTensor());
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
