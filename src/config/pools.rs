//! The `[[pools]]` and `[budget]` tables: a pool's name, workers and limits, and the department's
//! budget over all pools.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use super::reader::TableReader;
use super::{
    DEFAULT_HEAP_PERCENT, DEFAULT_WORKER_PIDS, MIN_WORKER_MEMORY, RESERVED_WORKER_KEYS, jvm,
    supervision,
};
use crate::model::{Budget, ByteSize, Cpu, Pool, WorkerResources};

static POOL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$").expect("valid regex"));
const MAX_POOL_NAME: usize = 24;

pub(super) fn read_budget(t: &mut TableReader<'_>) -> Option<Budget> {
    if !t.has("max_workers") {
        t.problem(
            "max_workers",
            "is required; give the maximum number of workers over all pools",
        );
    }
    let max_workers = t.integer_in("max_workers", 1..=256);
    let cpu = read_cpu(t, "cpu");
    let memory = read_size(t, "memory");
    Some(Budget {
        max_workers: max_workers? as u32,
        cpu: cpu?,
        memory: memory?,
    })
}

fn read_cpu(t: &mut TableReader<'_>, key: &'static str) -> Option<Cpu> {
    let Some(text) = t.number_text(key) else {
        t.problem(
            key,
            "is required; give cores as a number (0.5, 2) or millicores (\"500m\")",
        );
        return None;
    };
    let cpu = Cpu::parse(&text);
    if cpu.is_none() {
        t.problem(
            key,
            format!("\"{text}\" is not a CPU amount; give cores as a positive number (0.5, 2) or millicores (\"500m\")"),
        );
    }
    cpu
}

fn read_size(t: &mut TableReader<'_>, key: &'static str) -> Option<ByteSize> {
    let Some(text) = t.number_text(key) else {
        t.problem(key, "is required; give a size like \"512MiB\" or \"2GiB\"");
        return None;
    };
    let size = ByteSize::parse(&text);
    if size.is_none() {
        t.problem(
            key,
            format!("\"{text}\" is not a size; use a number of bytes or a value like \"512MiB\" or \"2GiB\""),
        );
    }
    size
}

pub(super) fn read_pool(t: &mut TableReader<'_>) -> Option<Pool> {
    let name = t.required_string("name", "give the pool a name, e.g. name = \"shared\"");
    if let Some(name) = &name
        && (!POOL_NAME.is_match(name) || name.len() > MAX_POOL_NAME)
    {
        t.problem(
            "name",
            format!(
                "\"{name}\" is not a valid pool name; use lowercase letters, digits and single \
                 dashes, starting with a letter, at most {MAX_POOL_NAME} characters"
            ),
        );
    }
    let workers = t.integer_in("workers", 0..=64).unwrap_or(1) as u32;
    let cpu = read_cpu(t, "cpu");
    let memory = read_size(t, "memory");
    if let Some(memory) = memory
        && memory < MIN_WORKER_MEMORY
    {
        t.problem(
            "memory",
            format!("{memory} is below the minimum of {MIN_WORKER_MEMORY} for a worker"),
        );
    }
    let pids = t
        .integer_in("pids", 64..=1_000_000)
        .map(|p| p as u32)
        .unwrap_or(DEFAULT_WORKER_PIDS);
    let heap_percent = t
        .integer_in("heap_percent", 10..=95)
        .map(|p| p as u8)
        .unwrap_or(DEFAULT_HEAP_PERCENT);
    let heap = match t.number_text("heap") {
        None => None,
        Some(text) => {
            let heap = ByteSize::parse(&text);
            if heap.is_none() {
                t.problem(
                    "heap",
                    format!("\"{text}\" is not a size; use a value like \"384MiB\""),
                );
            }
            heap
        }
    };
    if let (Some(heap), Some(memory)) = (heap, memory)
        && heap >= memory
    {
        t.problem(
            "heap",
            format!(
                "a heap of {heap} does not fit in the worker's memory limit of {memory}; leave \
                 room for metaspace, threads and buffers (e.g. 75% of the limit, the default)"
            ),
        );
    }
    let jvm_options = t.string_list("jvm_options").unwrap_or_default();
    if let Some(memory) = memory {
        // The heap the supervisor passes; an -Xmx in jvm_options comes after it and wins.
        let derived_heap = heap
            .map(ByteSize::bytes)
            .unwrap_or_else(|| memory.bytes().saturating_mul(u64::from(heap_percent)) / 100);
        for message in jvm::fit_problems(&jvm_options, derived_heap, memory) {
            t.problem("jvm_options", message);
        }
    }
    let supervision = t
        .with_table("supervision", supervision::read_overrides)
        .unwrap_or_default();
    let mut worker_config = BTreeMap::new();
    for (key, value) in t.string_map("worker_config").unwrap_or_default() {
        if RESERVED_WORKER_KEYS.contains(&key.as_str()) {
            t.problem_at(
                format!("{}.\"{key}\"", t.path_of("worker_config")),
                "is set by the supervisor (pool identity and worker REST identity) and cannot be overridden; remove it",
            );
        } else {
            worker_config.insert(key, value);
        }
    }
    Some(Pool {
        name: name?,
        workers,
        worker: WorkerResources {
            cpu: cpu?,
            memory: memory?,
            pids,
            heap_percent,
            heap,
        },
        jvm_options,
        worker_config,
        supervision,
    })
}

pub(super) fn check_pools(root: &mut TableReader<'_>, pools: &[Pool]) {
    let mut seen = BTreeSet::new();
    for (i, pool) in pools.iter().enumerate() {
        if !seen.insert(pool.name.as_str()) {
            root.problem_at(
                format!("pools[{i}].name"),
                format!(
                    "pool \"{}\" is defined twice; pool names must be unique",
                    pool.name
                ),
            );
        }
    }
    if !pools.is_empty() && pools.iter().all(|p| p.workers == 0) {
        root.problem(
            "pools",
            "every pool has 0 workers; give at least one pool a worker",
        );
    }
}
