//! Where the department API finds each pool's workers in the kubernetes topology.
//!
//! Production: `--pool-service <pool>=<service>:<port>`, the pool's headless Service; the API
//! reaches the StatefulSet's pods by their stable DNS names (`<service>-<k>.<service>...`), one
//! per worker of the pool in the department file. Tests: `--pool-endpoints <pool>=<url>,<url>`,
//! a static list. Either way every pool of the department must be given, and nothing else.

use std::collections::BTreeMap;

use super::PodError;
use crate::model::Department;
use crate::supervisor::{RemotePools, RemoteWorker, statefulset_urls};

/// How each pool's workers are found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Pool → headless Service (`host:port`).
    pub services: BTreeMap<String, String>,
    /// Pool → workers (REST URL, metrics port).
    pub endpoints: BTreeMap<String, Vec<RemoteWorker>>,
    /// Port of every worker pod entrypoint's `/metrics` (`--worker-metrics-port`), for the
    /// workers found through a Service.
    pub metrics_port: Option<u16>,
}

/// Splits `<pool>=<value>`.
fn assignment<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), PodError> {
    text.split_once('=')
        .filter(|(pool, value)| !pool.is_empty() && !value.is_empty())
        .ok_or_else(|| {
            PodError::Discovery(format!(
                "{flag} \"{text}\" is not <pool>=<value>, e.g. {flag} shared=dept1-pool-shared.dept1.svc:8083"
            ))
        })
}

impl Discovery {
    /// From the values of `--pool-service`, `--pool-endpoints` (each `<url>` may end with
    /// `+<metrics port>`) and `--worker-metrics-port`.
    pub fn from_flags(
        services: &[String],
        endpoints: &[String],
        metrics_port: Option<u16>,
    ) -> Result<Self, PodError> {
        let mut d = Self {
            metrics_port,
            ..Self::default()
        };
        for text in services {
            let (pool, service) = assignment("--pool-service", text)?;
            d.services.insert(pool.to_string(), service.to_string());
        }
        for text in endpoints {
            let (pool, list) = assignment("--pool-endpoints", text)?;
            let mut workers = Vec::new();
            for u in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                let (u, metrics_port) = match u.rsplit_once('+') {
                    Some((u, port)) => (
                        u,
                        Some(port.parse::<u16>().map_err(|_| {
                            PodError::Discovery(format!(
                                "--pool-endpoints {pool}: \"{port}\" after '+' is not a metrics port"
                            ))
                        })?),
                    ),
                    None => (u, metrics_port),
                };
                let u = u.trim_end_matches('/');
                let rest_url = if u.starts_with("http://") || u.starts_with("https://") {
                    u.to_string()
                } else {
                    format!("http://{u}")
                };
                workers.push(RemoteWorker {
                    rest_url,
                    metrics_port,
                });
            }
            d.endpoints.insert(pool.to_string(), workers);
        }
        Ok(d)
    }

    /// The workers of every pool of `department`. Every pool needs a service or endpoints;
    /// unknown pools are refused.
    pub fn resolve(&self, department: &Department) -> Result<RemotePools, PodError> {
        let known = || {
            department
                .pools
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (flag, pool) in self
            .services
            .keys()
            .map(|p| ("--pool-service", p))
            .chain(self.endpoints.keys().map(|p| ("--pool-endpoints", p)))
        {
            if department.pool(pool).is_none() {
                return Err(PodError::UnknownPool {
                    flag,
                    pool: pool.clone(),
                    known: known(),
                });
            }
        }
        let mut out = RemotePools::new();
        for pool in &department.pools {
            let urls = match (
                self.endpoints.get(&pool.name),
                self.services.get(&pool.name),
            ) {
                (Some(urls), _) => urls.clone(),
                (None, Some(service)) => statefulset_urls(service, pool.workers)
                    .map_err(|e| PodError::Discovery(format!("--pool-service {}: {e}", pool.name)))?
                    .into_iter()
                    .map(|rest_url| RemoteWorker {
                        rest_url,
                        metrics_port: self.metrics_port,
                    })
                    .collect(),
                (None, None) => {
                    return Err(PodError::Discovery(format!(
                        "pool \"{}\" has no workers to reach in the kubernetes topology: pass \
                         --pool-service {}=<its headless Service>:<port> (the chart does)",
                        pool.name, pool.name
                    )));
                }
            };
            out.insert(pool.name.clone(), urls);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn department() -> Department {
        crate::config::testing::department()
            .budget(4, "4", "4GiB")
            .pool(crate::config::testing::pool("shared").workers(2))
            .pool(crate::config::testing::pool("etl").workers(1))
            .build()
    }

    #[test]
    fn services_give_one_pod_per_worker_and_endpoints_are_taken_as_listed() {
        let d = Discovery::from_flags(
            &["shared=dept1-pool-shared.ns.svc:8083".into()],
            &["etl=127.0.0.1:18090+19090, http://127.0.0.1:18091/".into()],
            Some(8090),
        )
        .unwrap();
        let pools = d.resolve(&department()).unwrap();
        let w = |url: &str, metrics: u16| RemoteWorker {
            rest_url: url.into(),
            metrics_port: Some(metrics),
        };
        assert_eq!(
            pools["shared"],
            vec![
                w(
                    "http://dept1-pool-shared-0.dept1-pool-shared.ns.svc:8083",
                    8090
                ),
                w(
                    "http://dept1-pool-shared-1.dept1-pool-shared.ns.svc:8083",
                    8090
                ),
            ]
        );
        assert_eq!(
            pools["etl"],
            vec![
                w("http://127.0.0.1:18090", 19090),
                w("http://127.0.0.1:18091", 8090)
            ]
        );
        let err = Discovery::from_flags(&[], &["etl=127.0.0.1:1+x".into()], None).unwrap_err();
        assert!(err.to_string().contains("metrics port"), "{err}");
    }

    #[test]
    fn every_pool_needs_a_way_and_unknown_pools_are_refused() {
        let d = Discovery::from_flags(&["shared=s:8083".into()], &[], None).unwrap();
        let err = d.resolve(&department()).unwrap_err().to_string();
        assert!(
            err.contains("pool \"etl\"") && err.contains("--pool-service etl="),
            "{err}"
        );
        let d = Discovery::from_flags(&["nosuch=s:1".into()], &[], None).unwrap();
        let err = d.resolve(&department()).unwrap_err().to_string();
        assert!(
            err.contains("\"nosuch\"") && err.contains("shared, etl"),
            "{err}"
        );
        let err = Discovery::from_flags(&["shared".into()], &[], None).unwrap_err();
        assert!(err.to_string().contains("<pool>=<value>"), "{err}");
        let d = Discovery::from_flags(&["shared=s".into(), "etl=e:1".into()], &[], None).unwrap();
        assert!(
            d.resolve(&department())
                .unwrap_err()
                .to_string()
                .contains("port")
        );
    }
}
