//! The process's own memory figures (Linux `/proc/self/status`; `None` elsewhere).

/// Which figure of `/proc/self/status`.
#[derive(Clone, Copy, Debug)]
pub enum Memory {
    /// `VmRSS`: resident now.
    Resident,
    /// `VmHWM`: the peak resident so far.
    PeakResident,
}

/// `which` in MB.
pub fn megabytes(which: Memory) -> Option<f64> {
    let field = match which {
        Memory::Resident => "VmRSS:",
        Memory::PeakResident => "VmHWM:",
    };
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}
