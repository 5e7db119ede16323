//! Test fixtures shared by the unit tests of every module (test builds only): one builder of
//! department files instead of a TOML text copied into every test module. It lives in `config`
//! because it writes config files, so it adds no module to the graph.
//!
//! [`department()`] starts from the smallest valid department (`dept1`, one pool `shared` of one
//! CPU and 1GiB) and each test adds what it is about. The builder writes TOML text, so the tests
//! still go through [`crate::config::parse`] like a real file does.

use std::fmt::Write as _;
use std::path::Path;

use super::{ParseError, Problem};
use crate::model::Department;

/// A department file being put together for a test.
#[derive(Debug, Clone)]
pub(crate) struct DepartmentFile {
    id: String,
    environment_id: String,
    kafka_cluster_id: String,
    department_keys: Vec<(String, String)>,
    bootstrap_servers: String,
    kafka_client: Vec<(String, String)>,
    tables: Vec<(String, Vec<(String, String)>)>,
    pools: Vec<PoolFile>,
    tail: String,
}

/// One `[[pools]]` entry of a [`DepartmentFile`].
#[derive(Debug, Clone)]
pub(crate) struct PoolFile {
    name: String,
    workers: Option<u32>,
    cpu: String,
    memory: String,
    keys: Vec<(String, String)>,
    worker_config: Vec<(String, String)>,
    tail: String,
}

/// The smallest valid department: `dept1` (`env-dept1`, `lkc-dept1`) on Kafka at
/// `127.0.0.1:9092`, with the pool `shared` (one CPU, 1GiB) unless the test adds pools.
pub(crate) fn department() -> DepartmentFile {
    DepartmentFile {
        id: "dept1".into(),
        environment_id: "env-dept1".into(),
        kafka_cluster_id: "lkc-dept1".into(),
        department_keys: Vec::new(),
        bootstrap_servers: "127.0.0.1:9092".into(),
        kafka_client: Vec::new(),
        tables: Vec::new(),
        pools: Vec::new(),
        tail: String::new(),
    }
}

/// A pool named `name` with one CPU and 1GiB (and the default worker count).
pub(crate) fn pool(name: &str) -> PoolFile {
    PoolFile {
        name: name.into(),
        workers: None,
        cpu: "1".into(),
        memory: "1GiB".into(),
        keys: Vec::new(),
        worker_config: Vec::new(),
        tail: String::new(),
    }
}

/// `text` as a TOML basic string.
pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

impl DepartmentFile {
    /// The department id.
    pub(crate) fn id(mut self, id: &str) -> Self {
        self.id = id.into();
        self
    }

    /// The managed-API identity (`environment_id`, `kafka_cluster_id`).
    pub(crate) fn managed_ids(mut self, environment_id: &str, kafka_cluster_id: &str) -> Self {
        self.environment_id = environment_id.into();
        self.kafka_cluster_id = kafka_cluster_id.into();
        self
    }

    /// Another key of `[department]`; `value` is TOML (`"\"etl\""`, `true`).
    pub(crate) fn department_key(mut self, key: &str, value: &str) -> Self {
        self.department_keys.push((key.into(), value.into()));
        self
    }

    /// `kafka.bootstrap_servers`.
    pub(crate) fn bootstrap_servers(mut self, servers: &str) -> Self {
        self.bootstrap_servers = servers.into();
        self
    }

    /// A Kafka client setting (`[kafka.client]`), written as a TOML string.
    pub(crate) fn kafka_client(mut self, key: &str, value: &str) -> Self {
        self.kafka_client.push((key.into(), value.into()));
        self
    }

    /// A key of the top-level table `table` (`supervisor`, `runtime`, `budget`...), in the order
    /// given; `value` is TOML.
    pub(crate) fn set(mut self, table: &str, key: &str, value: &str) -> Self {
        match self.tables.iter_mut().find(|(t, _)| t == table) {
            Some((_, keys)) => keys.push((key.into(), value.into())),
            None => self
                .tables
                .push((table.into(), vec![(key.into(), value.into())])),
        }
        self
    }

    /// `[budget]` with these figures (`cpu` is TOML: `4`, `"1500m"`).
    pub(crate) fn budget(self, max_workers: u32, cpu: &str, memory: &str) -> Self {
        self.set("budget", "max_workers", &max_workers.to_string())
            .set("budget", "cpu", cpu)
            .set("budget", "memory", &quoted(memory))
    }

    /// Adds a pool (the first one given replaces the default pool `shared`).
    pub(crate) fn pool(mut self, pool: PoolFile) -> Self {
        self.pools.push(pool);
        self
    }

    /// TOML appended at the end of the file, as it is (`[policy]` tables and the like).
    pub(crate) fn with(mut self, toml: &str) -> Self {
        self.tail.push('\n');
        self.tail.push_str(toml);
        self
    }

    /// The file's text.
    pub(crate) fn toml(&self) -> String {
        let mut out = String::from("[department]\n");
        let line = |out: &mut String, k: &str, v: &str| {
            let _ = writeln!(out, "{k} = {v}");
        };
        line(&mut out, "id", &quoted(&self.id));
        line(&mut out, "environment_id", &quoted(&self.environment_id));
        line(
            &mut out,
            "kafka_cluster_id",
            &quoted(&self.kafka_cluster_id),
        );
        for (k, v) in &self.department_keys {
            line(&mut out, k, v);
        }
        out.push_str("\n[kafka]\n");
        line(
            &mut out,
            "bootstrap_servers",
            &quoted(&self.bootstrap_servers),
        );
        if !self.kafka_client.is_empty() {
            out.push_str("[kafka.client]\n");
            for (k, v) in &self.kafka_client {
                line(&mut out, &quoted(k), &quoted(v));
            }
        }
        for (table, keys) in &self.tables {
            let _ = writeln!(out, "\n[{table}]");
            for (k, v) in keys {
                line(&mut out, k, v);
            }
        }
        let default_pool = [pool("shared")];
        let pools = if self.pools.is_empty() {
            &default_pool[..]
        } else {
            &self.pools[..]
        };
        for p in pools {
            out.push_str("\n[[pools]]\n");
            line(&mut out, "name", &quoted(&p.name));
            if let Some(w) = p.workers {
                line(&mut out, "workers", &w.to_string());
            }
            line(&mut out, "cpu", &p.cpu);
            line(&mut out, "memory", &quoted(&p.memory));
            for (k, v) in &p.keys {
                line(&mut out, k, v);
            }
            if !p.worker_config.is_empty() {
                out.push_str("[pools.worker_config]\n");
                for (k, v) in &p.worker_config {
                    line(&mut out, &quoted(k), v);
                }
            }
            out.push_str(&p.tail);
        }
        out.push_str(&self.tail);
        out.push('\n');
        out
    }

    /// The file parsed against `base`, with `env` for `${env:...}` references.
    pub(crate) fn parse(
        &self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Department, ParseError> {
        super::parse(&self.toml(), base, env)
    }

    /// The department (relative paths against `/`, no environment variables); panics with the
    /// problems when the file is not valid.
    pub(crate) fn build(&self) -> Department {
        self.parse(Path::new("/"), &|_| None)
            .unwrap_or_else(|e| panic!("the test department is not valid: {e:?}\n{}", self.toml()))
    }

    /// The problems of the file (parsed like [`Self::build`]); panics when it is valid.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        match self.parse(Path::new("/"), &|_| None) {
            Err(ParseError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }
}

impl PoolFile {
    /// Its worker count.
    pub(crate) fn workers(mut self, workers: u32) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Its CPU, as TOML (`0.5`, `"1500m"`).
    pub(crate) fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = cpu.into();
        self
    }

    /// Its memory (`"768MiB"`).
    pub(crate) fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.into();
        self
    }

    /// Another key of the pool; `value` is TOML (`["-XX:+UseG1GC"]`, `"700MiB"`).
    pub(crate) fn key(mut self, key: &str, value: &str) -> Self {
        self.keys.push((key.into(), value.into()));
        self
    }

    /// A worker property (`[pools.worker_config]`); `value` is TOML (`5000`, `"file,vault"`).
    pub(crate) fn worker_config(mut self, key: &str, value: &str) -> Self {
        self.worker_config.push((key.into(), value.into()));
        self
    }

    /// TOML appended after the pool's keys (its `[pools.supervision]` table and the like).
    pub(crate) fn with(mut self, toml: &str) -> Self {
        self.tail.push_str(toml);
        if !self.tail.ends_with('\n') {
            self.tail.push('\n');
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_department_is_valid_and_each_addition_lands_where_it_belongs() {
        let d = department().build();
        assert_eq!((d.id.as_str(), d.pools.len()), ("dept1", 1));
        assert_eq!(d.pools[0].name, "shared");
        let d = department()
            .id("d2")
            .managed_ids("env-2", "lkc-2")
            .department_key("default_pool", "\"etl\"")
            .kafka_client("security.protocol", "SASL_SSL")
            .set("supervisor", "state_dir", "\"/var/lib/cs\"")
            .budget(4, "4", "4GiB")
            .pool(pool("shared").workers(2).cpu("0.5"))
            .pool(
                pool("etl")
                    .memory("768MiB")
                    .key("heap", "\"500MiB\"")
                    .worker_config("offset.flush.interval.ms", "5000"),
            )
            .with("[policy.quotas]\nmax_connectors = 2")
            .build();
        assert_eq!(d.id, "d2");
        assert_eq!(d.environment_id, "env-2");
        assert_eq!(d.default_pool, "etl");
        assert_eq!(d.kafka.client["security.protocol"], "SASL_SSL");
        assert_eq!(d.supervisor.state_dir, Path::new("/var/lib/cs"));
        assert_eq!(d.budget.max_workers, 4);
        assert_eq!(d.pools[0].workers, 2);
        assert_eq!(d.pools[1].worker_config["offset.flush.interval.ms"], "5000");
        assert_eq!(d.policy.quotas.max_connectors, 2);
    }

    #[test]
    fn a_broken_file_reports_its_problems() {
        let p = department().pool(pool("shared").cpu("0")).problems();
        assert_eq!(p[0].path, "pools[0].cpu", "{p:?}");
    }
}
