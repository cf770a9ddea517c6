//! Whether this process may trace: root, or the capabilities the kernel
//! asks for (CAP_BPF and CAP_PERFMON since Linux 5.8, CAP_SYS_ADMIN before
//! and for some operations), read from `/proc/self/status`.

/// What every "not permitted" error tells the user.
pub const NEEDED: &str = "rtrace needs root, or the capabilities CAP_BPF and CAP_PERFMON \
     (and CAP_SYS_ADMIN where the kernel asks for it; tracepoints also need read access to tracefs)";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {NEEDED}; this process has {missing}")]
pub struct NotPermitted {
    /// What it lacks, as a phrase (`none of them`, `CAP_BPF but not CAP_PERFMON`).
    missing: String,
}

/// Ok when the effective capabilities let rtrace load and attach programs.
/// (Root in a user namespace passes here and is refused by the kernel; the
/// loader then says the same.)
pub fn check() -> Result<(), NotPermitted> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    check_caps(effective)
}

fn check_caps(effective: u64) -> Result<(), NotPermitted> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let missing = match (has(CAP_BPF), has(CAP_PERFMON)) {
        (false, false) => "none of them".to_string(),
        (true, false) => "CAP_BPF but not CAP_PERFMON".to_string(),
        (false, true) => "CAP_PERFMON but not CAP_BPF".to_string(),
        (true, true) => unreachable!("both capabilities pass"),
    };
    Err(NotPermitted { missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_or_bpf_and_perfmon() {
        assert!(check_caps(1 << CAP_SYS_ADMIN).is_ok());
        assert!(check_caps((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_ok());
        assert!(check_caps(u64::MAX).is_ok());
        let e = check_caps(1 << CAP_BPF).unwrap_err().to_string();
        assert!(
            e.contains("CAP_BPF but not CAP_PERFMON") && e.starts_with("permission denied: rtrace needs root"),
            "{}",
            e
        );
        assert!(check_caps(0).unwrap_err().to_string().ends_with("this process has none of them"));
    }
}
