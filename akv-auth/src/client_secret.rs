//! Service principal with a client secret: azure_identity's `ClientSecretCredential` on our
//! transport and cloud, behind our cache and error classification.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_identity::ClientSecretCredentialOptions;

use crate::credential::CredentialOptions;
use crate::error::Result;
use crate::sdk_credential::{SdkCredential, require, require_service_principal};

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
    sdk: SdkCredential,
    client_id: String,
}

impl ClientSecretCredential {
    /// Builds the credential.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when tenant, client id or secret is empty or the HTTP client
    /// cannot be built.
    pub fn new(opts: ClientSecretOptions) -> Result<Arc<Self>> {
        require_service_principal(&opts.tenant_id, &opts.client_id)?;
        require(
            "client secret",
            "AZURE_CLIENT_SECRET / aadClientSecret",
            opts.secret.secret(),
        )?;
        let sdk = SdkCredential::build(
            PROVIDER,
            &opts.common,
            &opts.common.cloud,
            |client_options| {
                azure_identity::ClientSecretCredential::new(
                    &opts.tenant_id,
                    opts.client_id.clone(),
                    opts.secret,
                    Some(ClientSecretCredentialOptions { client_options }),
                )
            },
        )?;
        Ok(Arc::new(Self {
            sdk,
            client_id: opts.client_id,
        }))
    }
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
        self.sdk.get_token(scopes, options).await
    }
}
