//! Events of the continuous GitOps mode.

use super::{Code, Level, TypedEvent};

/// The continuous GitOps mode saw a connector differ from its folder (or healed it).
#[derive(Debug, Clone, PartialEq)]
pub struct GitopsDrift {
    /// The connector.
    pub connector: String,
    /// Bounded kind: `missing`, `config`, `state`, `renamed`, `extra`, `unowned`.
    pub kind: &'static str,
    /// Whether heal mode put it back.
    pub healed: bool,
}

impl TypedEvent for GitopsDrift {
    fn code(&self) -> Code {
        if self.healed {
            Code::GitopsHealed
        } else {
            Code::GitopsDrift
        }
    }

    fn message(&self) -> String {
        let Self {
            connector, kind, ..
        } = self;
        if self.healed {
            format!(
                "Connector {connector} was put back as its GitOps folder defines it ({kind} drift healed)."
            )
        } else {
            format!("Connector {connector} differs from its GitOps folder ({kind} drift).")
        }
    }

    fn level(&self) -> Level {
        if self.healed {
            Level::Info
        } else {
            Level::Warn
        }
    }

    concerns!(connector);
}
