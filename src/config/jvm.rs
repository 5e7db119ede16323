//! The memory flags of a pool's `jvm_options`: parsed so a flag cannot take the JVM past the
//! worker's memory limit behind the heap check's back.
//!
//! The supervisor puts `-Xms`/`-Xmx` (from `heap` or `heap_percent`) *before* the pool's
//! `jvm_options`, and the JVM lets the last occurrence of a flag win, so an `-Xmx` in
//! `jvm_options` is the heap that applies. What is checked against the limit is the part of the
//! footprint the flags fix: the heap, plus metaspace when `-XX:MaxMetaspaceSize` caps it, plus
//! thread stacks when `-Xss` sets them (times [`THREAD_ESTIMATE`]). Without those flags their
//! share is the JVM's own business, as before (the heap alone must stay under the limit).

use crate::model::ByteSize;

/// Threads a Connect worker is assumed to run when `-Xss` sizes their stacks: an idle worker runs
/// about 60 (Kafka clients, herder, REST server, GC and compiler threads); a few connectors with
/// a handful of tasks each bring it to about 100.
pub const THREAD_ESTIMATE: u64 = 100;

/// The memory flags found in a list of JVM options (the last occurrence of each wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFlags {
    /// `-Xmx` / `-XX:MaxHeapSize`, in bytes.
    pub max_heap: Option<u64>,
    /// `-Xms` / `-XX:InitialHeapSize`, in bytes.
    pub initial_heap: Option<u64>,
    /// `-XX:MaxRAMPercentage` (or the older `-XX:MaxRAMFraction` turned into a percentage),
    /// as given.
    pub max_ram_percentage: Option<String>,
    /// `-XX:MaxMetaspaceSize`, in bytes.
    pub max_metaspace: Option<u64>,
    /// `-Xss` / `-XX:ThreadStackSize`, in bytes.
    pub thread_stack: Option<u64>,
}

/// A memory flag whose value the JVM would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFlag {
    /// The option as written.
    pub option: String,
}

/// Parses a JVM size (`512m`, `2G`, `1024k`, `4096`): digits and an optional `k`, `m`, `g` or
/// `t` (either case), binary multiples, like the JVM's own parser.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        "t" | "T" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Reads the memory flags of `options`; options that are not memory flags are ignored, memory
/// flags whose value does not parse are returned as [`BadFlag`]s.
pub fn memory_flags(options: &[String]) -> (MemoryFlags, Vec<BadFlag>) {
    let mut flags = MemoryFlags::default();
    let mut bad = Vec::new();
    for option in options {
        let o = option.trim();
        let mut size = |value: &str, slot: &mut Option<u64>, scale: u64| match parse_size(value)
            .and_then(|v| v.checked_mul(scale))
        {
            Some(v) => *slot = Some(v),
            None => bad.push(BadFlag {
                option: option.clone(),
            }),
        };
        if let Some(v) = o.strip_prefix("-Xmx") {
            size(v, &mut flags.max_heap, 1);
        } else if let Some(v) = o.strip_prefix("-XX:MaxHeapSize=") {
            size(v, &mut flags.max_heap, 1);
        } else if let Some(v) = o.strip_prefix("-Xms") {
            size(v, &mut flags.initial_heap, 1);
        } else if let Some(v) = o.strip_prefix("-XX:InitialHeapSize=") {
            size(v, &mut flags.initial_heap, 1);
        } else if let Some(v) = o.strip_prefix("-XX:MaxMetaspaceSize=") {
            size(v, &mut flags.max_metaspace, 1);
        } else if let Some(v) = o.strip_prefix("-Xss") {
            size(v, &mut flags.thread_stack, 1);
        } else if let Some(v) = o.strip_prefix("-XX:ThreadStackSize=") {
            // Given in KiB.
            size(v, &mut flags.thread_stack, 1 << 10);
        } else if let Some(v) = o
            .strip_prefix("-XX:MaxRAMPercentage=")
            .or_else(|| o.strip_prefix("-XX:MaxRAMFraction="))
        {
            if v.parse::<f64>().is_ok_and(|p| p.is_finite() && p >= 0.0) {
                flags.max_ram_percentage = Some(o.to_string());
            } else {
                bad.push(BadFlag {
                    option: option.clone(),
                });
            }
        }
    }
    (flags, bad)
}

/// Every reason the JVM of a pool cannot fit its memory limit, as messages with the numbers.
/// `derived_heap` is the heap the supervisor passes (from `heap` or `heap_percent`).
pub fn fit_problems(options: &[String], derived_heap: u64, memory: ByteSize) -> Vec<String> {
    let (flags, bad) = memory_flags(options);
    let mut problems: Vec<String> = bad
        .into_iter()
        .map(|b| {
            format!(
                "\"{}\" has a size the JVM cannot read; use digits and k, m or g, e.g. -Xmx384m",
                b.option
            )
        })
        .collect();
    let show = |bytes: u64| ByteSize::new(bytes).to_string();
    let heap = flags.max_heap.unwrap_or(derived_heap);
    let heap_from = match flags.max_heap {
        Some(_) => "-Xmx in jvm_options",
        None => "heap/heap_percent",
    };
    if let Some(flag) = &flags.max_ram_percentage {
        problems.push(format!(
            "\"{flag}\" has no effect: the supervisor passes -Xmx (here {}, from {heap_from}), \
             which the JVM prefers; size the heap with heap_percent or heap instead",
            show(heap)
        ));
    }
    if let Some(initial) = flags.initial_heap
        && initial > heap
    {
        problems.push(format!(
            "an initial heap (-Xms) of {} is above the maximum heap of {} (from {heap_from}); \
             the JVM refuses to start; lower -Xms",
            show(initial),
            show(heap)
        ));
    }
    let metaspace = flags.max_metaspace.unwrap_or(0);
    let stacks = flags
        .thread_stack
        .unwrap_or(0)
        .saturating_mul(THREAD_ESTIMATE);
    let total = heap.saturating_add(metaspace).saturating_add(stacks);
    if total >= memory.bytes() {
        let mut parts = vec![format!("a heap of {} ({heap_from})", show(heap))];
        if let Some(m) = flags.max_metaspace {
            parts.push(format!(
                "metaspace of up to {} (-XX:MaxMetaspaceSize)",
                show(m)
            ));
        }
        if let Some(s) = flags.thread_stack {
            parts.push(format!(
                "thread stacks of {} ({THREAD_ESTIMATE} threads x -Xss {})",
                show(stacks),
                show(s)
            ));
        }
        problems.push(format!(
            "the JVM does not fit in the worker's memory limit of {memory}: {} add up to {}; \
             lower these flags or raise the pool's memory (leave room for code cache, GC and \
             buffers too)",
            parts.join(" and "),
            show(total)
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_read_like_the_jvm_reads_them() {
        assert_eq!(parse_size("512m"), Some(512 * MIB));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("1024k"), Some(MIB));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        for bad in ["", "m", "12MiB", "1.5g", "-1m", "12 m"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_last_occurrence_of_a_flag_wins() {
        let (f, bad) = memory_flags(&opts(&[
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-XX:MaxHeapSize=256m",
            "-Xss512k",
            "-XX:ThreadStackSize=2048",
            "-XX:MaxMetaspaceSize=128m",
            "-Xms64m",
        ]));
        assert!(bad.is_empty());
        assert_eq!(f.max_heap, Some(256 * MIB));
        assert_eq!(f.initial_heap, Some(64 * MIB));
        assert_eq!(f.thread_stack, Some(2 * MIB), "ThreadStackSize is in KiB");
        assert_eq!(f.max_metaspace, Some(128 * MIB));
    }

    #[test]
    fn an_xmx_over_the_limit_is_refused_with_the_numbers() {
        let p = fit_problems(&opts(&["-Xmx512m"]), 192 * MIB, ByteSize::mib(256));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("512MiB") && p[0].contains("256MiB"),
            "{}",
            p[0]
        );
        assert!(p[0].contains("-Xmx"), "{}", p[0]);
    }

    #[test]
    fn metaspace_and_stacks_count_when_their_flags_fix_them() {
        let memory = ByteSize::mib(512);
        assert!(fit_problems(&opts(&["-Xmx384m"]), 384 * MIB, memory).is_empty());
        let p = fit_problems(
            &opts(&["-Xmx384m", "-XX:MaxMetaspaceSize=64m", "-Xss1m"]),
            384 * MIB,
            memory,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("548MiB"), "384 + 64 + 100: {}", p[0]);
        assert!(
            p[0].contains("MaxMetaspaceSize") && p[0].contains("-Xss"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn unreadable_sizes_ram_percentages_and_xms_over_xmx_are_refused() {
        let p = fit_problems(
            &opts(&["-Xmx12MiB", "-XX:MaxRAMPercentage=90", "-Xms300m"]),
            192 * MIB,
            ByteSize::mib(256),
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("-Xmx12MiB"));
        assert!(p[1].contains("no effect") && p[1].contains("heap_percent"));
        assert!(p[2].contains("300MiB") && p[2].contains("192MiB"));
    }

    #[test]
    fn options_without_memory_flags_change_nothing() {
        let p = fit_problems(
            &opts(&[
                "-XX:+UseG1GC",
                "-Dfoo=-Xmx9g",
                "-XX:+ExitOnOutOfMemoryError",
            ]),
            192 * MIB,
            ByteSize::mib(256),
        );
        assert!(p.is_empty(), "{p:?}");
    }

    proptest! {
        #[test]
        fn a_refusal_happens_exactly_when_the_fixed_parts_reach_the_limit(
            heap_mib in 16u64..4096,
            meta_mib in proptest::option::of(8u64..1024),
            stack_kib in proptest::option::of(128u64..4096),
            memory_mib in 32u64..8192,
        ) {
            let mut o = vec![format!("-Xmx{heap_mib}m")];
            if let Some(m) = meta_mib { o.push(format!("-XX:MaxMetaspaceSize={m}m")); }
            if let Some(s) = stack_kib { o.push(format!("-Xss{s}k")); }
            let total = heap_mib * MIB + meta_mib.unwrap_or(0) * MIB
                + stack_kib.unwrap_or(0) * 1024 * THREAD_ESTIMATE;
            let p = fit_problems(&o, 1, ByteSize::mib(memory_mib));
            prop_assert_eq!(!p.is_empty(), total >= memory_mib * MIB, "{:?}", p);
        }

        #[test]
        fn sizes_round_trip_through_the_jvm_syntax(n in 0u64..1_000_000, unit in 0usize..4) {
            let (suffix, factor) = [("", 1u64), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)][unit];
            prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Some(n * factor));
        }
    }
}
