use std::process::ExitCode;

fn main() -> ExitCode {
    memscope_core::device::tune_allocator();
    // Ctrl-C, SIGTERM, SIGHUP: remove what was being written, restore the terminal, exit 130.
    memscope_core::util::interrupt::install();
    memscope::cli::logger::install();
    match memscope::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`memscope info | head`) is not an error worth a message.
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("memscope: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
