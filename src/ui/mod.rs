//! The department's health dashboard (server-rendered HTML under `/ui/`): its sign-in sessions so far.

pub mod session;
