//! Who may do what in a vault: access policies and RBAC role assignments, down to a single
//! object, so tests can prove least privilege.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::store::ObjectKind;

/// A data-plane operation the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Read an object (a secret's value, a certificate, a key's public part).
    Get,
    /// List objects or versions (metadata only).
    List,
    /// Write a secret.
    Set,
}

impl Operation {
    fn word(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Set => "set",
        }
    }
}

/// Permissions per object kind, as in an access policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Secret permissions.
    #[serde(default)]
    pub secrets: BTreeSet<Operation>,
    /// Certificate permissions.
    #[serde(default)]
    pub certificates: BTreeSet<Operation>,
    /// Key permissions.
    #[serde(default)]
    pub keys: BTreeSet<Operation>,
}

/// The display names of every built-in Key Vault RBAC role [`Permissions::for_role`] knows.
pub const ROLES: &[&str] = &[
    "Key Vault Administrator",
    "Key Vault Secrets Officer",
    "Key Vault Secrets User",
    "Key Vault Certificate User",
    "Key Vault Certificates Officer",
    "Key Vault Crypto User",
    "Key Vault Crypto Officer",
    "Key Vault Reader",
];

impl Permissions {
    /// `get` and `list` on secrets, certificates and keys: what the akv2k8s controller needs.
    pub fn read_all() -> Self {
        let rw: BTreeSet<_> = [Operation::Get, Operation::List].into();
        Self {
            secrets: rw.clone(),
            certificates: rw.clone(),
            keys: rw,
        }
    }

    /// Only `get` on secrets.
    pub fn secrets_get() -> Self {
        Self {
            secrets: [Operation::Get].into(),
            ..Self::default()
        }
    }

    /// Everything the fake serves, including `set` on secrets.
    pub fn all() -> Self {
        let mut p = Self::read_all();
        p.secrets.insert(Operation::Set);
        p
    }

    /// The permissions of a built-in Key Vault RBAC role, by its display name (one of
    /// [`ROLES`], exact case).
    pub fn for_role(role: &str) -> Option<Self> {
        let gl: BTreeSet<_> = [Operation::Get, Operation::List].into();
        let list: BTreeSet<_> = [Operation::List].into();
        Some(match role {
            "Key Vault Administrator" => Self::all(),
            "Key Vault Secrets Officer" => Self {
                secrets: [Operation::Get, Operation::List, Operation::Set].into(),
                ..Self::default()
            },
            "Key Vault Secrets User" => Self {
                secrets: gl,
                ..Self::default()
            },
            "Key Vault Certificate User" => Self::read_all(),
            "Key Vault Certificates Officer" => Self {
                certificates: gl,
                ..Self::default()
            },
            "Key Vault Crypto User" | "Key Vault Crypto Officer" => Self {
                keys: gl,
                ..Self::default()
            },
            "Key Vault Reader" => Self {
                secrets: list,
                certificates: gl.clone(),
                keys: gl,
            },
            _ => return None,
        })
    }

    pub(crate) fn allows(&self, kind: ObjectKind, op: Operation) -> bool {
        match kind {
            ObjectKind::Secret => self.secrets.contains(&op),
            ObjectKind::Certificate => self.certificates.contains(&op),
            ObjectKind::Key => self.keys.contains(&op),
        }
    }
}

/// A grant to one principal (by object id), for the whole vault or one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Object id of the principal.
    pub object_id: String,
    /// What it may do.
    pub permissions: Permissions,
    /// `None` for the vault; `Some((kind, name))` for one object (RBAC object scope).
    pub scope: Option<(ObjectKind, String)>,
}

impl Grant {
    fn covers(&self, oid: &str, kind: ObjectKind, name: Option<&str>, op: Operation) -> bool {
        if !self.object_id.eq_ignore_ascii_case(oid) || !self.permissions.allows(kind, op) {
            return false;
        }
        match (&self.scope, name) {
            (None, _) => true,
            (Some((k, n)), Some(name)) => *k == kind && n.eq_ignore_ascii_case(name),
            (Some(_), None) => false,
        }
    }
}

/// Whether `grants` allow `oid` to do `op` on `kind` (object `name`, or the collection).
pub(crate) fn allowed(
    grants: &[Grant],
    oid: &str,
    kind: ObjectKind,
    name: Option<&str>,
    op: Operation,
) -> bool {
    grants.iter().any(|g| g.covers(oid, kind, name, op))
}

/// `secrets get`: the wording of access-policy refusals.
pub(crate) fn policy_words(kind: ObjectKind, op: Operation) -> String {
    format!("{} {}", kind.collection(), op.word())
}

/// The RBAC data action named in RBAC refusals.
pub(crate) fn rbac_action(kind: ObjectKind, op: Operation) -> &'static str {
    match (kind, op) {
        (ObjectKind::Secret, Operation::Get) => {
            "Microsoft.KeyVault/vaults/secrets/getSecret/action"
        }
        (ObjectKind::Secret, Operation::List) => {
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
        }
        (ObjectKind::Secret, Operation::Set) => {
            "Microsoft.KeyVault/vaults/secrets/setSecret/action"
        }
        (ObjectKind::Certificate, _) => "Microsoft.KeyVault/vaults/certificates/read",
        (ObjectKind::Key, _) => "Microsoft.KeyVault/vaults/keys/read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_scoped_grants_cover_only_their_object() {
        let g = Grant {
            object_id: "A".into(),
            permissions: Permissions::for_role("Key Vault Secrets User").expect("role"),
            scope: Some((ObjectKind::Secret, "db-pass".into())),
        };
        let grants = [g];
        assert!(allowed(
            &grants,
            "a",
            ObjectKind::Secret,
            Some("DB-PASS"),
            Operation::Get
        ));
        assert!(!allowed(
            &grants,
            "a",
            ObjectKind::Secret,
            Some("other"),
            Operation::Get
        ));
        assert!(!allowed(
            &grants,
            "a",
            ObjectKind::Secret,
            None,
            Operation::List
        ));
        assert!(!allowed(
            &grants,
            "b",
            ObjectKind::Secret,
            Some("db-pass"),
            Operation::Get
        ));
        assert!(!allowed(
            &grants,
            "a",
            ObjectKind::Key,
            Some("db-pass"),
            Operation::Get
        ));
        assert!(Permissions::for_role("Owner").is_none());
    }

    #[test]
    fn every_listed_role_resolves() {
        for role in ROLES {
            assert!(Permissions::for_role(role).is_some(), "{role}");
        }
        let unique: BTreeSet<_> = ROLES.iter().collect();
        assert_eq!(unique.len(), ROLES.len(), "a role is listed twice");
        assert!(Permissions::for_role("key vault reader").is_none());
    }
}
