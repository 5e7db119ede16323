//! connect-supervisor: one daemon per department that launches Apache Kafka Connect worker JVMs,
//! holds each to an enforced CPU/memory quota, keeps them alive, and serves the same REST API as
//! Confluent Cloud's fully-managed connectors.
//!
//! # Layout
//!
//! * [`config`] reads the department file into a validated [`model::Department`].
//! * [`runtime`] locates and materialises the Connect runtime declared in
//!   `images/connect-runtime/pom.xml`.
//! * [`process`] spawns children from a dedicated thread and stops whole process groups.
//! * [`worker`] plans one worker (properties, JVM command line) and probes its readiness.
//! * [`supervisor`] runs the department's pools of workers (pure lifecycle core, async shell).
//! * [`cgroup`] enforces worker limits (v1, v2 with an injectable root, or none).
//! * [`observe`] owns the typed events and the metrics registry.
//! * [`connect`] is a typed client of a worker's Connect REST API.
//! * [`translate`] turns Connect's shapes into the managed API's, masking secrets.
//! * [`connector_ids`] keeps the managed ids of connectors, one per incarnation.
//! * [`connectors`] is the request flow: the department's connectors across pools (placement,
//!   reads, admission by the guardrails, writes, offsets requests).
//! * [`offsets`] records managed-style offsets requests.
//! * [`api`] is the supervisor's HTTP server.
//! * [`auth`] holds the API's credentials and roles.
//! * [`dev`] is the embedded single-node KRaft broker for `dev` and the tests.
//! * [`app`] wires them together for the `run` and `dev` commands.
//! * [`policy`] reviews connectors against the department's guardrails (pure).
//! * [`gitops`] loads connector files and runs `connect-supervisor validate`.
//! * [`healing`] watches the connectors: status poll, automatic restarts within a budget, the
//!   health summary.
//! * [`api::ui`] is the department's health dashboard (server-rendered HTML under `/ui/`), served by the API layer.
//! * [`secret_store`] keeps the per-connector secret files of `externalize` mode.
//! * [`session`] issues and verifies the session tokens of the Confluent CLI's login.
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
