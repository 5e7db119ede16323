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
//! * [`api`] is the supervisor's HTTP server.
//! * [`dev`] is the embedded single-node KRaft broker for `dev` and the tests.
//! * [`app`] wires them together for the `run` and `dev` commands.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod cgroup;
pub mod config;
pub mod connect;
pub mod dev;
pub mod model;
pub mod observe;
pub mod process;
pub mod runtime;
pub mod supervisor;
pub mod worker;
