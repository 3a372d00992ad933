//! An azure_identity credential on our transport and cloud, behind our [`TokenCache`] and
//! error classification: the shared body of the client secret, client certificate and
//! workload identity providers.
//!
//! ```text
//! get_token ─▶ TokenCache ─(miss / refresh)─▶ azure_identity credential ─▶ Entra ID
//!                                                 │ error
//!                                                 ▼
//!                          ours (file, config)? keep it : Error::from_identity(provider, e)
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientOptions;

use crate::cache::TokenCache;
use crate::cloud::CloudEnvironment;
use crate::credential::CredentialOptions;
use crate::error::{Error, Result, into_azure};

/// An SDK credential with a per-scope cache and `provider`-named errors.
pub(crate) struct SdkCredential {
    inner: Arc<dyn TokenCredential>,
    provider: &'static str,
    cache: TokenCache,
}

impl SdkCredential {
    /// Builds the SDK credential with `build`, handing it client options for our transport
    /// (resolve override, roots, bounded retries) and `cloud`'s authority host.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the HTTP client cannot be built or `build` fails (the
    /// field is `provider`).
    pub(crate) fn build<C, F>(
        provider: &'static str,
        common: &CredentialOptions,
        cloud: &CloudEnvironment,
        build: F,
    ) -> Result<Self>
    where
        C: TokenCredential + 'static,
        F: FnOnce(ClientOptions) -> azure_core::Result<Arc<C>>,
    {
        let mut client_options = common.http.client_options()?;
        client_options.cloud = Some(cloud.sdk_cloud());
        let inner = build(client_options).map_err(|e| Error::InvalidConfig {
            field: provider,
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            provider,
            cache: TokenCache::new(common.refresh_before),
        })
    }

    /// The cached token for `scopes`, or a fresh one from the SDK credential.
    pub(crate) async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache
            .get_or_fetch(scopes, || async {
                self.inner
                    .get_token(scopes, options)
                    .await
                    .map_err(|e| classify(self.provider, e))
            })
            .await
    }
}

/// A failure our own client assertion reported (unreadable or empty token file) is already
/// actionable: keep it on top. Anything else is Entra's or the SDK's: classify it.
fn classify(provider: &'static str, e: azure_core::Error) -> azure_core::Error {
    match Error::find(&e) {
        Some(Error::ReadFile { .. } | Error::InvalidConfig { .. }) => e,
        _ => into_azure(Error::from_identity(provider, e)),
    }
}

/// [`Error::InvalidConfig`] for an empty (or blank) required setting, naming where to set it.
pub(crate) fn require(what: &'static str, names: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::InvalidConfig {
            field: what,
            reason: format!("empty: set {names}"),
        });
    }
    Ok(())
}

/// Tenant and client id of a service principal from the cloud config or the environment.
pub(crate) fn require_service_principal(tenant_id: &str, client_id: &str) -> Result<()> {
    require("tenant id", "AZURE_TENANT_ID / tenantId", tenant_id)?;
    require("client id", "AZURE_CLIENT_ID / aadClientId", client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: Error) -> azure_core::Error {
        into_azure(e)
    }

    #[test]
    fn our_file_errors_stay_on_top_and_sdk_errors_are_classified() {
        let ours = classify(
            "p",
            wrapped(Error::InvalidConfig {
                field: "AZURE_FEDERATED_TOKEN_FILE",
                reason: "empty".into(),
            }),
        );
        assert_eq!(Error::find(&ours).map(Error::kind), Some("invalid_config"));
        let sdk = classify(
            "p",
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "AADSTS7000215: Invalid client secret provided.",
            ),
        );
        let found = Error::find(&sdk).expect("classified");
        assert_eq!(found.kind(), "identity");
        assert_eq!(found.aadsts(), Some(7_000_215));
    }

    #[test]
    fn blank_settings_are_refused_with_where_to_set_them() {
        let err = require_service_principal("t", " ").expect_err("blank client id");
        assert!(
            err.to_string().contains("AZURE_CLIENT_ID / aadClientId"),
            "{err}"
        );
        require_service_principal("t", "c").expect("both set");
    }
}
