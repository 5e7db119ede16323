//! Shared domain types: the validated department, its pools and workers, the settings every
//! component reads, and the names derived from them.
//!
//! Everything here is plain data with no I/O, and depends on nothing else in the crate (only std,
//! serde and small pure crates), so that every other module can use it without a cycle. A
//! [`Department`] only exists in validated form: it is built by the config loader, which checks
//! every rule documented on the fields, so code that holds one can rely on those rules.
//!
//! * [`department`]: the department, its pools, Kafka, runtime and supervisor settings.
//! * [`units`]: CPU and memory amounts.
//! * [`budget`]: worker resources and the department budget.
//! * [`ids`]: worker ids and the pool and connector name newtypes.
//! * [`secrets`]: which config keys are secrets, the mask strings, config masking.
//! * [`supervision`]: supervision settings and the worker states and exit reasons they produce.
//! * [`observe`]: logs, auto-restart, metrics, audit and readiness settings.
//! * [`policy`] and [`rego`]: the guardrails (`[policy]`) and their compiled Rego policies.
//! * [`auth`]: roles, API keys, tokens (`[auth]`).

pub mod auth;
pub mod budget;
pub mod department;
pub mod ids;
pub mod observe;
pub mod policy;
pub mod rego;
pub mod secrets;
pub mod supervision;
pub mod units;

pub use auth::{ApiKey, ApiToken, AuthSettings, Role};
pub use budget::{Budget, ResourceUsage, WorkerResources};
pub use department::{
    CONFIG_TOPIC_SUFFIX, ClusterIdentity, Department, DriftMode, GitopsSettings, HttpLimits,
    KafkaSettings, OFFSET_TOPIC_SUFFIX, Pool, Recreate, RuntimeSettings, STATUS_TOPIC_SUFFIX,
    SupervisorSettings, default_owner,
};
pub use ids::WorkerId;
pub use observe::{
    AuditSettings, AutoRestartSettings, HealthSettings, LOG_TOPIC_SUFFIX, LogLevel, LogSettings,
    MetricsSettings, Observability,
};
pub use policy::PolicyRules;
pub use secrets::{
    DEFAULT_ALLOWED_PROVIDERS, DEFAULT_SENSITIVE_KEYS, MASK, SecretMode, SecretRules, glob_match,
};
pub use supervision::{
    CgroupMode, CgroupStats, Enforcement, ExitReason, PolicyOverrides, StartupBoost, Supervision,
    SupervisionPolicy, WorkerPhase,
};
pub use units::{ByteSize, Cpu};
