//! Events of the guardrails' admission of connector creates and updates (rule ids and keys
//! only: messages of violations may quote config values).

use super::{Code, Level, TypedEvent};
use crate::observe::Metrics;

/// The guardrails refused a connector create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRejected {
    /// The connector.
    pub connector: String,
    /// `create` or `update`.
    pub operation: &'static str,
    /// Who asked (key id or token name).
    pub principal: String,
    /// The broken rules' ids (built-in ids, or Rego policy names).
    pub rules: Vec<String>,
}

impl TypedEvent for PolicyRejected {
    fn code(&self) -> Code {
        Code::PolicyRejected
    }

    fn message(&self) -> String {
        let Self {
            connector,
            operation,
            principal,
            rules,
        } = self;
        format!(
            "The {operation} of connector {connector} by {principal} was refused by the guardrails: {}.",
            rules.join(", ")
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("refused")
    }

    fn record(&self, metrics: &Metrics) {
        metrics.policy_refused(&self.rules);
    }

    concerns!(connector, principal);
}

/// The platform added defaults to a connector's config (audit trail).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultsApplied {
    /// The connector.
    pub connector: String,
    /// `create` or `update`.
    pub operation: &'static str,
    /// Who asked.
    pub principal: String,
    /// Keys and values added (never secrets: defaults are platform settings).
    pub defaults: Vec<(String, String)>,
}

impl TypedEvent for DefaultsApplied {
    fn code(&self) -> Code {
        Code::PolicyDefaultsApplied
    }

    fn message(&self) -> String {
        let Self {
            connector,
            operation,
            principal,
            defaults,
        } = self;
        format!(
            "Platform defaults added to connector {connector} ({operation} by {principal}): {}.",
            defaults
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, principal);
}

/// Literal secrets of a connector were moved to its secret file (keys only).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsExternalized {
    /// The connector.
    pub connector: String,
    /// `create` or `update`.
    pub operation: &'static str,
    /// Who asked.
    pub principal: String,
    /// The config keys whose values moved.
    pub keys: Vec<String>,
}

impl TypedEvent for SecretsExternalized {
    fn code(&self) -> Code {
        Code::SecretsExternalized
    }

    fn message(&self) -> String {
        let Self {
            connector,
            operation,
            principal,
            keys,
        } = self;
        format!(
            "Secrets of connector {connector} ({operation} by {principal}) moved to its secret file: {}.",
            keys.join(", ")
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, principal);
}
