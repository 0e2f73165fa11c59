//! What `/proc` says about a server process: resident memory and CPU time.

/// `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`, fixed at 100
/// by the Linux ABI whatever the kernel's own tick rate.
const TICKS_PER_SECOND: u64 = 100;

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// The memory of `pid` (None once it is gone).
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// User + system CPU time `pid` (all its threads) has used, in µs; `None`
/// for this process.
pub fn cpu_us(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

fn parse_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields are counted after its closing parenthesis, from field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * (1_000_000 / TICKS_PER_SECOND))
}

/// The one-minute load average of the machine.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The scheduler autogroup (one per session) of `pid`, or of this process.
pub fn autogroup(pid: Option<u32>) -> Option<String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/autogroup"),
        None => "/proc/self/autogroup".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = memory(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
        assert!(cpu_us(None).is_some());
        assert!(cpu_us(Some(std::process::id())).is_some());
        assert_eq!(memory(u32::MAX), None);
        assert!(load_average().is_some_and(|l| l >= 0.0));
        assert_eq!(autogroup(None), autogroup(Some(std::process::id())));
    }

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 99 0";
        assert_eq!(parse_stat(stat), Some(281 * 10_000));
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tfloor\nVmHWM:\t   9000 kB\nVmRSS:\t   8000 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 8000,
                hwm_kib: 9000
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }
}
