//! Connect's shapes and states translated to the managed (`connect/v1`) API, and secret masking.
//!
//! Pure functions only: no I/O, no clock (callers pass times in). What clients of the managed
//! API depend on lives here, each rule with the reason it exists:
//! * states in the managed vocabulary (Terraform fails `apply` on any state outside
//!   PROVISIONING/DEGRADED/RUNNING while it waits after a create): [`status`];
//! * a stable synthetic connector id (`lcc-...`), the same across restarts (the CLI addresses
//!   connectors by id): [`ids`];
//! * every sensitive value masked as 16 `*` (Terraform drops values matching `^[*]{2,}`), user
//!   keys echoed unchanged and only keys Terraform ignores added (anything else is drift):
//!   [`config`], and in validate answers [`validate`];
//! * plugins named as the managed service names them: [`plugins`];
//! * `expand` parsed the way Go clients send it (repeated, comma-joined, percent-encoded), and
//!   names checked before they go into a path: [`request`];
//! * offsets and times in the forms clients send and decode: [`offsets`], [`times`].

pub mod config;
pub mod ids;
pub mod offsets;
pub mod plugins;
pub mod request;
pub mod status;
pub mod times;
pub mod validate;

pub use config::{
    KEY_CLOUD_ENVIRONMENT, KEY_CLOUD_PROVIDER, KEY_KAFKA_ENDPOINT, KEY_KAFKA_REGION, MASK,
    ManagedExtras, Masker, POOL_CONFIG_KEY, SELF_MANAGED, config_from_json, mask_tasks, scrub,
    unmask,
};
pub use ids::{CONNECTOR_ID_HASH_LEN, CONNECTOR_ID_PREFIX, connector_id};
pub use offsets::{check_create_offsets, normalize_offsets};
pub use plugins::{ManagedPlugin, connector_type, managed_plugins, plugin_matches};
pub use request::{
    Expand, MAX_PATH_NAME_CHARS, decode_path_segment, parse_expand, percent_decode, query_param,
    query_params, unaddressable,
};
pub use status::{
    DownWorkers, ManagedConnector, ManagedInstance, ManagedState, ManagedStatus, ManagedTask,
    UNKNOWN_CONNECT_STATE, UNKNOWN_MANAGED_STATE, WorkerNames, connector_state,
    connector_state_expecting, degrade_for_down_workers, first_line, managed_status,
    mark_down_workers, mark_down_workers_json, name_workers, name_workers_json,
    provisioning_status, unknown_status, worker_name,
};
pub use times::rfc3339;
pub use validate::{MANAGED_CONFIG_TYPES, managed_validation, mask_validation};
