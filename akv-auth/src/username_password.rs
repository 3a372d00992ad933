//! Username/password (OAuth 2.0 resource owner password credentials, "ROPC"): go-autorest's
//! third choice in `environment` mode. azure_identity 1.0 has no such credential, so this is
//! one small form POST to the tenant's v2 token endpoint. Entra's error body is parsed here
//! (we can: it is our own request), so the `AADSTS` code and HTTP status are both reported.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};

use crate::cache::TokenCache;
use crate::credential::CredentialOptions;
use crate::error::Result;
use crate::http::{HttpOptions, host_of};
use crate::sdk_credential::require;
use crate::token_endpoint::{exchange, parse_token_response};

/// Provider name used in errors.
pub const PROVIDER: &str = "username/password credential";

/// Inputs of [`UsernamePasswordCredential::new`].
#[derive(Clone, Debug)]
pub struct UsernamePasswordOptions {
    /// Tenant id.
    pub tenant_id: String,
    /// Client id of the (public) application.
    pub client_id: String,
    /// User principal name.
    pub username: String,
    /// Password (its `Debug` prints `Secret`).
    pub password: Secret,
    /// Cloud, HTTP, cache.
    pub common: CredentialOptions,
}

/// A user signing in with username and password.
pub struct UsernamePasswordCredential {
    http: reqwest::Client,
    http_options: HttpOptions,
    endpoint: String,
    client_id: String,
    username: String,
    password: Secret,
    cache: TokenCache,
}

impl UsernamePasswordCredential {
    /// Builds the credential.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for empty settings or an HTTP client that cannot be built.
    pub fn new(opts: UsernamePasswordOptions) -> Result<Arc<Self>> {
        require("tenant id", "AZURE_TENANT_ID", &opts.tenant_id)?;
        require("client id", "AZURE_CLIENT_ID", &opts.client_id)?;
        require("username", "AZURE_USERNAME", &opts.username)?;
        require("password", "AZURE_PASSWORD", opts.password.secret())?;
        Ok(Arc::new(Self {
            http: opts.common.http.reqwest_client(None)?,
            http_options: opts.common.http.clone(),
            endpoint: opts.common.cloud.token_endpoint(&opts.tenant_id),
            client_id: opts.client_id,
            username: opts.username,
            password: opts.password,
            cache: TokenCache::new(opts.common.refresh_before),
        }))
    }

    async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let host = host_of(&self.endpoint);
        let mut scope = scopes.join(" ");
        scope.push_str(" offline_access openid profile");
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("grant_type", "password")
            .append_pair("username", &self.username)
            .append_pair("password", self.password.secret())
            .append_pair("scope", &scope)
            .finish();
        let request = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        let answer = exchange(request).await.map_err(|f| {
            self.http_options
                .classify("token request", &host, f.into_source())
        })?;
        parse_token_response(PROVIDER, &host, answer.status, &answer.text)
    }
}

impl std::fmt::Debug for UsernamePasswordCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsernamePasswordCredential")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for UsernamePasswordCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache.get_or_try(scopes, || self.fetch(scopes)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_user_but_never_the_password() {
        testkit::install_crypto_provider();
        let cred = UsernamePasswordCredential::new(UsernamePasswordOptions {
            tenant_id: "t".into(),
            client_id: "c".into(),
            username: "user@example.com".into(),
            password: Secret::new("hunter2"),
            common: CredentialOptions::default(),
        })
        .expect("built");
        let text = format!("{cred:?}");
        assert!(text.contains("user@example.com"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
