//! The Kafka Connect runtime on disk: its layout, and materialising it from
//! `images/connect-runtime/pom.xml` with Maven.
//!
//! The pom is the single declaration of the runtime: the container image and local dev/tests both
//! build the same layout from it. Materialising is idempotent: a stamp file records a hash of the
//! pom and the config files, and when it matches nothing runs, so a cached start needs no network
//! and no Maven. A changed pom is materialised into a fresh folder that replaces the old one only
//! once complete.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Folder of the broker classpath.
pub const BROKER_DIR: &str = "broker";
/// Folder of the Connect worker classpath.
pub const CONNECT_DIR: &str = "connect";
/// Folder of the plugins (one sub-folder per plugin); the workers' `plugin.path`.
pub const PLUGINS_DIR: &str = "plugins";
/// Folder of java agents.
pub const AGENTS_DIR: &str = "agents";
/// Folder of config files (log4j2, JMX exporter rules), copied from the pom's `config/` folder.
pub const CONFIG_DIR: &str = "config";
/// Log4j2 config of the workers.
pub const CONNECT_LOG_CONFIG: &str = "connect-log4j2.yaml";
/// Log4j2 config of the embedded broker.
pub const BROKER_LOG_CONFIG: &str = "broker-log4j2.yaml";
/// Rules of the Prometheus JMX exporter agent in each worker (Connect's MBeans to metrics).
pub const JMX_EXPORTER_CONFIG: &str = "jmx-exporter.yaml";
/// Stamp written last by a complete materialisation.
pub const STAMP_FILE: &str = ".complete";
/// File name of the runtime declaration.
pub const POM_FILE: &str = "pom.xml";
/// The workers' class-data-sharing archive, relative to the runtime root (see the `cds` module).
pub const CDS_ARCHIVE: &str = "cds/connect-worker.jsa";
/// Environment variable naming the Maven executable (default `mvn`).
pub const MVN_ENV: &str = "MVN";

/// One part of the runtime: a Maven profile of the pom and the folder it fills.
struct Part {
    profile: &'static str,
    folder: &'static str,
    transitive: bool,
}

const PARTS: &[Part] = &[
    Part {
        profile: "broker",
        folder: BROKER_DIR,
        transitive: true,
    },
    Part {
        profile: "connect",
        folder: CONNECT_DIR,
        transitive: true,
    },
    Part {
        profile: "plugin-connect-file",
        folder: "plugins/connect-file",
        transitive: false,
    },
    Part {
        profile: "agents",
        folder: AGENTS_DIR,
        transitive: false,
    },
];

/// Why the runtime is unusable or could not be materialised.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime folder lacks parts; the message says how to fetch it.
    #[error(
        "the Connect runtime at {dir} is incomplete (missing {missing}); materialise it with \
         `connect-supervisor runtime fetch --dir {dir}`"
    )]
    Incomplete {
        /// The runtime folder.
        dir: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Maven could not be started.
    #[error("cannot run Maven ({mvn}): {source}; install Maven 3.8+ or set {MVN_ENV}")]
    MavenMissing {
        /// The Maven command.
        mvn: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Maven ran and failed.
    #[error("Maven failed materialising profile {profile} from {pom}: {output}")]
    MavenFailed {
        /// The profile.
        profile: String,
        /// The pom.
        pom: PathBuf,
        /// The tail of Maven's output.
        output: String,
    },
}

impl RuntimeError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "runtime_incomplete",
            Self::Io { .. } => "runtime_io",
            Self::MavenMissing { .. } => "maven_missing",
            Self::MavenFailed { .. } => "maven_failed",
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io {
        action,
        path,
        source,
    }
}

/// A materialised runtime folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayout {
    root: PathBuf,
}

impl RuntimeLayout {
    /// The layout rooted at `root`; [`RuntimeLayout::check`] says whether it is complete.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The class-data-sharing archive of the worker classpath (`cds/connect-worker.jsa`), made
    /// by `connect-supervisor runtime cds`; workers use it when it exists.
    pub fn cds_archive(&self) -> PathBuf {
        self.root.join(CDS_ARCHIVE)
    }

    /// Java classpath of the broker (`broker/*`).
    pub fn broker_classpath(&self) -> String {
        format!("{}/*", self.root.join(BROKER_DIR).display())
    }

    /// Java classpath of a Connect worker (`connect/*`).
    pub fn connect_classpath(&self) -> String {
        format!("{}/*", self.root.join(CONNECT_DIR).display())
    }

    /// The workers' `plugin.path`.
    pub fn plugin_path(&self) -> PathBuf {
        self.root.join(PLUGINS_DIR)
    }

    /// Log4j2 config file of the workers.
    pub fn connect_log_config(&self) -> PathBuf {
        self.root.join(CONFIG_DIR).join(CONNECT_LOG_CONFIG)
    }

    /// Log4j2 config file of the broker.
    pub fn broker_log_config(&self) -> PathBuf {
        self.root.join(CONFIG_DIR).join(BROKER_LOG_CONFIG)
    }

    /// The config folder (log4j2 files, JMX exporter rules).
    pub fn config_dir(&self) -> PathBuf {
        self.root.join(CONFIG_DIR)
    }

    /// The rules file of the JMX exporter agent.
    pub fn jmx_exporter_config(&self) -> PathBuf {
        self.root.join(CONFIG_DIR).join(JMX_EXPORTER_CONFIG)
    }

    /// The Prometheus JMX exporter agent jar, if present.
    pub fn jmx_exporter_agent(&self) -> Option<PathBuf> {
        find_jar(&self.root.join(AGENTS_DIR), "jmx_prometheus_javaagent-")
    }

    /// The Kafka version of the runtime, read from the `connect-runtime-<version>.jar` name.
    pub fn kafka_version(&self) -> Option<String> {
        let jar = find_jar(&self.root.join(CONNECT_DIR), "connect-runtime-")?;
        let name = jar.file_name()?.to_str()?;
        Some(
            name.strip_prefix("connect-runtime-")?
                .strip_suffix(".jar")?
                .to_string(),
        )
    }

    /// Checks that every part is present.
    pub fn check(&self) -> Result<(), RuntimeError> {
        let mut missing = Vec::new();
        if find_jar(&self.root.join(BROKER_DIR), "kafka_2.13-").is_none() {
            missing.push(format!("{BROKER_DIR}/kafka_2.13-*.jar"));
        }
        if self.kafka_version().is_none() {
            missing.push(format!("{CONNECT_DIR}/connect-runtime-*.jar"));
        }
        if find_jar(&self.root.join(CONNECT_DIR), "log4j-slf4j-impl-").is_none() {
            missing.push(format!("{CONNECT_DIR}/log4j-slf4j-impl-*.jar"));
        }
        for config in [self.connect_log_config(), self.broker_log_config()] {
            if !config.is_file() {
                missing.push(config.display().to_string());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::Incomplete {
                dir: self.root.clone(),
                missing: missing.join(", "),
            })
        }
    }
}

fn find_jar(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jar"))
        })
}

/// What [`materialise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialised {
    /// The runtime was already present and matched the pom: nothing ran.
    Cached,
    /// The runtime was (re)built with Maven.
    Fetched,
}

/// Hash of the runtime declaration: the pom and every file of its `config/` folder.
pub fn declaration_hash(source: &Path) -> Result<String, RuntimeError> {
    let mut hasher = Sha256::new();
    let pom = source.join(POM_FILE);
    hasher.update(std::fs::read(&pom).map_err(io_error("cannot read", &pom))?);
    let config = source.join(CONFIG_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&config)
        .map_err(io_error("cannot list", &config))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in files {
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(std::fs::read(&file).map_err(io_error("cannot read", &file))?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Makes `dest` hold the runtime declared in `source` (the folder of `pom.xml` and `config/`).
/// Fast and offline when `dest` already matches; otherwise runs Maven, one profile per part, into
/// a sibling folder that replaces `dest` once complete. Concurrent callers are serialised with a
/// lock file beside `dest`.
pub fn materialise(source: &Path, dest: &Path) -> Result<Materialised, RuntimeError> {
    let hash = declaration_hash(source)?;
    if stamp_matches(dest, &hash) {
        return Ok(Materialised::Cached);
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error("cannot create", parent))?;
    let lock_path = dest.with_extension("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error("cannot open", &lock_path))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| RuntimeError::Io {
            action: "cannot lock",
            path: lock_path.clone(),
            source: errno.into(),
        },
    )?;
    // Another process may have finished while we waited for the lock.
    if stamp_matches(dest, &hash) {
        return Ok(Materialised::Cached);
    }

    let staging = dest.with_extension(format!("staging-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error("cannot remove", &staging))?;
    }
    let pom = source.join(POM_FILE);
    for part in PARTS {
        run_maven(&pom, part, &staging.join(part.folder))?;
    }
    copy_dir(&source.join(CONFIG_DIR), &staging.join(CONFIG_DIR))?;
    let stamp = staging.join(STAMP_FILE);
    std::fs::write(&stamp, &hash).map_err(io_error("cannot write", &stamp))?;
    RuntimeLayout::new(&staging).check()?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(io_error("cannot remove", dest))?;
    }
    std::fs::rename(&staging, dest).map_err(io_error("cannot move into place", dest))?;
    Ok(Materialised::Fetched)
}

fn stamp_matches(dest: &Path, hash: &str) -> bool {
    std::fs::read_to_string(dest.join(STAMP_FILE)).is_ok_and(|s| s.trim() == hash)
        && RuntimeLayout::new(dest).check().is_ok()
}

fn run_maven(pom: &Path, part: &Part, out: &Path) -> Result<(), RuntimeError> {
    let mvn = std::env::var(MVN_ENV).unwrap_or_else(|_| "mvn".into());
    let mut cmd = Command::new(&mvn);
    cmd.arg("-B")
        .arg("-q")
        .arg("--no-transfer-progress")
        .arg("-Dstyle.color=never")
        .arg("-f")
        .arg(pom)
        .arg(format!("-P{}", part.profile))
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", out.display()));
    if !part.transitive {
        cmd.arg("-DexcludeTransitive=true");
    }
    let output = cmd.output().map_err(|source| RuntimeError::MavenMissing {
        mvn: mvn.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    Err(RuntimeError::MavenFailed {
        profile: part.profile.to_string(),
        pom: pom.to_path_buf(),
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(to).map_err(io_error("cannot create", to))?;
    for entry in std::fs::read_dir(from).map_err(io_error("cannot list", from))? {
        let entry = entry.map_err(io_error("cannot list", from))?;
        let path = entry.path();
        if path.is_file() {
            let target = to.join(entry.file_name());
            std::fs::copy(&path, &target).map_err(io_error("cannot copy", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_folder_is_incomplete_and_says_how_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let err = RuntimeLayout::new(dir.path()).check().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("connect-runtime-*.jar"), "{text}");
        assert!(text.contains("runtime fetch"), "{text}");
    }

    #[test]
    fn the_declaration_hash_changes_with_the_pom_and_the_configs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(CONFIG_DIR)).unwrap();
        std::fs::write(dir.path().join(POM_FILE), "<project/>").unwrap();
        std::fs::write(dir.path().join(CONFIG_DIR).join("a.yaml"), "a").unwrap();
        let first = declaration_hash(dir.path()).unwrap();
        assert_eq!(first, declaration_hash(dir.path()).unwrap());
        std::fs::write(dir.path().join(CONFIG_DIR).join("a.yaml"), "b").unwrap();
        let second = declaration_hash(dir.path()).unwrap();
        assert_ne!(first, second);
        std::fs::write(dir.path().join(POM_FILE), "<project></project>").unwrap();
        assert_ne!(second, declaration_hash(dir.path()).unwrap());
    }

    #[test]
    fn the_kafka_version_comes_from_the_connect_runtime_jar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(CONNECT_DIR)).unwrap();
        std::fs::write(
            dir.path()
                .join(CONNECT_DIR)
                .join("connect-runtime-4.3.1.jar"),
            "",
        )
        .unwrap();
        assert_eq!(
            RuntimeLayout::new(dir.path()).kafka_version().as_deref(),
            Some("4.3.1")
        );
    }
}
