//! The sweep of the secrets folder: removes the secret files no connector uses any more (those
//! of connectors deleted while the supervisor was down, or on a worker's own API, and temporary
//! files a crash left mid-write), so no literal secret stays on disk without a connector.
//!
//! Which connectors exist is the caller's to say (the connectors component lists every pool); so is
//! holding back writes while the sweep confirms and removes. Nothing here logs a value.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{SecretStore, SecretStoreError};

/// How far apart the two listings of a sweep are.
pub const SWEEP_CONFIRM: Duration = Duration::from_secs(30);
/// A secret file younger than this at the sweep's first listing is kept: its connector may be
/// in the middle of being created.
pub const SWEEP_MIN_AGE: Duration = Duration::from_secs(120);

/// Sweeps `store`. The connectors are listed (`live`) twice, `confirm` apart, and a file goes
/// only when both listings miss its connector and it was last written [`SWEEP_MIN_AGE`] before
/// the first; when a listing fails, nothing is removed. `hold_writes` is held from the second
/// listing to the end, so a file a create of the same name writes meanwhile is never taken.
/// Returns the files removed.
pub async fn sweep<E, L, LFut, H, HFut, G>(
    store: &SecretStore,
    confirm: Duration,
    live: L,
    hold_writes: H,
) -> Result<Vec<PathBuf>, E>
where
    E: From<SecretStoreError>,
    L: Fn() -> LFut,
    LFut: Future<Output = Result<Vec<String>, E>>,
    H: FnOnce() -> HFut,
    HFut: Future<Output = G>,
{
    let before = SystemTime::now() - SWEEP_MIN_AGE;
    let mut names: BTreeSet<String> = live().await?.into_iter().collect();
    let first = store.orphans(&names, before)?;
    if first.is_empty() {
        return Ok(Vec::new());
    }
    tokio::time::sleep(confirm).await;
    let _held = hold_writes().await;
    names.extend(live().await?);
    let confirmed: BTreeSet<PathBuf> = store.orphans(&names, before)?.into_iter().collect();
    let mut removed = Vec::new();
    for path in first.into_iter().filter(|p| confirmed.contains(p)) {
        // The caller announces each removal (a `secret_file_removed` event).
        if store.remove_file(&path)? {
            removed.push(path);
        }
    }
    Ok(removed)
}

impl SecretStore {
    /// Removes the secret file of connector `name`, which no longer exists. A failure is
    /// logged, not returned: the connector is gone, and its delete must not read as failed
    /// (Terraform would retry it into a 404).
    pub fn remove_gone(&self, name: &str) {
        match self.remove(name) {
            Ok(true) => tracing::info!(connector = name, "Connector secret file removed."),
            Ok(false) => {}
            Err(e) => tracing::error!(connector = name, error = %e, code = e.code(),
                "The secret file of a deleted connector could not be removed; remove it by hand."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn aged(path: &std::path::Path) {
        let old = SystemTime::now() - SWEEP_MIN_AGE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_goes_only_when_both_listings_miss_its_connector() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let secret = BTreeMap::from([("pw".to_string(), "x".to_string())]);
        for name in ["dept1-live", "dept1-gone", "dept1-back"] {
            store.write(name, &secret).unwrap();
            aged(&store.path(name));
        }
        let listings = AtomicUsize::new(0);
        let held = AtomicUsize::new(0);
        let removed = sweep::<SecretStoreError, _, _, _, _, _>(
            &store,
            SWEEP_CONFIRM,
            || {
                let n = listings.fetch_add(1, Ordering::SeqCst);
                async move {
                    // dept1-back is created again between the two listings.
                    Ok(match n {
                        0 => vec!["dept1-live".to_string()],
                        _ => vec!["dept1-live".to_string(), "dept1-back".to_string()],
                    })
                }
            },
            || async {
                held.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await
        .unwrap();
        assert_eq!(removed, [store.path("dept1-gone")]);
        assert_eq!(listings.load(Ordering::SeqCst), 2);
        assert_eq!(held.load(Ordering::SeqCst), 1);
        assert!(store.path("dept1-back").exists() && store.path("dept1-live").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_removed_when_a_listing_fails_or_nothing_is_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        store
            .write("dept1-gone", &BTreeMap::from([("pw".into(), "x".into())]))
            .unwrap();
        aged(&store.path("dept1-gone"));
        let listings = AtomicUsize::new(0);
        let failed = sweep(
            &store,
            SWEEP_CONFIRM,
            || {
                let n = listings.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Ok(vec![]),
                        _ => Err(SecretStoreError::List {
                            path: "pool shared".into(),
                            source: std::io::Error::other("no ready worker"),
                        }),
                    }
                }
            },
            || async {},
        )
        .await;
        assert!(failed.is_err());
        assert!(store.path("dept1-gone").exists());
        // Nothing orphaned: one listing, no wait.
        let start = tokio::time::Instant::now();
        let none = sweep::<SecretStoreError, _, _, _, _, _>(
            &store,
            SWEEP_CONFIRM,
            || async { Ok(vec!["dept1-gone".to_string()]) },
            || async {},
        )
        .await
        .unwrap();
        assert!(none.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
