use std::process::ExitCode;

fn main() -> ExitCode {
    memscope_core::device::tune_allocator();
    // libtorch out of memory is said in one line (memscope_core::device::Pass), not as a panic.
    memscope_core::device::quiet_out_of_memory_panics();
    // Ctrl-C, SIGTERM, SIGHUP: remove what was being written, restore the terminal, exit 130.
    memscope_core::util::interrupt::install();
    memscope::cli::logger::install();
    memscope::cli::exit_code("memscope", memscope::cli::run(std::env::args_os()))
}
