//! The limits every command checks before it allocates or loops, in one place, so no
//! file, flag or formula can ask for more memory, time or stack than the machine has.
//! The README's "Limits" section lists them with the reasons.

/// Most seeds a claim, a sweep or `compare` may ask for.
pub const MAX_SEEDS: usize = 10_000;
/// Most values along one axis of a sweep grid (stepsizes, α, means, algorithms).
pub const MAX_AXIS_VALUES: usize = 100_000;
/// Most cells of one sweep grid.
pub const MAX_GRID_CELLS: usize = 10_000_000;
/// Most sample points of a symbolic claim.
pub const MAX_SYMBOLIC_POINTS: usize = 1_000_000;
/// Most worker threads (`sweep --threads`).
pub const MAX_THREADS: usize = 1024;
/// Most training steps of one run (`--iters`, a schedule, one threshold trial).
pub const MAX_STEPS: usize = 1_000_000_000;
/// Deepest nesting of parentheses, calls, unary minus and powers in one expression.
pub const MAX_NESTING: usize = 64;
/// Largest expression tree: parsed text, a formula after its definitions are
/// substituted, and each symbolic derivative.
pub const MAX_NODES: usize = 20_000;
/// Longest expression text in bytes.
pub const MAX_EXPR_BYTES: usize = 20_000;
/// Most definitions in one claim file.
pub const MAX_DEFINITIONS: usize = 1_000;

/// Bytes a command may allocate for its arrays: `DLNCHECK_MAX_MEMORY` (bytes) if set,
/// else 80% of the memory the kernel reports available (`MemAvailable`), else 8 GiB.
pub fn memory_budget() -> u64 {
    if let Some(b) = std::env::var("DLNCHECK_MAX_MEMORY").ok().and_then(|s| s.trim().parse().ok()) {
        return b;
    }
    available_memory().map_or(8 << 30, |b| b / 5 * 4)
}

fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses an allocation of `count` items of `item_bytes` each (checked arithmetic: a
/// product that overflows is refused too); `what` names it in the message.
pub fn check_alloc(what: &str, count: u128, item_bytes: u128) -> Result<(), String> {
    let bytes = count.checked_mul(item_bytes);
    let budget = memory_budget();
    match bytes {
        Some(b) if b <= u128::from(budget) => Ok(()),
        _ => Err(format!(
            "{what} would need {} of memory; the limit here is {} (set DLNCHECK_MAX_MEMORY to change it)",
            bytes.map_or("more than 2^128 bytes".to_owned(), human_bytes),
            human_bytes(u128::from(budget))
        )),
    }
}

/// Refuses a count above its limit, naming what is counted.
pub fn check_count(what: &str, count: usize, max: usize) -> Result<(), String> {
    if count <= max { Ok(()) } else { Err(format!("{what} is {count}; at most {max} are accepted")) }
}

/// `12.3 GB`-style sizes.
pub fn human_bytes(b: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut x = b as f64;
    let mut unit = 0;
    while x >= 1000.0 && unit + 1 < UNITS.len() {
        x /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{b} bytes") } else { format!("{x:.1} {}", UNITS[unit]) }
}

/// A message cut to at most `max` characters (with `…`), so an error never echoes a
/// 100 kB header or formula.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… ({} characters in all)", &text[..cut], text.chars().count()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_and_huge_requests_are_refused() {
        assert!(check_alloc("X", u128::from(u64::MAX), u128::from(u64::MAX)).is_err());
        let e = check_alloc("X", 100_000 * 100_000, 8).unwrap_err();
        assert!(e.contains("80.0 GB"), "{e}");
        assert!(check_alloc("X", 1000, 8).is_ok());
        assert_eq!(clip("abcdef", 3), "abc… (6 characters in all)");
        assert_eq!(clip("abc", 3), "abc");
    }
}
