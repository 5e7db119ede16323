//! The `[supervision]` table and each pool's `[pools.supervision]` overrides: cgroup mode,
//! restart backoff, crash-loop hold, start timeout, liveness checks, stop grace.

use std::time::Duration;

use super::reader::TableReader;
use crate::model::{CgroupMode, PolicyOverrides, Pool, Supervision};

/// Longest duration any supervision key accepts.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses `"500ms"`, `"20s"`, `"5m"`, `"1h"`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

pub(super) fn duration(
    t: &mut TableReader<'_>,
    key: &'static str,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let text = t.number_text(key)?;
    match parse_duration(&text) {
        Some(d) if d >= min && d <= max => Some(d),
        Some(_) => {
            t.problem(
                key,
                format!(
                    "\"{text}\" is out of range; use a duration from {} to {}",
                    show(min),
                    show(max)
                ),
            );
            None
        }
        None => {
            t.problem(
                key,
                format!("\"{text}\" is not a duration; use a value like \"500ms\", \"20s\", \"5m\" or \"1h\""),
            );
            None
        }
    }
}

fn show(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// Reads the policy keys shared by `[supervision]` and `[pools.supervision]`.
pub(super) fn read_overrides(t: &mut TableReader<'_>) -> PolicyOverrides {
    let ms = Duration::from_millis;
    PolicyOverrides {
        stop_grace: duration(t, "stop_grace", ms(100), Duration::from_secs(600)),
        backoff_min: duration(t, "backoff_min", ms(10), MAX_DURATION),
        backoff_max: duration(t, "backoff_max", ms(10), MAX_DURATION),
        stable_after: duration(t, "stable_after", ms(100), MAX_DURATION),
        max_failures: t.integer_in("max_failures", 1..=1000).map(|v| v as u32),
        failure_window: duration(t, "failure_window", Duration::from_secs(1), MAX_DURATION),
        start_timeout: duration(t, "start_timeout", Duration::from_secs(1), MAX_DURATION),
        health_interval: duration(t, "health_interval", ms(100), Duration::from_secs(3600)),
        health_failures: t.integer_in("health_failures", 1..=100).map(|v| v as u32),
    }
}

/// Reads the department's `[supervision]` table.
pub(super) fn read_supervision(t: &mut TableReader<'_>) -> Option<Supervision> {
    let defaults = Supervision::default();
    let cgroups = match t.string("cgroups").as_deref() {
        None | Some("auto") => Some(CgroupMode::Auto),
        Some("required") => Some(CgroupMode::Required),
        Some("off") => Some(CgroupMode::Off),
        Some(other) => {
            t.problem(
                "cgroups",
                format!("\"{other}\" is not a cgroup mode; use \"auto\", \"required\" or \"off\""),
            );
            None
        }
    };
    let sample_interval = duration(
        t,
        "sample_interval",
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
    .unwrap_or(defaults.sample_interval);
    let policy = read_overrides(t).apply(defaults.defaults);
    if policy.backoff_min > policy.backoff_max {
        t.problem(
            "backoff_min",
            format!(
                "{} is above backoff_max ({}); the first delay cannot exceed the cap",
                show(policy.backoff_min),
                show(policy.backoff_max)
            ),
        );
    }
    let boost_defaults = crate::model::StartupBoost::default();
    let enabled = t
        .boolean("startup_cpu_boost")
        .unwrap_or(boost_defaults.enabled);
    let max = t.number_text("startup_cpu_max").and_then(|text| {
        let cpu = crate::model::Cpu::parse(&text);
        if cpu.is_none() {
            t.problem(
                "startup_cpu_max",
                format!(
                    "\"{text}\" is not a CPU amount; give cores as a positive number (2, 1.5) or \
                     millicores (\"1500m\"): the most CPU a starting worker gets, its limit included"
                ),
            );
        }
        cpu
    });
    Some(Supervision {
        cgroups: cgroups?,
        sample_interval,
        defaults: policy,
        startup_boost: crate::model::StartupBoost { enabled, max },
    })
}

/// Checks each pool's resolved policy (department defaults plus its overrides).
pub(super) fn check_pools(root: &mut TableReader<'_>, supervision: &Supervision, pools: &[Pool]) {
    for (i, pool) in pools.iter().enumerate() {
        let policy = pool.supervision.apply(supervision.defaults);
        if policy.backoff_min > policy.backoff_max && pool.supervision != PolicyOverrides::default()
        {
            root.problem_at(
                format!("pools[{i}].supervision.backoff_min"),
                format!(
                    "{} is above backoff_max ({}) for pool \"{}\"; the first delay cannot exceed the cap",
                    show(policy.backoff_min),
                    show(policy.backoff_max),
                    pool.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        crate::config::testing::department()
            .pool(crate::config::testing::pool("shared").workers(2))
            .pool(
                crate::config::testing::pool("heavy")
                    .with("[pools.supervision]\nmax_failures = 2\nbackoff_max = \"5s\""),
            )
            .toml()
    }

    fn parse(extra: &str) -> Result<crate::model::Department, Vec<super::super::Problem>> {
        let base = base();
        let text = format!("{base}\n{extra}");
        crate::config::parse(&text, std::path::Path::new("/"), &|_| None).map_err(|e| match e {
            super::super::ParseError::Invalid(p) => p,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn the_startup_boost_is_on_by_default_and_can_be_capped_or_turned_off() {
        let d = parse("").unwrap();
        assert!(d.supervision.startup_boost.enabled);
        assert_eq!(d.supervision.startup_boost.max, None);
        let d = parse("[supervision]\nstartup_cpu_boost = false\nstartup_cpu_max = \"1500m\"\n")
            .unwrap();
        assert!(!d.supervision.startup_boost.enabled);
        assert_eq!(
            d.supervision.startup_boost.max,
            Some(crate::model::Cpu::from_millis(1500))
        );
        let p = parse("[supervision]\nstartup_cpu_boost = \"yes\"\nstartup_cpu_max = \"lots\"\n")
            .unwrap_err();
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "supervision.startup_cpu_boost",
                "supervision.startup_cpu_max"
            ],
            "{p:?}"
        );
    }

    #[test]
    fn defaults_apply_and_pools_override_part_of_the_policy() {
        let d = parse(
            "[supervision]\ncgroups = \"required\"\nbackoff_min = \"2s\"\nhealth_failures = 4\n",
        )
        .unwrap();
        assert_eq!(d.supervision.cgroups, CgroupMode::Required);
        let shared = d.supervision(&d.pools[0]);
        let heavy = d.supervision(&d.pools[1]);
        assert_eq!(shared.backoff_min, Duration::from_secs(2));
        assert_eq!(shared.max_failures, 5, "built-in default");
        assert_eq!(shared.health_failures, 4);
        assert_eq!(heavy.max_failures, 2, "pool override");
        assert_eq!(heavy.backoff_max, Duration::from_secs(5));
        assert_eq!(
            heavy.backoff_min,
            Duration::from_secs(2),
            "department default kept"
        );
        let plain = parse("").unwrap();
        assert_eq!(plain.supervision.cgroups, CgroupMode::Auto);
        assert_eq!(
            plain.supervision(&plain.pools[0]).stop_grace,
            Duration::from_secs(20)
        );
    }

    #[test]
    fn bad_supervision_values_are_all_reported_with_their_paths() {
        let problems = parse(
            "[supervision]\ncgroups = \"maybe\"\nstop_grace = \"forever\"\nmax_failures = 0\nhealth_interval = \"2h\"\nbackoff_min = \"10m\"\ncolour = 1\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "supervision.cgroups",
            "supervision.stop_grace",
            "supervision.max_failures",
            "supervision.health_interval",
            "supervision.backoff_min",
            "supervision.colour",
        ] {
            assert!(
                paths.contains(&expected),
                "missing {expected} in {problems:?}"
            );
        }
        let grace = problems
            .iter()
            .find(|p| p.path == "supervision.stop_grace")
            .unwrap();
        assert!(
            grace.message.contains("\"20s\""),
            "says how to fix it: {}",
            grace.message
        );
        // The pool's cap (5s) is below the department's first delay.
        let problems = parse("[supervision]\nbackoff_min = \"6s\"\n").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "pools[1].supervision.backoff_min");
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5 weeks"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
