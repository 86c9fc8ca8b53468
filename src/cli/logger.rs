//! Where the engine's notices go (`log::warn!` and above): one line on standard error,
//! prefixed like every other message of memscope's.

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("memscope: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Sends the engine's notices to standard error (once; later calls do nothing).
pub fn install() {
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
