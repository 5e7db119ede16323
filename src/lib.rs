//! connect-supervisor: one daemon per department that launches Apache Kafka Connect worker JVMs,
//! holds each to an enforced CPU/memory quota, keeps them alive, and serves the same REST API as
//! Confluent Cloud's fully-managed connectors.
//!
//! # Layout
//!
//! Every module, with what it owns. The module graph has no cycle (`.ci/modgraph.py` prints it
//! and CI fails on one): lower modules never call back into the ones above them, and [`model`]
//! and [`util`] depend on nothing else in the crate.
//!
//! Shared foundations
//! * [`model`]: the shared domain types: the validated department and its settings (units,
//!   budget, ids, secrets and masks, supervision, observe, guardrail rules, auth), worker states.
//! * [`util`]: one owner each for Java properties, backoff with jitter, atomic file writes and
//!   free ports.
//! * [`config`] reads the department file into a validated [`model::Department`].
//!
//! Workers
//! * [`runtime`] locates and materialises the Connect runtime declared in
//!   `images/connect-runtime/pom.xml`.
//! * [`cds`] builds the workers' class-data-sharing archive.
//! * [`process`] spawns children from a dedicated thread, stops whole process groups, and
//!   installs the shutdown signals.
//! * [`cgroup`] enforces worker limits (v1, v2 with an injectable root, or none).
//! * [`lock`] keeps one supervisor per department on a host.
//! * [`worker`] plans one worker (properties, JVM command line) and probes its readiness.
//! * [`supervisor`] runs the department's pools of workers (pure lifecycle core, async shell).
//! * [`pod`] runs a department on Kubernetes (a worker pod's entrypoint, pod discovery).
//! * [`observe`] owns the typed events, the metrics registry, worker logs and the audit trail.
//!
//! Requests
//! * [`api`] is the supervisor's HTTP server: routes (one table for routing, roles and audit),
//!   status codes and error bodies, and the dashboard ([`api::ui`]).
//! * [`auth`] verifies the API's credentials and maps paths outside the route table to roles.
//! * [`session`] issues and verifies the session tokens of the Confluent CLI's login.
//! * [`connectors`] is the request flow: the department's connectors across pools (pools,
//!   placement, reads, admission by the guardrails, writes, offsets requests).
//! * [`policy`] reviews connectors against the department's guardrails (pure).
//! * [`secret_store`] keeps the per-connector secret files of `externalize` mode.
//! * [`connect`] is a typed client of a worker's Connect REST API.
//! * [`translate`] turns Connect's shapes into the managed API's, masking secrets.
//! * [`connector_ids`] keeps the managed ids of connectors, one per incarnation.
//! * [`offsets`] records managed-style offsets requests.
//! * [`healing`] watches the connectors: status poll, automatic restarts within a budget, the
//!   health summary.
//!
//! Commands
//! * [`app`] wires them together for the `run` and `dev` commands (the composition root).
//! * [`dev`] is the embedded single-node KRaft broker for `dev` and the tests.
//! * [`remote`] is a running supervisor as the command-line tools reach it (credentials, the
//!   managed list and what runs).
//! * [`gitops`] loads connector files and runs `validate`, `plan`, `apply` and drift checks.
//! * [`migrate`] moves connectors to fully-managed ones (plan, export, cut-over, rename).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod cds;
pub mod cgroup;
pub mod config;
pub mod connect;
pub mod connector_ids;
pub mod connectors;
pub mod dev;
pub mod gitops;
pub mod healing;
pub mod lock;
pub mod migrate;
pub mod model;
pub mod observe;
pub mod offsets;
pub mod pod;
pub mod policy;
pub mod process;
pub mod remote;
pub mod runtime;
pub mod secret_store;
pub mod session;
pub mod supervisor;
pub mod translate;
pub mod util;
pub mod worker;
