//! Service principal with a client secret: azure_identity's `ClientSecretCredential` on our
//! transport and cloud, behind our cache and error classification.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_identity::ClientSecretCredentialOptions;

use crate::cache::TokenCache;
use crate::credential::CredentialOptions;
use crate::error::{Error, Result, into_azure};

/// Provider name used in errors.
pub const PROVIDER: &str = "client secret credential";

/// Inputs of [`ClientSecretCredential::new`].
#[derive(Clone, Debug)]
pub struct ClientSecretOptions {
    /// Tenant id.
    pub tenant_id: String,
    /// Client (application) id.
    pub client_id: String,
    /// The secret (its `Debug` prints `Secret`).
    pub secret: Secret,
    /// Cloud, HTTP, cache.
    pub common: CredentialOptions,
}

/// A service principal authenticating with a secret.
pub struct ClientSecretCredential {
    inner: Arc<azure_identity::ClientSecretCredential>,
    client_id: String,
    cache: TokenCache,
}

impl ClientSecretCredential {
    /// Builds the credential.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when tenant, client id or secret is empty or the HTTP client
    /// cannot be built.
    pub fn new(opts: ClientSecretOptions) -> Result<Arc<Self>> {
        require("tenant id", "AZURE_TENANT_ID / tenantId", &opts.tenant_id)?;
        require(
            "client id",
            "AZURE_CLIENT_ID / aadClientId",
            &opts.client_id,
        )?;
        require(
            "client secret",
            "AZURE_CLIENT_SECRET / aadClientSecret",
            opts.secret.secret(),
        )?;
        let mut client_options = opts.common.http.client_options()?;
        client_options.cloud = Some(opts.common.cloud.sdk_cloud());
        let inner = azure_identity::ClientSecretCredential::new(
            &opts.tenant_id,
            opts.client_id.clone(),
            opts.secret,
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map_err(|e| Error::InvalidConfig {
            field: "client secret credential",
            reason: e.to_string(),
        })?;
        Ok(Arc::new(Self {
            inner,
            client_id: opts.client_id,
            cache: TokenCache::new(opts.common.refresh_before),
        }))
    }
}

pub(crate) fn require(what: &'static str, names: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::InvalidConfig {
            field: what,
            reason: format!("empty: set {names}"),
        });
    }
    Ok(())
}

impl std::fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache
            .get_or_fetch(scopes, || async {
                self.inner
                    .get_token(scopes, options)
                    .await
                    .map_err(|e| into_azure(Error::from_identity(PROVIDER, e)))
            })
            .await
    }
}
