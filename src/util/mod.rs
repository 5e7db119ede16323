//! Small helpers with one owner each, used across the crate and depending on nothing else in it.
//!
//! * [`backoff`]: exponential backoff with jitter.
//! * [`fs`]: atomic file writes.
//! * [`net`]: free ports for the processes the crate starts.
//! * [`properties`]: Java `.properties` text, written and read.

pub mod backoff;
pub mod fs;
pub mod net;
pub mod properties;
