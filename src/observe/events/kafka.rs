//! Events of the supervisor's own Kafka check.

use super::{Code, Level, TypedEvent};

/// Kafka stopped answering the supervisor's check.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaUnreachable {
    /// What failed.
    pub message: String,
}

impl TypedEvent for KafkaUnreachable {
    fn code(&self) -> Code {
        Code::KafkaUnreachable
    }

    fn message(&self) -> String {
        format!("Kafka does not answer the supervisor: {}", self.message)
    }

    fn level(&self) -> Level {
        Level::Warn
    }
}

/// Kafka answers the supervisor's check again.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaReachable;

impl TypedEvent for KafkaReachable {
    fn code(&self) -> Code {
        Code::KafkaReachable
    }

    fn message(&self) -> String {
        "Kafka answers the supervisor again.".to_string()
    }
}
