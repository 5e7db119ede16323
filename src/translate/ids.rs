//! Stable synthetic connector ids (`lcc-...`): the CLI addresses connectors by id, so an id
//! must survive restarts and never change between releases.

use sha2::{Digest, Sha256};

/// Prefix of synthetic connector ids.
pub const CONNECTOR_ID_PREFIX: &str = "lcc-";
/// Length of the hash part of a connector id.
pub const CONNECTOR_ID_HASH_LEN: usize = 8;

/// The stable synthetic id of connector `name` of `department`: `lcc-` and 8 base-36 characters
/// of a SHA-256 over both, so it survives restarts and differs between departments.
pub fn connector_id(department: &str, name: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(department.as_bytes());
    hasher.update([0u8]);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(CONNECTOR_ID_PREFIX.len() + CONNECTOR_ID_HASH_LEN);
    out.push_str(CONNECTOR_ID_PREFIX);
    for _ in 0..CONNECTOR_ID_HASH_LEN {
        out.push(digits[(n % 36) as usize] as char);
        n /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_ids_are_stable_short_and_department_specific() {
        let a = connector_id("dept1", "dept1-x");
        assert_eq!(a, connector_id("dept1", "dept1-x"));
        assert!(a.starts_with("lcc-"));
        assert_eq!(a.len(), 4 + CONNECTOR_ID_HASH_LEN);
        assert_ne!(a, connector_id("dept2", "dept1-x"));
        assert_ne!(a, connector_id("dept1", "dept1-y"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(connector_id("ab", "c"), connector_id("a", "bc"));
        // Pinned: ids must never change between releases (the CLI and scripts store them).
        assert_eq!(
            connector_id("dept1", "dept1-files-source-dev-001"),
            PINNED_ID
        );
    }

    const PINNED_ID: &str = "lcc-99mqedfh";
}
