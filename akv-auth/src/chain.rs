//! `AUTH_TYPE=environment-azidentity`: the default chain, in place of the Go SDK's
//! `DefaultAzureCredential` (azure_identity 1.0 has none):
//!
//! ```text
//! environment (secret → certificate → username/password)
//!   → workload identity (AZURE_FEDERATED_TOKEN_FILE)
//!     → managed identity (IMDS / NMI, AZURE_CLIENT_ID as user-assigned id)
//! ```
//!
//! A link that is not configured is skipped, with the reason recorded. A configured link is
//! tried; as in the Go SDK, an authentication failure of a configured environment or workload
//! identity link ends the chain (falling through would hide a misconfiguration behind an IMDS
//! timeout). Errors list every link and why it was skipped or failed.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use crate::credential::CredentialOptions;
use crate::env::{AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID, Env};
use crate::environment::service_principal;
use crate::error::{Error, Result, chain_text, into_azure};
use crate::managed_identity::{
    ImdsOptions, ManagedIdentityCredential, ManagedIdentityOptions, UserAssignedId,
};
use crate::workload_identity::{WorkloadIdentityCredential, WorkloadIdentityOptions};

/// Link names.
pub const ENVIRONMENT: &str = "environment";
/// Link names.
pub const WORKLOAD_IDENTITY: &str = "workload identity";
/// Link names.
pub const MANAGED_IDENTITY: &str = "managed identity";

/// Inputs of [`DefaultChain::new`].
#[derive(Clone, Debug, Default)]
pub struct DefaultChainOptions {
    /// The variables.
    pub env: Env,
    /// Cloud, HTTP, cache.
    pub common: CredentialOptions,
    /// IMDS options for the managed identity link.
    pub imds: ImdsOptions,
}

/// The default chain.
#[derive(Debug)]
pub struct DefaultChain {
    skipped: Vec<(&'static str, String)>,
    links: Vec<(&'static str, Arc<dyn TokenCredential>)>,
}

impl DefaultChain {
    /// Builds every configured link.
    ///
    /// # Errors
    ///
    /// Only for a link that is configured but broken (e.g. `AZURE_CLIENT_SECRET` without
    /// `AZURE_TENANT_ID`, an unreadable certificate): a startup error, as upstream exits 1.
    pub fn new(opts: DefaultChainOptions) -> Result<Arc<Self>> {
        let env = &opts.env;
        let mut skipped = Vec::new();
        let mut links: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();

        let has_ids = env.is_set(AZURE_TENANT_ID) && env.is_set(AZURE_CLIENT_ID);
        match service_principal(env, &opts.common) {
            Ok(Some(c)) => links.push((ENVIRONMENT, c)),
            Ok(None) => skipped.push((
                ENVIRONMENT,
                "not configured (set AZURE_CLIENT_SECRET, AZURE_CERTIFICATE_PATH or AZURE_USERNAME+AZURE_PASSWORD with AZURE_TENANT_ID and AZURE_CLIENT_ID)".to_owned(),
            )),
            Err(e) if !has_ids => skipped.push((ENVIRONMENT, format!("incomplete: {e}"))),
            Err(e) => return Err(e),
        }

        if env.is_set(AZURE_FEDERATED_TOKEN_FILE) {
            let wi = WorkloadIdentityCredential::new(WorkloadIdentityOptions {
                env: env.clone(),
                common: opts.common.clone(),
                ..Default::default()
            });
            match wi {
                Ok(c) => links.push((WORKLOAD_IDENTITY, c)),
                Err(e) => skipped.push((WORKLOAD_IDENTITY, format!("incomplete: {e}"))),
            }
        } else {
            skipped.push((
                WORKLOAD_IDENTITY,
                "AZURE_FEDERATED_TOKEN_FILE not set (label the pod azure.workload.identity/use=true)".to_owned(),
            ));
        }

        let mi = ManagedIdentityCredential::new(ManagedIdentityOptions {
            user_assigned: env.get(AZURE_CLIENT_ID).map(UserAssignedId::ClientId),
            imds: opts.imds,
            env: env.clone(),
            common: opts.common,
        })?;
        links.push((MANAGED_IDENTITY, mi));
        Ok(Arc::new(Self { skipped, links }))
    }

    /// Names of the links that will be tried, in order.
    pub fn links(&self) -> Vec<&'static str> {
        self.links.iter().map(|(n, _)| *n).collect()
    }

    /// Links skipped at construction, with the reason.
    pub fn skipped(&self) -> &[(&'static str, String)] {
        &self.skipped
    }
}

#[async_trait::async_trait]
impl TokenCredential for DefaultChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let mut attempts = self.skipped.clone();
        // The first configured link decides (see module docs).
        if let Some((name, link)) = self.links.first() {
            match link.get_token(scopes, options).await {
                Ok(t) => return Ok(t),
                Err(e) => attempts.push((name, chain_text(&e))),
            }
        }
        let order = |n: &str| {
            [ENVIRONMENT, WORKLOAD_IDENTITY, MANAGED_IDENTITY]
                .iter()
                .position(|x| *x == n)
        };
        attempts.sort_by_key(|(n, _)| order(n));
        Err(into_azure(Error::ChainExhausted { attempts }))
    }
}
