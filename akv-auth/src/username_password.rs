//! Username/password (OAuth 2.0 resource owner password credentials, "ROPC"): go-autorest's
//! third choice in `environment` mode. azure_identity 1.0 has no such credential, so this is
//! one small form POST to the tenant's v2 token endpoint. Entra's error body is parsed here
//! (we can: it is our own request), so the `AADSTS` code and HTTP status are both reported.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use serde::Deserialize;

use crate::cache::TokenCache;
use crate::client_secret::require;
use crate::credential::CredentialOptions;
use crate::error::{Error, Result, aadsts_code, aadsts_hint, into_azure};
use crate::http::HttpOptions;

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
        let host = reqwest::Url::parse(&self.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let mut scope = scopes.join(" ");
        scope.push_str(" offline_access openid profile");
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("grant_type", "password")
            .append_pair("username", &self.username)
            .append_pair("password", self.password.secret())
            .append_pair("scope", &scope)
            .finish();
        let resp = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.http_options.classify("token request", &host, e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| self.http_options.classify("token request", &host, e))?;
        parse_token_response(PROVIDER, &host, status, &text)
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Parses an Entra token endpoint answer (v2 or v1 shape).
pub(crate) fn parse_token_response(
    provider: &'static str,
    host: &str,
    status: u16,
    text: &str,
) -> Result<AccessToken> {
    if status == 200 {
        let body: TokenBody = serde_json::from_str(text).map_err(|_| Error::Response {
            operation: "token request",
            host: host.to_owned(),
            reason: "the success body is not a token response".into(),
        })?;
        let secs = body.expires_in.as_ref().and_then(number).unwrap_or(3599);
        return Ok(AccessToken::new(
            body.access_token,
            OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(secs),
        ));
    }
    let parsed: Option<ErrorBody> = serde_json::from_str(text).ok();
    let description = parsed
        .as_ref()
        .map(|b| b.error_description.as_str())
        .unwrap_or_default();
    let aadsts = aadsts_code(description);
    let first_line = description.split(['\r', '\n']).next().unwrap_or_default();
    let hint = match aadsts {
        Some(code) => format!("{}; Entra said: {first_line}", aadsts_hint(code)),
        None => match &parsed {
            Some(b) if !b.error.is_empty() => format!("error `{}`", b.error),
            _ => "the token endpoint's answer is not an Entra error body".to_owned(),
        },
    };
    Err(Error::Identity {
        provider,
        aadsts,
        status: Some(status),
        hint,
        source: None,
    })
}

fn number(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
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
        self.cache
            .get_or_fetch(scopes, || async {
                self.fetch(scopes).await.map_err(into_azure)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_error_bodies_with_crlf_escapes_yield_code_status_and_first_line() {
        let body = r#"{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials due to invalid username or password.\r\nTrace ID: a\r\nCorrelation ID: b\r\nTimestamp: c","error_codes":[50126]}"#;
        let err = parse_token_response(PROVIDER, "login", 400, body).expect_err("refused");
        assert_eq!(err.aadsts(), Some(50_126));
        let text = err.to_string();
        assert!(
            text.contains("AADSTS50126") && text.contains("HTTP 400"),
            "{text}"
        );
        assert!(!text.contains("Trace ID"), "{text}");
    }

    #[test]
    fn success_bodies_accept_numbers_or_strings() {
        for body in [
            r#"{"access_token":"x","expires_in":3599}"#,
            r#"{"access_token":"x","expires_in":"3599"}"#,
        ] {
            let t = parse_token_response(PROVIDER, "h", 200, body).expect("token");
            assert!(t.expires_on > OffsetDateTime::now_utc());
        }
    }
}
