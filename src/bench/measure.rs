//! Peak resident memory of this process, from `/proc/self/status` (Linux).
//!
//! `VmHWM` is the high-water mark of the resident set. Writing `5` to `/proc/self/clear_refs`
//! resets it to the current resident set (Linux 4.0 and later), which lets one process measure
//! the peak of each phase separately: input generation, the FFD plan, the ILP plan.

const MIB: f64 = 1024.0;

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`), when available.
pub fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set since start (or since the last reset), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_kib("VmHWM").map(|k| k as f64 / MIB)
}

/// Reset the peak to the current resident set; false when the kernel does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peaks of consecutive phases of one process.
#[derive(Debug, Clone, Default)]
pub struct PhasePeaks {
    /// True when the per-phase reset works; otherwise every reading is the process peak so far.
    pub resettable: bool,
    /// The largest reading so far: the peak of the whole process.
    pub process: f64,
}

impl PhasePeaks {
    /// Start measuring: resets the peak so the first phase starts from the current RSS.
    pub fn start() -> Self {
        let process = peak_rss_mib().unwrap_or(0.0);
        PhasePeaks {
            resettable: reset_peak(),
            process,
        }
    }

    /// The peak of the phase that just ended (MiB), then a reset for the next one.
    pub fn end_phase(&mut self) -> f64 {
        let peak = peak_rss_mib().unwrap_or(0.0);
        self.process = self.process.max(peak);
        if self.resettable {
            self.resettable = reset_peak();
        }
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mib().unwrap() > 0.0);
            assert!(status_kib("VmRSS").unwrap() > 0);
        }
    }
}
