//! Running out of memory. libtorch reports a failed allocation as an error, which tch and
//! burn-tch turn into a panic ("CUDA out of memory. Tried to allocate ...", "DefaultCPUAllocator:
//! can't allocate memory: ..."). Each pass of examples runs inside [`guard`], which turns that
//! panic into an [`OutOfMemory`] error naming the flag that lowers its batch; nothing is
//! written by a command that fails (outputs are written whole, after the work, or staged).

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use anyhow::Result;
use burn::prelude::*;

/// What a pass was doing, for the flag that sets its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Forward passes measuring accuracy, caching activations or reading features.
    Evaluation,
    /// Backward passes of a gradient score.
    Gradient,
    /// Training steps (train, mitigate).
    Training,
}

impl Pass {
    fn describe(self) -> &'static str {
        match self {
            Pass::Evaluation => "evaluation",
            Pass::Gradient => "a gradient pass",
            Pass::Training => "training",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Pass::Evaluation => "lower --eval-batch (or --grad-batch for gradient scores)",
            Pass::Gradient => "lower --grad-batch",
            Pass::Training => "lower --batch-size",
        }
    }
}

/// A pass that did not fit in its device's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// "CUDA out of memory on cuda:0", "out of memory on the CPU".
    pub place: String,
    pub pass: Pass,
    /// Examples in the pass.
    pub batch: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OutOfMemory { place, pass, batch } = self;
        write!(f, "{place} during {} (batch of {batch}): {}", pass.describe(), pass.advice())
    }
}

impl std::error::Error for OutOfMemory {}

/// Whether libtorch's `message` says an allocation failed: CUDA's caching allocator, a CUDA
/// call, cuBLAS or cuDNN out of memory, or the CPU allocator.
pub fn is_out_of_memory(message: &str) -> bool {
    ["out of memory", "can't allocate memory", "ALLOC_FAILED"].iter().any(|m| message.contains(m))
}

/// The text of a panic's payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Where libtorch ran out of memory, from its message and the pass's device.
fn place(message: &str, device: &Device) -> String {
    match super::cuda_index(device) {
        Some(index) if message.contains("CUDA") || message.contains("cuda") => {
            format!("CUDA out of memory on cuda:{index}")
        }
        _ => "out of memory on the CPU".into(),
    }
}

/// The start of the panic a TorchScript module's failed forward raises (`model::scripted`): a
/// user's module, so [`guard`] makes it an error, not a crash.
pub(crate) const SCRIPTED_FAILED: &str = "the TorchScript module failed";

/// Runs one pass of `batch` examples on `device`; libtorch running out of memory becomes an
/// [`OutOfMemory`] error, a TorchScript module's failure its one-line error. Any other panic
/// goes on as it was.
pub(crate) fn guard<T>(pass: Pass, batch: usize, device: &Device, work: impl FnOnce() -> T) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(value) => Ok(value),
        Err(payload) => match panic_message(payload.as_ref()) {
            Some(message) if is_out_of_memory(message) => {
                Err(OutOfMemory { place: place(message, device), pass, batch }.into())
            }
            Some(message) if message.starts_with(SCRIPTED_FAILED) => Err(anyhow::anyhow!("{message}")),
            _ => resume_unwind(payload),
        },
    }
}

/// For a front end: an out-of-memory panic that no [`guard`] caught (loading a network, say),
/// as one line; `None` for any other panic.
pub fn uncaught_out_of_memory(payload: &(dyn Any + Send)) -> Option<String> {
    let message = panic_message(payload).filter(|m| is_out_of_memory(m))?;
    let place = if message.contains("CUDA") { "CUDA out of memory" } else { "out of memory on the CPU" };
    Some(format!("{place}: lower --eval-batch or --grad-batch, or use a smaller model"))
}

/// For a front end, once at start: panics that say libtorch ran out of memory or that a
/// TorchScript module failed are not printed (a [`guard`] turns them into one-line errors;
/// printing an out-of-memory one would also allocate, a backtrace with `RUST_BACKTRACE` set can
/// deadlock then); every other panic goes to the hook installed before.
pub fn quiet_out_of_memory_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let guarded = |m: &str| is_out_of_memory(m) || m.starts_with(SCRIPTED_FAILED);
        if !panic_message(info.payload()).is_some_and(guarded) {
            previous(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages libtorch 2.9 gives (CUDA's from PyTorch's issue tracker and its source).
    #[test]
    fn libtorchs_out_of_memory_messages_are_recognised() {
        for message in [
            "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB. \
             GPU 0 has a total capacity of 79.10 GiB of which 1.06 GiB is free.\")",
            "Torch(\"CUDA error: out of memory\\nCUDA kernel errors might be asynchronously reported\")",
            "Torch(\"CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`\")",
            "Torch(\"cuDNN error: CUDNN_STATUS_ALLOC_FAILED\")",
            "Torch(\"[enforce fail at alloc_cpu.cpp:124] err == 0. DefaultCPUAllocator: can't allocate memory: \
             you tried to allocate 73728000 bytes. Error code 12 (Cannot allocate memory)\")",
        ] {
            assert!(is_out_of_memory(message), "{message}");
        }
        assert!(!is_out_of_memory("Torch(\"Expected all tensors to be on the same device\")"));
    }

    #[test]
    fn the_one_line_names_the_flag_of_the_pass() {
        let oom = |pass| OutOfMemory { place: "CUDA out of memory on cuda:0".into(), pass, batch: 100 };
        assert_eq!(
            oom(Pass::Evaluation).to_string(),
            "CUDA out of memory on cuda:0 during evaluation (batch of 100): lower --eval-batch (or --grad-batch for gradient scores)"
        );
        assert!(
            oom(Pass::Gradient).to_string().ends_with("a gradient pass (batch of 100): lower --grad-batch")
        );
        assert!(oom(Pass::Training).to_string().ends_with("lower --batch-size"));
    }

    /// A real allocation failure: libtorch asked for 2^46 floats (256 TiB) on the CPU, through
    /// burn as the engine asks, panics in burn-tch; the guard makes it the one-line error and
    /// lets other panics through.
    #[test]
    fn a_real_failed_allocation_becomes_the_one_line_error() {
        let device = super::super::DeviceSpec::Cpu.device().unwrap();
        let error = guard(Pass::Evaluation, 7, &device, || Tensor::<1>::zeros([1usize << 46], &device))
            .map(|_| ())
            .unwrap_err();
        let oom = error.downcast_ref::<OutOfMemory>().unwrap();
        assert_eq!(
            oom,
            &OutOfMemory { place: "out of memory on the CPU".into(), pass: Pass::Evaluation, batch: 7 }
        );
        let other = catch_unwind(|| guard(Pass::Evaluation, 1, &device, || panic!("something else")));
        assert_eq!(panic_message(other.unwrap_err().as_ref()), Some("something else"));
    }
}
