//! The pools' Connect workers as one client: a call goes to the pool's ready workers (the next
//! one is tried when one cannot be reached), and Connect's rebalance conflicts are resent, since
//! Connect applied nothing. Every call to a worker the component makes goes through here.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::connect::{self, ConnectClient, ConnectError, ServerInfo};

use super::{Connectors, ConnectorsError, REBALANCE_RETRIES};

impl Connectors {
    /// Runs `call` against the pool's ready workers: the next worker is tried when one cannot be
    /// reached, and Connect's rebalance conflicts (409, "momentarily") are retried with a short
    /// backoff ([`REBALANCE_RETRIES`] times, by [`connect::resend_on_rebalance`]), since the
    /// request was not applied.
    pub async fn on_pool<T, F, Fut>(&self, pool: &str, call: F) -> Result<T, ConnectErrorIn>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        connect::resend_on_rebalance(
            REBALANCE_RETRIES,
            ConnectErrorIn::is_rebalance_conflict,
            || self.on_ready_workers(pool, &call),
        )
        .await
    }

    /// One round of [`Self::on_pool`]: the pool's ready workers in turn until one answers (an
    /// answer may be an error), or none could be reached.
    async fn on_ready_workers<T, F, Fut>(&self, pool: &str, call: &F) -> Result<T, ConnectErrorIn>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        let mut unreachable = None;
        for url in self.supervisor.ready_worker_urls(pool) {
            match call(ConnectClient::new(self.http.clone(), url)).await {
                Err(e @ ConnectError::Unreachable { .. }) => unreachable = Some(e),
                Err(e) => return Err(ConnectErrorIn::Connect(pool.to_string(), e)),
                Ok(v) => return Ok(v),
            }
        }
        Err(match unreachable {
            Some(e) => ConnectErrorIn::Connect(pool.to_string(), e),
            None => ConnectErrorIn::NoWorker(pool.to_string()),
        })
    }

    /// Like [`Connectors::on_pool`], with errors turned into [`ConnectorsError`] scrubbed of `secrets`.
    pub async fn call<T, F, Fut>(
        &self,
        pool: &str,
        secrets: &[String],
        call: F,
    ) -> Result<T, ConnectorsError>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        self.on_pool(pool, call)
            .await
            .map_err(|e| e.into_error(secrets))
    }

    /// Connect's `ServerInfo` from a ready worker (the first answer is kept: version and Kafka
    /// cluster id do not change while the supervisor runs).
    pub async fn server_info(&self) -> Option<ServerInfo> {
        if let Some(info) = self.server_info.read().expect("server info lock").clone() {
            return Some(info);
        }
        for pool in self.pools() {
            if let Ok(info) = self
                .on_pool(&pool, |c| async move { c.server_info().await })
                .await
            {
                *self.server_info.write().expect("server info lock") = Some(info.clone());
                return Some(info);
            }
        }
        None
    }

    /// Waits up to `timeout` until each of `pools` has a ready worker; whether they all have.
    pub(super) async fn wait_for_ready_workers(&self, pools: &[String], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = pools
                .iter()
                .all(|p| !self.supervisor.ready_worker_urls(p).is_empty());
            if ready || Instant::now() >= deadline {
                return ready;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// A failed call to a pool, before secrets are known.
#[derive(Debug)]
pub enum ConnectErrorIn {
    /// The pool has no ready worker.
    NoWorker(String),
    /// Connect's error, from this pool.
    Connect(String, ConnectError),
}

impl ConnectErrorIn {
    /// Whether Connect said 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Connect(_, e) if e.is_not_found())
    }

    /// Whether Connect refused only because its group is rebalancing (nothing was applied).
    pub fn is_rebalance_conflict(&self) -> bool {
        matches!(self, Self::Connect(_, e) if e.is_rebalance_conflict())
    }

    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoWorker(_) => "no_ready_worker",
            Self::Connect(_, e) => e.code(),
        }
    }

    /// As a [`ConnectorsError`], Connect's message scrubbed of `secrets`.
    pub fn into_error(self, secrets: &[String]) -> ConnectorsError {
        match self {
            Self::NoWorker(pool) => ConnectorsError::NoWorker { pool },
            Self::Connect(pool, e) => ConnectorsError::from_connect(e, &pool, secrets),
        }
    }
}
