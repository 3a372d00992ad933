//! The env-injector's auth service, client side (used by the in-pod launcher), and the
//! request/response contract shared with the server side.
//!
//! * `GET <ENV_INJECTOR_AUTH_SERVICE_VALIDATION>/auth/<ns>/<pod>?secret=<secret>` (plain HTTP):
//!   200 = the client certificate is fresh, 201 = it was just (re)issued.
//! * `GET <ENV_INJECTOR_AUTH_SERVICE>/auth/<ns>/<pod>` over mTLS (client certificate
//!   `tls.crt`/`tls.key`, CA `ca.crt` from `ENV_INJECTOR_CLIENT_CERT_DIR`): 200 with
//!   `{"oauth_token": "…"}` ([`AuthServiceToken`]).
//!
//! The token is used as a static bearer token, as upstream ([`AuthServiceCredential`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{Error, Result, into_azure};
use crate::http::{HttpOptions, host_of};

/// `ENV_INJECTOR_CLIENT_CERT_DIR`: holds `ca.crt`, `tls.crt`, `tls.key`.
pub const ENV_INJECTOR_CLIENT_CERT_DIR: &str = "ENV_INJECTOR_CLIENT_CERT_DIR";
/// `ENV_INJECTOR_POD_NAMESPACE`.
pub const ENV_INJECTOR_POD_NAMESPACE: &str = "ENV_INJECTOR_POD_NAMESPACE";
/// `ENV_INJECTOR_POD_NAME`.
pub const ENV_INJECTOR_POD_NAME: &str = "ENV_INJECTOR_POD_NAME";
/// `ENV_INJECTOR_AUTH_SERVICE`: `https://<svc>.<ns>.svc:<mtls port>`.
pub const ENV_INJECTOR_AUTH_SERVICE: &str = "ENV_INJECTOR_AUTH_SERVICE";
/// `ENV_INJECTOR_AUTH_SERVICE_VALIDATION`: `http://<svc>.<ns>.svc:<http port>`.
pub const ENV_INJECTOR_AUTH_SERVICE_VALIDATION: &str = "ENV_INJECTOR_AUTH_SERVICE_VALIDATION";
/// `ENV_INJECTOR_AUTH_SERVICE_SECRET`: name of the client certificate Secret.
pub const ENV_INJECTOR_AUTH_SERVICE_SECRET: &str = "ENV_INJECTOR_AUTH_SERVICE_SECRET";

/// Request timeout, as upstream.
pub const AUTH_SERVICE_TIMEOUT: Duration = Duration::from_secs(10);

/// The token request: which pod asks (`/auth/{namespace}/{pod}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServiceRequest {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
}

impl AuthServiceRequest {
    /// The path `/auth/{namespace}/{pod}` (segments percent-encoded).
    pub fn path(&self) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("/auth/{}/{}", enc(&self.namespace), enc(&self.pod))
    }
}

/// The token response body.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthServiceToken {
    /// The Key Vault bearer token.
    pub oauth_token: Secret,
    /// Upstream's `endpoint_partial` (unused by upstream's launcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_partial: Option<String>,
    /// Extension: expiry (Unix seconds) when the server knows it; absent from upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<i64>,
}

impl std::fmt::Debug for AuthServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServiceToken")
            .field("endpoint_partial", &self.endpoint_partial)
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// Result of the validation call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertState {
    /// 200: the mounted certificate is current.
    Fresh,
    /// 201: a new certificate was issued; wait for the mounted `ca.crt` to change.
    Reissued,
}

/// Client configuration, usually from `ENV_INJECTOR_*`.
#[derive(Clone, Debug)]
pub struct AuthServiceConfig {
    /// mTLS base URL.
    pub auth_service: String,
    /// Plain HTTP validation base URL.
    pub validation: Option<String>,
    /// Client cert secret name (validation `?secret=`).
    pub secret_name: Option<String>,
    /// Directory with `ca.crt`, `tls.crt`, `tls.key`.
    pub cert_dir: PathBuf,
    /// Which pod asks.
    pub request: AuthServiceRequest,
    /// HTTP options (resolve override; roots are replaced by `ca.crt`).
    pub http: HttpOptions,
}

impl AuthServiceConfig {
    /// Reads the `ENV_INJECTOR_*` variables.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the missing variable.
    pub fn from_env(env: &Env) -> Result<Self> {
        let need = |name: &'static str| {
            env.get(name).ok_or_else(|| Error::InvalidConfig {
                field: name,
                reason: "not set: the env-injector sets it on injected containers using the auth service".into(),
            })
        };
        Ok(Self {
            auth_service: need(ENV_INJECTOR_AUTH_SERVICE)?,
            validation: env.get(ENV_INJECTOR_AUTH_SERVICE_VALIDATION),
            secret_name: env.get(ENV_INJECTOR_AUTH_SERVICE_SECRET),
            cert_dir: PathBuf::from(need(ENV_INJECTOR_CLIENT_CERT_DIR)?),
            request: AuthServiceRequest {
                namespace: need(ENV_INJECTOR_POD_NAMESPACE)?,
                pod: need(ENV_INJECTOR_POD_NAME)?,
            },
            http: HttpOptions::from_env(env)?,
        })
    }
}

/// The auth service client.
#[derive(Debug)]
pub struct AuthServiceClient {
    config: AuthServiceConfig,
    mtls: reqwest::Client,
    plain: reqwest::Client,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| Error::ReadFile {
        what: "auth service client certificate file",
        path,
        source: e,
    })
}

impl AuthServiceClient {
    /// Loads `ca.crt`, `tls.crt`, `tls.key` and builds the clients.
    ///
    /// # Errors
    ///
    /// [`Error::ReadFile`] for a missing file, [`Error::Certificate`] for unusable PEM.
    pub fn new(config: AuthServiceConfig) -> Result<Self> {
        let ca = read(&config.cert_dir, "ca.crt")?;
        let mut identity_pem = read(&config.cert_dir, "tls.crt")?;
        identity_pem.push(b'\n');
        identity_pem.extend(read(&config.cert_dir, "tls.key")?);
        let identity =
            reqwest::Identity::from_pem(&identity_pem).map_err(|_| Error::Certificate {
                source_name: config.cert_dir.join("tls.crt").display().to_string(),
                reason: "tls.crt/tls.key are not a usable PEM certificate and key".into(),
            })?;
        let ca_text = String::from_utf8(ca).map_err(|_| Error::Certificate {
            source_name: config.cert_dir.join("ca.crt").display().to_string(),
            reason: "ca.crt is not PEM text".into(),
        })?;
        let mut http = config.http.clone();
        http.request_timeout = AUTH_SERVICE_TIMEOUT;
        let plain = http.reqwest_client(None)?;
        let mtls = http.trust_only(ca_text).reqwest_client(Some(identity))?;
        Ok(Self {
            config,
            mtls,
            plain,
        })
    }

    /// Asks the validation endpoint whether the mounted client certificate is current.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] without a validation URL or secret name;
    /// [`Error::AuthService`] for any status but 200/201.
    pub async fn validate(&self) -> Result<ClientCertState> {
        let (Some(base), Some(secret)) = (&self.config.validation, &self.config.secret_name) else {
            return Err(Error::InvalidConfig {
                field: ENV_INJECTOR_AUTH_SERVICE_VALIDATION,
                reason: "validation needs ENV_INJECTOR_AUTH_SERVICE_VALIDATION and ENV_INJECTOR_AUTH_SERVICE_SECRET".into(),
            });
        };
        let url = format!(
            "{}{}",
            base.trim_end_matches('/'),
            self.config.request.path()
        );
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("secret", secret)
            .finish();
        let resp = self
            .plain
            .get(format!("{url}?{query}"))
            .send()
            .await
            .map_err(|e| {
                self.config
                    .http
                    .classify("auth service validation", &host_of(&url), e)
            })?;
        match resp.status().as_u16() {
            200 => Ok(ClientCertState::Fresh),
            201 => Ok(ClientCertState::Reissued),
            status => Err(Error::AuthService {
                url,
                status,
                reason: "the validation endpoint refused this pod (is env injection enabled for the namespace?)".into(),
            }),
        }
    }

    /// Fetches the token over mTLS.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] for certificate problems, [`Error::AuthService`] for non-200 answers,
    /// [`Error::Response`] for a body that is not the contract.
    pub async fn fetch_token(&self) -> Result<AuthServiceToken> {
        let url = format!(
            "{}{}",
            self.config.auth_service.trim_end_matches('/'),
            self.config.request.path()
        );
        let host = host_of(&url);
        let resp = self.mtls.get(&url).send().await.map_err(|e| {
            self.config
                .http
                .classify("auth service token request", &host, e)
        })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(Error::AuthService {
                url,
                status,
                reason: match status {
                    403 => "this pod is not authorised (namespace label azure-key-vault-env-injection=enabled, injected containers)".into(),
                    _ => "unexpected status".into(),
                },
            });
        }
        let text = resp.text().await.map_err(|e| {
            self.config
                .http
                .classify("auth service token request", &host, e)
        })?;
        serde_json::from_str(&text).map_err(|_| Error::Response {
            operation: "auth service token request",
            host,
            reason: "the body is not {\"oauth_token\": …} (upstream appends error text to a 200 when token acquisition fails)".into(),
        })
    }
}

/// A static bearer token from the auth service as a `TokenCredential` (scopes are ignored:
/// the service hands out a Key Vault token).
#[derive(Clone)]
pub struct AuthServiceCredential {
    token: AccessToken,
}

impl AuthServiceCredential {
    /// Wraps a fetched token; without `expires_on` it is assumed valid for an hour.
    pub fn new(token: AuthServiceToken) -> Arc<Self> {
        let expires = token
            .expires_on
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or_else(|| OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1));
        Arc::new(Self {
            token: AccessToken::new(token.oauth_token, expires),
        })
    }
}

impl std::fmt::Debug for AuthServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServiceCredential")
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for AuthServiceCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if self.token.expires_on <= OffsetDateTime::now_utc() {
            return Err(into_azure(Error::AuthService {
                url: String::new(),
                status: 401,
                reason:
                    "the auth service token has expired; restart the container to fetch a new one"
                        .into(),
            }));
        }
        Ok(self.token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_round_trips_and_debug_hides_the_token() {
        let t: AuthServiceToken =
            serde_json::from_str(r#"{"oauth_token":"eyJ.secret.sig"}"#).expect("upstream body");
        assert_eq!(t.oauth_token.secret(), "eyJ.secret.sig");
        assert!(!format!("{t:?}").contains("eyJ"));
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            serde_json::json!({"oauth_token": "eyJ.secret.sig"})
        );
        let cred = AuthServiceCredential::new(t);
        assert!(!format!("{cred:?}").contains("eyJ"));
        let req = AuthServiceRequest {
            namespace: "apps".into(),
            pod: "web-0".into(),
        };
        assert_eq!(req.path(), "/auth/apps/web-0");
    }

    #[test]
    fn missing_env_injector_variables_are_named() {
        let err =
            AuthServiceConfig::from_env(&Env::from([(ENV_INJECTOR_AUTH_SERVICE, "https://x")]))
                .expect_err("incomplete");
        assert!(
            err.to_string().contains(ENV_INJECTOR_CLIENT_CERT_DIR),
            "{err}"
        );
    }
}
