//! `connect-supervisor migrate`: the bridge from a department's self-managed connectors to
//! fully-managed ones (and from hand-rolled Connect clusters into a department).
//!
//! Both ends are clients of the managed API ([`client`]): the source is a supervisor (its API is
//! the managed API, plus Connect's stop route), the target Confluent Cloud or another
//! supervisor. The parts:
//!
//! * [`mapping`]: the table of self-managed classes and their managed equivalents (data in
//!   `mapping.json`) and the pure translation of a config.
//! * [`plan`]: what each connector becomes, checked against the target's translate endpoint when
//!   it serves one.
//! * [`export`]: managed JSON and Terraform `confluent_connector` files, secrets as references.
//! * [`cutover`]: the resumable cut-over state machine (stop-then-create, parallel, no-offsets),
//!   rollback, adopt and rename (the library entry point GitOps calls).
//!
//! Secret values never pass through this module: configs are read masked, and a connector whose
//! config holds secrets is pushed to its target by the source supervisor itself
//! (`POST /v1/migrate/connectors/{name}/push`, admin only, served by the API layer's `migrate` routes).

pub mod cli;
pub mod client;
pub mod cutover;
pub mod export;
pub mod mapping;
pub mod plan;

use std::path::PathBuf;

/// Environment variable of the source supervisor's URL (as `dev`'s banner exports it).
pub const SOURCE_URL_ENV: &str = "CS_URL";
/// Environment variable of the target's URL.
pub const TARGET_URL_ENV: &str = "TARGET_URL";
/// Environment variable of the target's API key id.
pub const TARGET_KEY_ENV: &str = "TARGET_KEY";
/// Environment variable of the target's API key secret.
pub const TARGET_SECRET_ENV: &str = "TARGET_SECRET";
/// Environment variable of the target's bearer token.
pub const TARGET_TOKEN_ENV: &str = "TARGET_TOKEN";

/// Exit code: every selected connector can move (or the step succeeded).
pub const EXIT_OK: u8 = 0;
/// Exit code: some connector cannot move as asked (no equivalent, refused, not verified).
pub const EXIT_BLOCKED: u8 = 1;
/// Exit code: an input or an end could not be read.
pub const EXIT_UNREADABLE: u8 = 2;

/// Why a migration step failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// An end could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },
    /// An end refused a call.
    #[error("{url} answered {status}: {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// An answer is not what the managed API answers.
    #[error("the answer of {url} is not what the managed API answers: {message}")]
    Format {
        /// The URL called.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The arguments do not make a migration.
    #[error("{0}")]
    Usage(String),
    /// A file of `--out` could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A cut-over step did not reach its goal in time or found the ends in a state it must not
    /// go on from; the state file says where it stopped.
    #[error("{step}: {message}")]
    Step {
        /// The step.
        step: &'static str,
        /// What happened and what to do.
        message: String,
    },
}

impl MigrateError {
    /// Short, bounded code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "migrate_unreachable",
            Self::Refused { .. } => "migrate_refused",
            Self::Format { .. } => "migrate_format",
            Self::Usage(_) => "migrate_usage",
            Self::Io { .. } => "migrate_io",
            Self::Step { .. } => "migrate_step",
        }
    }

    /// The exit code of the command that failed with it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => crate::config::EXIT_USAGE as u8,
            Self::Unreachable { .. } | Self::Format { .. } | Self::Io { .. } => EXIT_UNREADABLE,
            Self::Refused { .. } | Self::Step { .. } => EXIT_BLOCKED,
        }
    }
}

/// Writes `text` to `path` (creating its folder).
pub fn write_file(path: &std::path::Path, text: &str) -> Result<(), MigrateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| MigrateError::Io {
            path: parent.to_path_buf(),
            message: format!("cannot create the folder: {e}"),
        })?;
    }
    crate::util::fs::write_atomic(path, text.as_bytes(), crate::util::fs::SHARED_MODE).map_err(
        |e| MigrateError::Io {
            path: path.to_path_buf(),
            message: format!("cannot write: {e}"),
        },
    )
}
