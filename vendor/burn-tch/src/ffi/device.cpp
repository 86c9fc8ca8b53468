// memscope: libtorch's process-wide CUDA numerics settings (what `torch.backends.cudnn` and
// `torch.backends.cuda.matmul` set in Python) and an upload of host values through page-locked
// memory, which tch does not bind. Used by src/device.rs; see README.md.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace {
// libtorch 2.9 to 2.11 warn once that `allow_tf32` will give way to `fp32_precision`, whose
// C++ spelling changed between those releases; the calls below keep the spelling all of them
// share, so the notice is dropped (for the calling thread, during the call only).
struct Quiet : c10::WarningHandler {
  void process(const c10::Warning &) override {}
};
} // namespace

extern "C" {

// Sets cuDNN's deterministic and benchmark modes and whether cuDNN (convolutions) and cuBLAS
// (matmuls) may use TF32. Returns nullptr, or an error message allocated with malloc.
char *burn_tch_set_cuda_numerics(bool deterministic, bool benchmark, bool tf32_cudnn,
                                 bool tf32_cublas) {
  try {
    Quiet quiet;
    c10::WarningUtils::WarningHandlerGuard guard(&quiet);
    auto &context = at::globalContext();
    context.setDeterministicCuDNN(deterministic);
    context.setBenchmarkCuDNN(benchmark);
    context.setAllowTF32CuDNN(tf32_cudnn);
    context.setAllowTF32CuBLAS(tf32_cublas);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// Reads the four settings back from libtorch. Returns nullptr, or a malloc'd message.
char *burn_tch_cuda_numerics(bool *deterministic, bool *benchmark, bool *tf32_cudnn,
                             bool *tf32_cublas) {
  try {
    Quiet quiet;
    c10::WarningUtils::WarningHandlerGuard guard(&quiet);
    auto &context = at::globalContext();
    *deterministic = context.deterministicCuDNN();
    *benchmark = context.benchmarkCuDNN();
    *tf32_cudnn = context.allowTF32CuDNN();
    *tf32_cublas = context.allowTF32CuBLAS();
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// `values` (row-major, `dims` sizes in `shape`; float32 when `integers` is false, int64 when
// true) as a new tensor on CUDA device `index` (tch's convention: `new at::Tensor`, owned by
// the caller, in `*out`): copied once into page-locked host memory, then to the device without
// the host waiting for the copy (PyTorch's `pin_memory()` and `to(device, non_blocking=True)`).
// The copy is queued on the current stream, after the kernels already queued there; libtorch's
// host allocator keeps the page-locked block until the copy is done. Returns nullptr, or a
// malloc'd message.
char *burn_tch_upload_pinned(const void *values, bool integers, const int64_t *shape,
                             size_t dims, int64_t index, at::Tensor **out) {
  try {
    at::ScalarType type = integers ? at::kLong : at::kFloat;
    at::Tensor host = at::empty(at::IntArrayRef(shape, dims),
                                at::TensorOptions().dtype(type).pinned_memory(true));
    std::memcpy(host.data_ptr(), values, host.nbytes());
    at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
    *out = new at::Tensor(host.to(device, type, /*non_blocking=*/true));
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
