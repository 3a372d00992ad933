//! The Key Vault port: what the controller and the launcher need from Key Vault, and nothing
//! more. Implemented on the Azure SDK by [`crate::azure`], and wrapped by the shared read
//! plane in [`crate::cache`].

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::object::{IdentityRef, ObjectKind, ObjectMeta, ObjectRef, VaultObject, VaultUrl};

/// Reads objects of Key Vault.
#[async_trait::async_trait]
pub trait KeyVault: Send + Sync + fmt::Debug {
    /// Fetch one object; latest version when `obj.version` is `None`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::GetObject`] with Key Vault's status and code (404 for a missing or
    /// deleted object, 403 for a disabled one or missing rights, 429 when throttled).
    async fn get(&self, obj: &ObjectRef) -> Result<VaultObject>;

    /// Object metadata only (no values), for change detection.
    ///
    /// # Errors
    ///
    /// [`crate::Error::ListObjects`].
    async fn list(&self, vault: &VaultUrl, kind: ObjectKind) -> Result<Vec<ObjectMeta>>;
}

/// Hands out a [`KeyVault`] per vault and identity.
pub trait KeyVaultProvider: Send + Sync + fmt::Debug {
    /// The reader of `url` as `identity`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidConfig`] for an unknown identity, [`crate::Error::BuildClient`]
    /// when the SDK client cannot be built.
    fn vault(&self, url: &VaultUrl, identity: &IdentityRef) -> Result<Arc<dyn KeyVault>>;
}
