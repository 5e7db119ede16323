//! Reads of the department's connectors: lookups (which pool holds a connector), lists with
//! Connect's expansions, the managed status with the marks of down workers, and the caches
//! these need (locations, plugin metadata, task counts, the last listing of each pool).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::connect::{ConnectClient, ConnectError, ConnectorStatus, PluginInfo};
use crate::translate::{self};

use super::{Connectors, ConnectorsError, DELETED_WINDOW, PLUGIN_LIST_TTL, Sensitivity};

mod lists;
pub mod merge;
mod status;

impl Connectors {
    /// The pool holding connector `name`, from the cache or by asking every pool.
    pub async fn locate(&self, name: &str) -> Result<String, ConnectorsError> {
        Self::check_addressable(name)?;
        if self.department.pools.len() == 1 {
            return Ok(self.department.pools[0].name.clone());
        }
        if let Some(pool) = self.cached_location(name) {
            return Ok(pool);
        }
        self.find(name)
            .await?
            .ok_or_else(|| ConnectorsError::NotFound {
                name: name.to_string(),
            })
    }

    pub(in crate::connectors) fn cached_location(&self, name: &str) -> Option<String> {
        self.locations
            .read()
            .expect("locations lock")
            .get(name)
            .cloned()
    }

    pub(in crate::connectors) fn remember(&self, name: &str, pool: &str) {
        self.locations
            .write()
            .expect("locations lock")
            .insert(name.to_string(), pool.to_string());
    }

    pub(in crate::connectors) fn forget(&self, name: &str) {
        self.tasks_may_change(name);
        self.locations.write().expect("locations lock").remove(name);
        self.recent.lock().expect("recent lock").remove(name);
        self.last_seen.lock().expect("last seen lock").remove(name);
    }

    /// Refuses a name that cannot be one path segment on the way to Connect (see
    /// [`translate::unaddressable`]): such a connector cannot exist, and no call is made.
    pub fn check_addressable(name: &str) -> Result<(), ConnectorsError> {
        match translate::unaddressable(name, "connector name") {
            Some(problem) => Err(ConnectorsError::Invalid(vec![problem])),
            None => Ok(()),
        }
    }

    /// Whether `name` was deleted through the supervisor within [`DELETED_WINDOW`] (and not
    /// created again since).
    pub fn was_deleted(&self, name: &str) -> bool {
        let mut deleted = self.deleted.lock().expect("deleted lock");
        deleted.retain(|_, at| at.elapsed() < DELETED_WINDOW);
        deleted.contains_key(name)
    }

    /// The workers of `pool` whose tasks nothing runs right now, by Connect worker id: those
    /// not up (exited, restarting, held), and those restarted so lately that Connect may still
    /// show their previous process's tasks (see [`crate::worker::reassignment_window`]).
    pub fn down_workers(&self, pool: &str) -> translate::DownWorkers {
        let Some(spec) = self.department.pool(pool) else {
            return translate::DownWorkers::new();
        };
        let window = crate::worker::reassignment_window(&self.department, spec);
        let pools = self.supervisor.status();
        let workers = pools
            .iter()
            .filter(|p| p.name == pool)
            .flat_map(|p| &p.workers)
            .map(merge::WorkerView::from);
        merge::down_workers(workers, window)
    }

    /// Asks every pool (concurrently) whether it holds `name`.
    pub(in crate::connectors) async fn find(
        &self,
        name: &str,
    ) -> Result<Option<String>, ConnectorsError> {
        let pools = self.pools();
        let lookups = pools.iter().map(|pool| async move {
            let r = self
                .on_pool(pool, |c| async move { c.connector(name).await })
                .await;
            (pool.clone(), r)
        });
        let mut error = None;
        for (pool, result) in futures::future::join_all(lookups).await {
            match result {
                Ok(_) => {
                    self.remember(name, &pool);
                    return Ok(Some(pool));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => error = Some(e.into_error(&[])),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Runs `call` on the pool holding `name`. When a cached location answers 404 (the
    /// connector moved or was deleted behind the supervisor's back), the pools are asked again
    /// once.
    pub async fn on_connector<T, F, Fut>(
        &self,
        name: &str,
        secrets: &[String],
        call: F,
    ) -> Result<(String, T), ConnectorsError>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        Self::check_addressable(name)?;
        if self.was_deleted(name) {
            return Err(ConnectorsError::NotFound {
                name: name.to_string(),
            });
        }
        let cached = self.department.pools.len() > 1 && self.cached_location(name).is_some();
        let pool = self.locate(name).await?;
        match self.on_pool(&pool, &call).await {
            Ok(v) => Ok((pool, v)),
            Err(e) if e.is_not_found() && cached => {
                self.forget(name);
                match self.find(name).await? {
                    Some(p) if p != pool => {
                        let v = self.call(&p, secrets, &call).await?;
                        Ok((p, v))
                    }
                    _ => Err(ConnectorsError::NotFound {
                        name: name.to_string(),
                    }),
                }
            }
            Err(e) if e.is_not_found() => Err(ConnectorsError::NotFound {
                name: name.to_string(),
            }),
            Err(e) => Err(e.into_error(secrets)),
        }
    }

    /// The installed connector plugins (all pools share one runtime), cached.
    pub async fn plugins(&self) -> Result<Arc<Vec<PluginInfo>>, ConnectorsError> {
        if let Some((at, list)) = self.plugins.read().expect("plugins lock").as_ref()
            && at.elapsed() < PLUGIN_LIST_TTL
        {
            return Ok(Arc::clone(list));
        }
        let mut error = None;
        for pool in self.pools() {
            match self
                .call(&pool, &[], |c| async move { c.connector_plugins().await })
                .await
            {
                Ok(list) => {
                    let list = Arc::new(list);
                    *self.plugins.write().expect("plugins lock") =
                        Some((Instant::now(), Arc::clone(&list)));
                    return Ok(list);
                }
                Err(e) => error = Some(e),
            }
        }
        Err(error.unwrap_or(ConnectorsError::NoWorker {
            pool: self.department.default_pool.clone(),
        }))
    }

    /// The PASSWORD-typed keys of connector class `class` (as written in the config: alias or
    /// full name), cached per class. When Connect cannot tell (unknown class, no worker), the
    /// department's patterns alone apply and nothing is cached.
    pub async fn password_keys(&self, pool: &str, class: Option<&str>) -> Arc<BTreeSet<String>> {
        let Some(class) = class.filter(|c| !c.is_empty()) else {
            return Arc::default();
        };
        if let Some(keys) = self
            .password_keys
            .read()
            .expect("password keys lock")
            .get(class)
        {
            return Arc::clone(keys);
        }
        match self
            .on_pool(pool, |c| async move { c.plugin_config(class).await })
            .await
        {
            Ok(keys) => {
                let keys: Arc<BTreeSet<String>> = Arc::new(
                    keys.into_iter()
                        .filter(|k| k.key_type == "PASSWORD")
                        .map(|k| k.name)
                        .collect(),
                );
                self.password_keys
                    .write()
                    .expect("password keys lock")
                    .insert(class.to_string(), Arc::clone(&keys));
                keys
            }
            Err(e) => {
                tracing::debug!(
                    class,
                    code = e.code(),
                    "Plugin config keys unavailable; masking by patterns only."
                );
                Arc::default()
            }
        }
    }

    /// The sensitivity of a connector config running on `pool`.
    pub async fn sensitivity(&self, pool: &str, config: &BTreeMap<String, String>) -> Sensitivity {
        let keys = self
            .password_keys(pool, config.get("connector.class").map(String::as_str))
            .await;
        Sensitivity {
            department: Arc::clone(&self.department),
            password_keys: keys,
            resolved: self.resolved_secrets(config).await,
        }
    }

    /// The values behind `config`'s references to the supervisor's secret files (read fresh:
    /// the files are small and change with every update).
    pub(in crate::connectors) async fn resolved_secrets(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut files = BTreeSet::new();
        for value in config.values() {
            for (path, _) in crate::policy::secrets::file_references(value) {
                let path = std::path::Path::new(path);
                if self.secrets.holds(path) {
                    files.insert(path.to_path_buf());
                }
            }
        }
        let mut values = Vec::new();
        for path in files {
            match tokio::fs::read_to_string(&path).await {
                Ok(text) => values.extend(
                    crate::secret_store::parse_properties(&text)
                        .into_values()
                        .filter(|v| !v.is_empty()),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "A secret file could not be read to scrub messages."),
            }
        }
        values
    }

    /// `sink`/`source` of a connector, resolving Connect's `unknown` through the plugin list.
    pub async fn connector_type(&self, reported: Option<&str>, class: Option<&str>) -> String {
        if matches!(reported, Some("sink" | "source")) {
            return reported.unwrap_or_default().to_string();
        }
        let plugins = self.plugins().await.unwrap_or_default();
        translate::connector_type(reported, class, &plugins)
    }

    /// The connectors last seen on `pool`.
    pub fn last_known_names(&self, pool: &str) -> Vec<String> {
        let mut names: BTreeSet<String> = self
            .locations
            .read()
            .expect("locations lock")
            .iter()
            .filter(|(_, p)| p.as_str() == pool)
            .map(|(n, _)| n.clone())
            .collect();
        names.extend(
            self.last_seen
                .lock()
                .expect("last seen lock")
                .iter()
                .filter(|(_, (p, _))| p == pool)
                .map(|(n, _)| n.clone()),
        );
        names.into_iter().collect()
    }

    /// Keeps what a listing of `pool` showed (the whole pool: connectors it no longer lists
    /// are forgotten), for lists answered while the pool has no ready worker.
    pub fn remember_listing(
        &self,
        pool: &str,
        listing: &BTreeMap<String, crate::connect::Expanded>,
    ) {
        let mut last = self.last_seen.lock().expect("last seen lock");
        last.retain(|n, (p, _)| p != pool || listing.contains_key(n));
        for (name, e) in listing {
            let entry = last
                .entry(name.clone())
                .or_insert_with(|| (pool.to_string(), e.clone()));
            entry.0 = pool.to_string();
            if e.status.is_some() {
                entry.1.status = e.status.clone();
            }
            if e.info.is_some() {
                entry.1.info = e.info.clone();
            }
        }
    }

    /// The connectors last seen on `pool`, each with its status marked unknown (`reason`).
    pub(in crate::connectors) fn last_known(
        &self,
        pool: &str,
        reason: &str,
    ) -> Vec<(String, crate::connect::Expanded)> {
        let last = self.last_seen.lock().expect("last seen lock");
        let mut out: Vec<(String, crate::connect::Expanded)> = last
            .iter()
            .filter(|(_, (p, _))| p == pool)
            .map(|(name, (_, e))| {
                let status = e.status.clone().unwrap_or_else(|| {
                    never_seen(name, e.info.as_ref().and_then(|i| i.connector_type.clone()))
                });
                (
                    name.clone(),
                    crate::connect::Expanded {
                        status: Some(translate::unknown_status(&status, reason)),
                        info: e.info.clone(),
                    },
                )
            })
            .collect();
        drop(last);
        // Names known only from the location cache: listed with what is known, their name.
        for name in self.last_known_names(pool) {
            if !out.iter().any(|(n, _)| *n == name) {
                let status = never_seen(&name, None);
                out.push((
                    name,
                    crate::connect::Expanded {
                        status: Some(translate::unknown_status(&status, reason)),
                        info: None,
                    },
                ));
            }
        }
        out
    }
}

/// The status of a connector whose status was never seen: its name, state UNKNOWN, no tasks.
fn never_seen(name: &str, connector_type: Option<String>) -> ConnectorStatus {
    ConnectorStatus {
        name: name.to_string(),
        connector: crate::connect::InstanceState {
            state: "UNKNOWN".into(),
            worker_id: String::new(),
            trace: None,
            version: None,
        },
        tasks: Vec::new(),
        connector_type,
    }
}
