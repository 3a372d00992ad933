//! Azure Workload Identity: the projected service-account token in
//! `AZURE_FEDERATED_TOKEN_FILE` is exchanged for an Entra token (client assertion). The file is
//! re-read on **every** exchange, because kubelet rotates it (azure_identity's own credential
//! caches it for 10 minutes). `AZURE_AUTHORITY_HOST` selects the authority when set.

use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientMethodOptions;
use azure_identity::{ClientAssertion, ClientAssertionCredentialOptions};

use crate::credential::CredentialOptions;
use crate::env::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID, Env,
};
use crate::error::{Error, Result, into_azure};
use crate::sdk_credential::{SdkCredential, require};

/// Provider name used in errors.
pub const PROVIDER: &str = "workload identity credential";

/// Inputs of [`WorkloadIdentityCredential::new`].
#[derive(Clone, Debug, Default)]
pub struct WorkloadIdentityOptions {
    /// Tenant id; `None` = `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// Client id; `None` = `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// Token file; `None` = `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: Option<PathBuf>,
    /// Authority host; `None` = `AZURE_AUTHORITY_HOST`, else the cloud's.
    pub authority_host: Option<String>,
    /// Environment the `None`s are read from.
    pub env: Env,
    /// Cloud, HTTP, cache.
    pub common: CredentialOptions,
}

/// Reads the token file each time Entra asks for an assertion.
#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
}

#[async_trait::async_trait]
impl ClientAssertion for TokenFile {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
            into_azure(Error::ReadFile {
                what: "federated token file",
                path: self.path.clone(),
                source: e,
            })
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(into_azure(Error::InvalidConfig {
                field: AZURE_FEDERATED_TOKEN_FILE,
                reason: format!("{} is empty", self.path.display()),
            }));
        }
        Ok(token.to_owned())
    }
}

/// Workload identity federation.
pub struct WorkloadIdentityCredential {
    sdk: SdkCredential,
    client_id: String,
    token_file: PathBuf,
}

impl WorkloadIdentityCredential {
    /// Builds the credential (the file is read at the first exchange).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the missing variable.
    pub fn new(opts: WorkloadIdentityOptions) -> Result<Arc<Self>> {
        let missing = |name: &'static str| Error::InvalidConfig {
            field: name,
            reason: format!(
                "not set: set {name} (the workload identity webhook injects it when the pod is labelled azure.workload.identity/use=true)"
            ),
        };
        let tenant_id = opts
            .tenant_id
            .or_else(|| opts.env.get(AZURE_TENANT_ID))
            .ok_or_else(|| missing(AZURE_TENANT_ID))?;
        let client_id = opts
            .client_id
            .or_else(|| opts.env.get(AZURE_CLIENT_ID))
            .ok_or_else(|| missing(AZURE_CLIENT_ID))?;
        let token_file = opts
            .token_file
            .or_else(|| opts.env.get(AZURE_FEDERATED_TOKEN_FILE).map(PathBuf::from))
            .ok_or_else(|| missing(AZURE_FEDERATED_TOKEN_FILE))?;
        require("tenant id", AZURE_TENANT_ID, &tenant_id)?;
        require("client id", AZURE_CLIENT_ID, &client_id)?;
        let mut cloud = opts.common.cloud.clone();
        if let Some(host) = opts
            .authority_host
            .or_else(|| opts.env.get(AZURE_AUTHORITY_HOST))
        {
            let host = if host.contains("://") {
                host
            } else {
                format!("https://{host}")
            };
            cloud.authority_host = host.trim_end_matches('/').to_owned();
        }
        let assertion = TokenFile {
            path: token_file.clone(),
        };
        let sdk = SdkCredential::build(PROVIDER, &opts.common, &cloud, |client_options| {
            azure_identity::ClientAssertionCredential::new(
                tenant_id,
                client_id.clone(),
                assertion,
                Some(ClientAssertionCredentialOptions { client_options }),
            )
        })?;
        Ok(Arc::new(Self {
            sdk,
            client_id,
            token_file,
        }))
    }
}

impl std::fmt::Debug for WorkloadIdentityCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentityCredential")
            .field("client_id", &self.client_id)
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for WorkloadIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.sdk.get_token(scopes, options).await
    }
}
