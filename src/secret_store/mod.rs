//! The per-connector secret files of `externalize` mode: `<state_dir>/secrets/<connector>.properties`,
//! written atomically with mode 0600 (owner only: the supervisor, and the workers it starts as the
//! same user), read back for updates that keep a secret, and removed with the connector.
//!
//! This is the thin I/O half of [`crate::policy::secrets`]: what goes into a file, and the
//! `${file:<path>:<key>}` references Connect gets, are decided there and in
//! the connectors' admission. Nothing here logs a value, and errors carry paths, never contents.

pub mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::model::Department;
use crate::policy::secrets;

/// Mode of a secret file: read and write for its owner only.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of the secrets folder.
pub const SECRETS_DIR_MODE: u32 = 0o700;
/// Suffix of the temporary file a secret file is written to before it is renamed into place.
pub use crate::util::fs::TEMP_SUFFIX;

/// Why a secret file could not be read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    /// The secrets folder could not be created.
    #[error("cannot create the secrets folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A secret file could not be written.
    #[error("cannot write the secret file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A secret file exists but could not be read.
    #[error("cannot read the secret file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secrets folder could not be listed.
    #[error("cannot list the secrets folder {path}: {source}")]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A secret file could not be removed.
    #[error("cannot remove the secret file {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SecretStoreError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Folder { .. } => "secrets_folder",
            Self::Write { .. } => "secret_file_write",
            Self::Read { .. } => "secret_file_read",
            Self::List { .. } => "secrets_folder_list",
            Self::Remove { .. } => "secret_file_remove",
        }
    }
}

/// The department's folder of secret files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// The store in `dir` (absolute: the path appears in `${file:...}` references).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store of `department`: `<state_dir>/secrets`.
    pub fn for_department(department: &Department) -> Self {
        Self::new(secrets::secrets_dir(department))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The secret file of connector `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        secrets::secret_file(&self.dir, name)
    }

    /// Whether `path` is a file of this store (a `${file:...}` reference into the folder).
    pub fn holds(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path())
    }

    /// The secrets kept for connector `name`, or `None` when it has no file.
    pub fn read(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretStoreError> {
        read_file(&self.path(name))
    }

    /// Replaces connector `name`'s file with `secrets`: written to a temporary file created
    /// with mode 0600, flushed to disk, then renamed over the old one, so a worker reading it
    /// sees the old or the new file, never half of one.
    pub fn write(
        &self,
        name: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Result<(), SecretStoreError> {
        self.ensure_folder()?;
        let path = self.path(name);
        let text = crate::util::properties::render_properties(secrets);
        crate::util::fs::write_atomic(&path, text.as_bytes(), SECRET_FILE_MODE)
            .map_err(|source| SecretStoreError::Write { path, source })
    }

    /// Removes connector `name`'s file; `false` when there was none.
    pub fn remove(&self, name: &str) -> Result<bool, SecretStoreError> {
        remove_path(&self.path(name))
    }

    /// Puts connector `name`'s file back the way it was: `previous` written, or the file removed
    /// when there was none.
    pub fn restore(
        &self,
        name: &str,
        previous: Option<&BTreeMap<String, String>>,
    ) -> Result<(), SecretStoreError> {
        match previous {
            Some(secrets) => self.write(name, secrets),
            None => self.remove(name).map(|_| ()),
        }
    }

    /// The files of the folder that none of the `live` connectors uses and that were last
    /// written before `before`: the secret files of connectors deleted while the supervisor was
    /// down (or behind its back, on a worker's own API), and temporary files a crash left
    /// mid-write. Files of other kinds are not the store's and are never listed.
    pub fn orphans(
        &self,
        live: &BTreeSet<String>,
        before: SystemTime,
    ) -> Result<Vec<PathBuf>, SecretStoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SecretStoreError::List {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let in_use: BTreeSet<PathBuf> = live.iter().map(|name| self.path(name)).collect();
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            match store_file_kind(&path) {
                Some(StoreFile::Temp) => {}
                Some(StoreFile::Secret) if !in_use.contains(&path) => {}
                _ => continue,
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let old = meta.modified().is_ok_and(|m| m < before);
            if meta.is_file() && old {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes `path` if it is a secret or temporary file of this store; `false` when it was
    /// gone already or is not one.
    pub fn remove_file(&self, path: &Path) -> Result<bool, SecretStoreError> {
        if !self.holds(path) || store_file_kind(path).is_none() {
            return Ok(false);
        }
        remove_path(path)
    }

    fn ensure_folder(&self) -> Result<(), SecretStoreError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(SECRETS_DIR_MODE)
            .create(&self.dir)
            .and_then(|()| {
                std::fs::set_permissions(
                    &self.dir,
                    std::fs::Permissions::from_mode(SECRETS_DIR_MODE),
                )
            })
            .map_err(|source| SecretStoreError::Folder {
                path: self.dir.clone(),
                source,
            })
    }
}

/// The kinds of file the store writes.
enum StoreFile {
    /// `<connector>.properties`.
    Secret,
    /// `<connector>.properties.tmp`, before it is renamed into place.
    Temp,
}

/// Which of the store's files `path` names by its name, if any.
fn store_file_kind(path: &Path) -> Option<StoreFile> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(TEMP_SUFFIX);
    let secret = |n: &str| {
        n.strip_suffix(secrets::SECRET_FILE_EXTENSION)
            .is_some_and(|n| n.ends_with('.'))
    };
    match stem {
        Some(stem) if secret(stem) => Some(StoreFile::Temp),
        None if secret(name) => Some(StoreFile::Secret),
        _ => None,
    }
}

/// Removes the file at `path`; `false` when there was none.
fn remove_path(path: &Path) -> Result<bool, SecretStoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SecretStoreError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The properties of the secret file at `path`, or `None` when it does not exist.
pub fn read_file(path: &Path) -> Result<Option<BTreeMap<String, String>>, SecretStoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse_properties(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretStoreError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub use crate::util::properties::parse_properties;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn age(path: &Path, by: std::time::Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn orphans_are_old_files_of_connectors_that_are_gone_and_crash_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let live = BTreeSet::from(["dept1-live".to_string(), "Dept1 odd name".to_string()]);
        assert!(
            store.orphans(&live, SystemTime::now()).unwrap().is_empty(),
            "no folder yet"
        );
        let one = BTreeMap::from([("k".to_string(), "v".to_string())]);
        for name in ["dept1-live", "Dept1 odd name", "dept1-gone", "dept1-new"] {
            store.write(name, &one).unwrap();
        }
        let temp = dir.path().join("secrets/dept1-live.properties.tmp");
        let foreign = dir.path().join("secrets/README.txt");
        std::fs::write(&temp, "k=half").unwrap();
        std::fs::write(&foreign, "not the store's").unwrap();
        let hour = std::time::Duration::from_secs(3600);
        for name in ["dept1-live", "Dept1 odd name", "dept1-gone"] {
            age(&store.path(name), hour);
        }
        age(&temp, hour);
        age(&foreign, hour);
        let before = SystemTime::now() - std::time::Duration::from_secs(60);
        let orphans = store.orphans(&live, before).unwrap();
        assert_eq!(orphans, vec![store.path("dept1-gone"), temp.clone()]);
        for path in &orphans {
            assert!(store.remove_file(path).unwrap());
        }
        assert!(!store.remove_file(&temp).unwrap(), "already gone");
        assert!(!store.remove_file(&foreign).unwrap(), "not the store's");
        assert!(foreign.exists());
        assert!(
            store.path("dept1-new").exists(),
            "written after `before`: kept"
        );
        assert!(
            store.path("Dept1 odd name").exists(),
            "hashed names are matched too"
        );
        assert!(store.orphans(&live, before).unwrap().is_empty());
    }

    #[test]
    fn files_are_written_owner_only_read_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        assert_eq!(store.read("dept1-a").unwrap(), None);
        let secrets = BTreeMap::from([("connection.password".to_string(), "p=w:d #1".to_string())]);
        store.write("dept1-a", &secrets).unwrap();
        let path = store.path("dept1-a");
        assert_eq!(path, dir.path().join("secrets/dept1-a.properties"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SECRET_FILE_MODE);
        let folder = std::fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(folder, SECRETS_DIR_MODE);
        assert_eq!(store.read("dept1-a").unwrap(), Some(secrets.clone()));
        assert!(store.holds(&path));
        assert!(!store.holds(Path::new("/etc/passwd")));
        // Replaced whole, no temporary file left behind.
        let other = BTreeMap::from([("token".to_string(), "t".to_string())]);
        store.write("dept1-a", &other).unwrap();
        assert_eq!(store.read("dept1-a").unwrap(), Some(other));
        let names: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dept1-a.properties"]);
        store.restore("dept1-a", Some(&secrets)).unwrap();
        assert_eq!(store.read("dept1-a").unwrap(), Some(secrets));
        store.restore("dept1-a", None).unwrap();
        assert!(!path.exists());
        assert!(!store.remove("dept1-a").unwrap());
    }

    #[test]
    fn errors_name_the_path_and_have_codes() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        let blocker = dir.path().join("secrets");
        std::fs::write(&blocker, "x").unwrap();
        let store = SecretStore::new(blocker.join("inner"));
        let err = store
            .write("a", &BTreeMap::from([("k".into(), "v".into())]))
            .unwrap_err();
        assert_eq!(err.code(), "secrets_folder");
        assert!(err.to_string().contains("inner"), "{err}");
    }
}
