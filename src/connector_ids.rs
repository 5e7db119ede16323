//! The managed API's connector ids (`lcc-...`), one per connector *incarnation*: as on the
//! managed service, a connector deleted and created again under the same name gets a new id
//! (Terraform's `-replace` and destroy + create rely on it).
//!
//! Ids given at a create are kept in `<state_dir>/connector-ids.json` (written whole to a
//! temporary file and renamed, so a crash never leaves half a file) and dropped at the delete.
//! A connector with no recorded id (created before ids were recorded, directly on a worker, or
//! with the department's `recreate = "resume"`) has the stable id derived from the department
//! and its name ([`crate::translate::connector_id`]), the same across restarts and re-creations.
//! No I/O but that file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name of the recorded ids in the state folder.
pub const IDS_FILE: &str = "connector-ids.json";
const ID_CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 8;

/// Why the ids file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IdsError {
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a JSON object of names to ids.
    #[error(
        "{path} is not a JSON object of connector names to ids ({detail}); fix or remove it (connectors then get their name-derived ids)"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said (position only).
        detail: String,
    },
}

impl IdsError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "connector_ids_io",
            Self::Invalid { .. } => "connector_ids_invalid",
        }
    }
}

/// The recorded connector ids of a department.
#[derive(Debug)]
pub struct ConnectorIds {
    path: PathBuf,
    department: String,
    ids: Mutex<BTreeMap<String, String>>,
}

/// A fresh random id: `lcc-` and 8 base-36 characters, as the derived ones.
pub fn fresh_id() -> String {
    let limit = 256 - (256 % ID_CHARS.len());
    let mut out = String::from(crate::translate::CONNECTOR_ID_PREFIX);
    while out.len() < crate::translate::CONNECTOR_ID_PREFIX.len() + ID_LEN {
        let b: u8 = rand::random();
        if (b as usize) < limit {
            out.push(ID_CHARS[b as usize % ID_CHARS.len()] as char);
        }
    }
    out
}

impl ConnectorIds {
    /// The ids recorded in `<state_dir>/connector-ids.json` (none when the file is missing).
    pub fn open(state_dir: &Path, department: &str) -> Result<Self, IdsError> {
        let path = state_dir.join(IDS_FILE);
        let ids = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| IdsError::Invalid {
                path: path.clone(),
                detail: format!("line {} column {}", e.line(), e.column()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(IdsError::Io {
                    action: "cannot read",
                    path,
                    source,
                });
            }
        };
        Ok(Self {
            path,
            department: department.to_string(),
            ids: Mutex::new(ids),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.ids.lock().expect("connector ids lock")
    }

    /// The id of connector `name`: the recorded one, else the one derived from its name.
    pub fn id(&self, name: &str) -> String {
        self.lock()
            .get(name)
            .cloned()
            .unwrap_or_else(|| crate::translate::connector_id(&self.department, name))
    }

    /// Records a fresh id for `name`, just created; returns it.
    pub fn assign(&self, name: &str) -> Result<String, IdsError> {
        let mut ids = self.lock();
        let derived = crate::translate::connector_id(&self.department, name);
        let mut id = fresh_id();
        while id == derived || ids.values().any(|v| *v == id) {
            id = fresh_id();
        }
        ids.insert(name.to_string(), id.clone());
        self.save(&ids)?;
        Ok(id)
    }

    /// Drops the id of `name`, deleted.
    pub fn forget(&self, name: &str) -> Result<(), IdsError> {
        let mut ids = self.lock();
        if ids.remove(name).is_some() {
            self.save(&ids)?;
        }
        Ok(())
    }

    fn save(&self, ids: &BTreeMap<String, String>) -> Result<(), IdsError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| IdsError::Io {
                action,
                path,
                source,
            }
        };
        let text = serde_json::to_vec_pretty(ids).expect("ids serialise");
        crate::util::fs::write_atomic(&self.path, &text, crate::util::fs::SHARED_MODE)
            .map_err(io("cannot write", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreated_connector_gets_a_new_id_and_ids_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ConnectorIds::open(dir.path(), "dept1").unwrap();
        let derived = crate::translate::connector_id("dept1", "dept1-a");
        assert_eq!(ids.id("dept1-a"), derived, "unrecorded: the derived id");
        let first = ids.assign("dept1-a").unwrap();
        assert!(first.starts_with("lcc-") && first.len() == 12, "{first}");
        assert_ne!(first, derived);
        assert_eq!(ids.id("dept1-a"), first);
        let again = ConnectorIds::open(dir.path(), "dept1").unwrap();
        assert_eq!(again.id("dept1-a"), first, "kept across a restart");
        again.forget("dept1-a").unwrap();
        let second = again.assign("dept1-a").unwrap();
        assert_ne!(second, first, "a new incarnation, a new id");
        again.forget("dept1-a").unwrap();
        assert_eq!(
            ConnectorIds::open(dir.path(), "dept1")
                .unwrap()
                .id("dept1-a"),
            derived
        );
    }

    #[test]
    fn a_broken_ids_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDS_FILE), "[1,").unwrap();
        let e = ConnectorIds::open(dir.path(), "dept1").unwrap_err();
        assert_eq!(e.code(), "connector_ids_invalid");
        assert!(e.to_string().contains(IDS_FILE), "{e}");
    }
}
