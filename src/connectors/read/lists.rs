//! Lists of the department's connectors over all pools, with Connect's expansions.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::translate::{self, Expand};

use super::merge;
use crate::connectors::{Connectors, ConnectorsError, RECENT_WINDOW};

impl Connectors {
    /// Every connector name over all pools, sorted.
    pub async fn names(&self) -> Result<Vec<String>, ConnectorsError> {
        let per_pool = futures::future::join_all(self.pools().into_iter().map(|pool| async move {
            let r = self
                .call(&pool, &[], |c| async move { c.connectors().await })
                .await;
            (pool, r)
        }))
        .await;
        let mut names = Vec::new();
        for (pool, result) in per_pool {
            match result {
                Ok(found) => {
                    for name in found {
                        self.remember(&name, &pool);
                        names.push(name);
                    }
                }
                // A pool without a ready worker does not take the list down: its connectors
                // as last seen are listed (their status says they are unknown).
                Err(e) if Self::unavailable(&e) => names.extend(self.last_known_names(&pool)),
                Err(e) => return Err(e),
            }
        }
        names.retain(|n| !self.was_deleted(n));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether `e` means the pool cannot answer now (rather than refusing the request).
    pub(in crate::connectors) fn unavailable(e: &ConnectorsError) -> bool {
        matches!(
            e,
            ConnectorsError::NoWorker { .. } | ConnectorsError::Unreachable { .. }
        )
    }

    /// Every connector with Connect's status and info, over all pools, with the pool of each:
    /// one call per pool (Connect's `?expand=status&expand=info`). Connectors created lately
    /// whose status Connect does not have yet are added with their info only.
    pub async fn expanded(
        &self,
        status: bool,
        info: bool,
    ) -> Result<BTreeMap<String, (String, crate::connect::Expanded)>, ConnectorsError> {
        let (mut out, _) = self.expanded_raw(status, info).await?;
        let down: BTreeMap<String, translate::DownWorkers> = self
            .pools()
            .into_iter()
            .map(|p| {
                let d = self.down_workers(&p);
                (p, d)
            })
            .collect();
        for (pool, e) in out.values_mut() {
            if let (Some(s), Some(d)) = (&mut e.status, down.get(pool)) {
                translate::mark_down_workers(s, d);
            }
        }
        Ok(out)
    }

    /// [`Self::expanded`] without the marks of down workers, and the pools that could not
    /// answer (with why): their connectors are listed as last seen, status marked unknown.
    #[allow(clippy::type_complexity)]
    pub(in crate::connectors) async fn expanded_raw(
        &self,
        status: bool,
        info: bool,
    ) -> Result<
        (
            BTreeMap<String, (String, crate::connect::Expanded)>,
            BTreeMap<String, String>,
        ),
        ConnectorsError,
    > {
        let per_pool = futures::future::join_all(self.pools().into_iter().map(|pool| async move {
            let r = self
                .call(&pool, &[], |c| async move {
                    c.connectors_expanded(status, info).await
                })
                .await;
            (pool, r)
        }))
        .await;
        let mut out = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        for (pool, result) in per_pool {
            match result {
                Ok(listing) => {
                    if status && info {
                        self.remember_listing(&pool, &listing);
                    }
                    for (name, e) in listing {
                        self.remember(&name, &pool);
                        out.insert(name, (pool.clone(), e));
                    }
                }
                Err(e) if Self::unavailable(&e) => {
                    let reason = format!(
                        "unknown: pool {pool} has no ready Connect worker (shown as last seen)"
                    );
                    for (name, e) in self.last_known(&pool, &reason) {
                        out.insert(name, (pool.clone(), e));
                    }
                    unavailable.insert(pool.clone(), reason);
                }
                Err(e) => return Err(e),
            }
        }
        out.retain(|n, _| !self.was_deleted(n));
        let recent: Vec<String> = {
            let mut recent = self.recent.lock().expect("recent lock");
            recent.retain(|_, at| at.elapsed() < RECENT_WINDOW);
            recent
                .keys()
                .filter(|n| !out.contains_key(*n))
                .cloned()
                .collect()
        };
        for name in recent {
            match self
                .on_connector(&name, &[], |c| {
                    let name = name.clone();
                    async move { c.connector(&name).await }
                })
                .await
            {
                Ok((pool, info_found)) => {
                    out.insert(
                        name,
                        (
                            pool,
                            crate::connect::Expanded {
                                status: None,
                                info: Some(info_found),
                            },
                        ),
                    );
                }
                Err(ConnectorsError::NotFound { .. }) => self.forget(&name),
                Err(e) if Self::unavailable(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((out, unavailable))
    }

    /// The managed expansion map (`?expand=...`) over all pools.
    pub async fn managed_expansions(&self, expand: Expand) -> Result<Value, ConnectorsError> {
        let mut out = serde_json::Map::new();
        if !expand.info && !expand.status {
            for name in self.names().await? {
                let mut entry = serde_json::Map::new();
                if expand.id {
                    entry.insert("id".into(), self.id_json(&name));
                }
                // As the managed service's recorded answers carry it.
                entry.insert("extensions".into(), json!({}));
                out.insert(name, Value::Object(entry));
            }
            return Ok(Value::Object(out));
        }
        // Info is always fetched with status: traces are scrubbed with the config's secrets.
        let workers = self.worker_names();
        let (listing, unavailable) = self.expanded_raw(expand.status, true).await?;
        let down_by_pool: BTreeMap<String, translate::DownWorkers> = self
            .pools()
            .into_iter()
            .filter(|p| !unavailable.contains_key(p))
            .map(|p| {
                let d = self.down_workers(&p);
                (p, d)
            })
            .collect();
        for (name, (pool, mut e)) in listing {
            let config = e
                .info
                .as_ref()
                .map(|i| i.config.clone())
                .unwrap_or_default();
            let sensitivity = self.sensitivity(&pool, &config).await;
            let masker = sensitivity.masker();
            let class = config.get("connector.class").map(String::as_str);
            let reported = e
                .status
                .as_ref()
                .and_then(|s| s.connector_type.as_deref())
                .or(e.info.as_ref().and_then(|i| i.connector_type.as_deref()));
            let connector_type = self.connector_type(reported, class).await;
            let mut entry = serde_json::Map::new();
            if expand.id {
                entry.insert("id".into(), self.id_json(&name));
            }
            if expand.info
                && let Some(info) = &e.info
            {
                entry.insert(
                    "info".into(),
                    serde_json::to_value(self.managed_connector(info, &masker, &connector_type))
                        .expect("serialisable"),
                );
            }
            if expand.status {
                let none = translate::DownWorkers::new();
                let down = down_by_pool.get(&pool).unwrap_or(&none);
                let marked = e
                    .status
                    .as_mut()
                    .and_then(|s| translate::mark_down_workers(s, down));
                let view = match unavailable.get(&pool) {
                    Some(reason) => merge::PoolView::Unavailable(reason),
                    None => merge::PoolView::Answered {
                        marked: marked.as_deref(),
                    },
                };
                let mut status = merge::merge_status(
                    &name,
                    e.status.as_ref(),
                    view,
                    e.info.as_ref().map(|i| i.tasks.len()),
                    &connector_type,
                    &masker.secrets(&config),
                );
                translate::name_workers(&mut status, &workers);
                entry.insert(
                    "status".into(),
                    serde_json::to_value(status).expect("serialisable"),
                );
            }
            entry.insert("extensions".into(), json!({}));
            out.insert(name, Value::Object(entry));
        }
        Ok(Value::Object(out))
    }

    /// Each worker's `host:port` (Connect's `worker_id`) to its supervisor name (`shared-0`).
    pub fn worker_names(&self) -> HashMap<String, String> {
        self.supervisor
            .status()
            .into_iter()
            .flat_map(|p| p.workers)
            .map(|w| {
                let address = w
                    .rest_url
                    .split_once("://")
                    .map_or(w.rest_url.as_str(), |(_, a)| a)
                    .trim_end_matches('/')
                    .to_string();
                (address, w.id)
            })
            .collect()
    }

    pub(in crate::connectors) fn id_json(&self, name: &str) -> Value {
        json!({ "id": self.connector_id(name), "id_type": "ID" })
    }
}
