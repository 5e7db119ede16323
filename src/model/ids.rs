//! Names and identities: workers, pools, connectors.
//!
//! [`PoolName`] and [`ConnectorName`] are newtypes over the validated text so that a pool name is
//! never passed where a connector name is meant; both read as `&str` (`Deref`, `Borrow`,
//! comparisons with text), so code that only reads them needs no change.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name, as given (validated by whoever built it: the config loader or the API).
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                Self(name)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self(name.to_string())
            }
        }

        impl From<&String> for $name {
            fn from(name: &String) -> Self {
                Self(name.clone())
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> Self {
                name.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

name_type!(
    /// A worker pool's name: `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`, at most 24 characters.
    PoolName
);

name_type!(
    /// A connector's name (starting with `<department>-` unless the department's naming rules
    /// say otherwise).
    ConnectorName
);

/// Stable identity of a worker: `<pool>-<n>`, kept across restarts so Connect keeps its task
/// assignment when a worker comes back quickly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId {
    /// The pool.
    pub pool: PoolName,
    /// Index within the pool, from 0.
    pub index: u32,
}

impl WorkerId {
    /// Worker `index` of `pool`.
    pub fn new(pool: impl Into<PoolName>, index: u32) -> Self {
        Self {
            pool: pool.into(),
            index,
        }
    }
}

impl WorkerId {
    /// Parses `<pool>-<n>` as [`WorkerId`]'s `Display` writes it (no leading zeros).
    pub fn parse(text: &str) -> Option<Self> {
        let (pool, index_text) = text.rsplit_once('-')?;
        let index: u32 = index_text.parse().ok()?;
        (!pool.is_empty() && index.to_string() == index_text).then(|| Self::new(pool, index))
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pool, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_with_text_both_ways_and_render_as_given() {
        let pool = PoolName::new("heavy");
        let text = String::from("heavy");
        assert_eq!(pool, "heavy");
        assert_eq!("heavy", pool);
        assert_eq!(pool, text);
        assert_eq!(text, pool);
        assert_ne!(pool, "light");
        assert_eq!(pool.to_string(), "heavy");
        assert_eq!(serde_json::to_string(&pool).unwrap(), "\"heavy\"");
        let connector = ConnectorName::from("dept1-a");
        assert_eq!(connector.as_str(), "dept1-a");
        assert!(connector.starts_with("dept1-"));
    }

    #[test]
    fn worker_ids_parse_back() {
        assert_eq!(
            WorkerId::parse("shared-0"),
            Some(WorkerId::new("shared", 0))
        );
        assert_eq!(
            WorkerId::parse("my-pool-12"),
            Some(WorkerId::new("my-pool", 12))
        );
        for bad in ["shared", "shared-", "-1", "shared-01", "shared-x"] {
            assert_eq!(WorkerId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn worker_ids_render_as_pool_dash_index() {
        assert_eq!(WorkerId::new("heavy", 0).to_string(), "heavy-0");
    }
}
