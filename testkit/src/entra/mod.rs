//! The Entra ID token endpoint fake: HTTPS on `127.0.0.1` with a testkit certificate for every
//! cloud's authority host (`login.microsoftonline.com`, `login.microsoftonline.us`,
//! `login.chinacloudapi.cn`, `login.microsoftonline.de`), one server for all of them by `Host`.
//!
//! Clients keep the production authority URL and redirect only name resolution
//! ([`EntraFake::resolve_overrides`]), trusting the testkit CA ([`EntraFake::ca_pem`]).
//! Tokens are minted by the shared [`TokenIssuer`], so a [`crate::vault::KeyVaultFake`] built
//! on the same issuer accepts them; the cloud of the `Host` picks the token's `iss`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials` + `client_secret` | `200` `{token_type, expires_in, ext_expires_in, access_token}` |
//! | … + `client_assertion` (RS256 JWT, `x5t` / `x5t#S256` naming a registered certificate) | the same; signature, `aud`, `iss`=`sub`=client id, `exp`/`nbf` checked |
//! | … + `client_assertion` from a trusted external issuer (workload identity) | the same; `iss`/`sub`/`aud` matched against the app's federated credentials |
//! | `grant_type=password` (ROPC) | the same, for the user |
//! | `POST /{tenant}/oauth2/token` (v1) with `resource=` | v1 body: every number a string, plus `expires_on`, `not_before`, `resource` |
//! | any failure | Entra's JSON error body with `\r\n`-separated trace lines, `error_codes`, `trace_id`, `correlation_id`, `error_uri` |
//!
//! Error codes (texts follow what Entra sends, as seen in public issue threads):
//! `AADSTS7000215` wrong secret (401), `AADSTS7000218` no credential (401), `AADSTS700016`
//! unknown client (400 `unauthorized_client`), `AADSTS90002` unknown tenant (400
//! `invalid_tenant`), `AADSTS700027` assertion signed by an unknown or the wrong key (401),
//! `AADSTS5002738` assertion not RS256 (401), `AADSTS700024` assertion expired (401),
//! `AADSTS50027` malformed assertion (401), `AADSTS700021` assertion `sub` is not the client
//! (401), `AADSTS50013` wrong assertion audience (401), `AADSTS90061` untrusted external
//! issuer (400),
//! `AADSTS700211` / `AADSTS700212` no federated credential for the issuer / audience (401),
//! `AADSTS70021` no federated credential for the subject (400), `AADSTS50126` wrong password
//! and `AADSTS50034` unknown user (400 `invalid_grant`), `AADSTS1002012` client-credentials
//! scope without `/.default` and `AADSTS70011` malformed scope (400 `invalid_scope`),
//! `AADSTS500011` unknown resource (400 `invalid_resource`), `AADSTS900144` missing parameter,
//! `AADSTS70003` unsupported grant type, `AADSTS900561` not a POST.
//!
//! Workload identity: [`EntraFake::service_account_issuer`] is a Kubernetes service-account
//! token issuer (an AKS OIDC issuer URL and its own RSA key, `fixtures/rsa/intermediate.pem`,
//! distinct from the access-token key), trusted by the fake. It mints the projected tokens a
//! pod would find in `AZURE_FEDERATED_TOKEN_FILE`; register the matching
//! [`FederatedCredential`] on the client.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::entra::{ClientSpec, EntraFake};
//! use testkit::token::Principal;
//!
//! testkit::install_crypto_provider();
//! let entra = EntraFake::start(Default::default()).await?;
//! let app = Principal::new("controller");
//! entra.add_client(ClientSpec::new(&app).secret("s3cr3t"));
//!
//! let (host, addr) = entra.resolve_overrides().remove(0);
//! let http = reqwest::Client::builder()
//!     .resolve(&host, addr)
//!     .tls_certs_only([reqwest::Certificate::from_pem(entra.ca_pem().as_bytes())?])
//!     .build()?;
//! let url = format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", app.tenant_id);
//! let form = [
//!     ("grant_type", "client_credentials"),
//!     ("client_id", app.app_id.as_str()),
//!     ("client_secret", "s3cr3t"),
//!     ("scope", "https://vault.azure.net/.default"),
//! ];
//! let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
//! let body: serde_json::Value = http
//!     .post(&url)
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(form)
//!     .send().await?.json().await?;
//! assert_eq!(body["token_type"], "Bearer");
//! # Ok(()) }
//! ```

mod http;
mod jwt;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use jwt::{FederatedToken, ServiceAccountIssuer, SigningKeyError};

use crate::certs::{Cert, CertError, TestCa};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::faults::{Faults, RequestLog, lock};
use crate::server::{Endpoint, issuer_or_new, resolve_env};
use crate::token::{IssuerKeyError, Principal, TokenIssuer, derived_guid};

/// The audience a Kubernetes service-account token must carry for Entra's token exchange.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The lifetime of issued access tokens unless [`EntraOptions::token_lifetime`] says otherwise
/// (Entra answers `expires_in: 3599`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// Errors starting the Entra fake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntraError {
    /// The certificate factory failed to make the serving certificate.
    #[error("could not issue the serving certificate")]
    Cert(#[source] CertError),
    /// A checked-in signing key is broken.
    #[error("a checked-in signing key was rejected")]
    Issuer(#[source] IssuerKeyError),
    /// The checked-in service-account signing key is broken.
    #[error("the service-account issuer could not be made")]
    SigningKey(#[source] SigningKeyError),
    /// TLS setup failed.
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
    /// Binding the listener failed.
    #[error("binding the listener failed")]
    Bind(#[source] std::io::Error),
}

/// How to start an [`EntraFake`].
#[derive(Clone, Debug, Default)]
pub struct EntraOptions {
    /// Clock for token lifetimes, assertion checks and timestamps (default: system clock).
    pub clock: Option<Clock>,
    /// Token issuer shared with the Key Vault fake (default: a new one on `clock`).
    pub issuer: Option<Arc<TokenIssuer>>,
    /// CA for the serving certificate, shared with the other fakes (default: a new one).
    pub ca: Option<Arc<TestCa>>,
    /// Lifetime of issued access tokens (default [`DEFAULT_TOKEN_LIFETIME`]).
    pub token_lifetime: Option<Duration>,
}

/// A federated identity credential of an application (workload identity federation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedCredential {
    /// The external issuer (`iss` of the presented token), e.g. the AKS OIDC issuer URL.
    pub issuer: String,
    /// The subject (`sub`), e.g. `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// The audience (`aud`), normally [`TOKEN_EXCHANGE_AUDIENCE`].
    pub audience: String,
}

impl FederatedCredential {
    /// The credential AKS workload identity creates for service account `namespace/name` of
    /// the cluster whose OIDC issuer is `issuer`.
    pub fn kubernetes(issuer: &str, namespace: &str, service_account: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            subject: format!("system:serviceaccount:{namespace}:{service_account}"),
            audience: TOKEN_EXCHANGE_AUDIENCE.to_owned(),
        }
    }
}

/// A client secret. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretText(pub(crate) String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// An application registration (its service principal in one tenant) to add to the fake.
#[derive(Clone)]
pub struct ClientSpec {
    pub(crate) principal: Principal,
    pub(crate) cloud: Cloud,
    pub(crate) secrets: Vec<SecretText>,
    pub(crate) certificates: Vec<Cert>,
    pub(crate) federations: Vec<FederatedCredential>,
    pub(crate) public_client: bool,
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.principal.app_id)
            .field("tenant_id", &self.principal.tenant_id)
            .field("cloud", &self.cloud.name)
            .field("secrets", &self.secrets.len())
            .field("certificates", &self.certificates.len())
            .field("federations", &self.federations)
            .field("public_client", &self.public_client)
            .finish_non_exhaustive()
    }
}

impl ClientSpec {
    /// The application of `principal` (client id = `app_id`, tenant = `tenant_id`) in the
    /// public cloud, with no credentials yet.
    pub fn new(principal: &Principal) -> Self {
        Self {
            principal: principal.clone(),
            cloud: Cloud::PUBLIC,
            secrets: Vec::new(),
            certificates: Vec::new(),
            federations: Vec::new(),
            public_client: false,
        }
    }

    /// Registered in another cloud's Entra (its tenant exists only there).
    #[must_use]
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Adds a client secret (an app may have several, as during rotation).
    #[must_use]
    pub fn secret(mut self, secret: &str) -> Self {
        self.secrets.push(SecretText(secret.to_owned()));
        self
    }

    /// Adds a certificate credential (its public key verifies client assertions).
    #[must_use]
    pub fn certificate(mut self, cert: &Cert) -> Self {
        self.certificates.push(cert.clone());
        self
    }

    /// Adds a federated identity credential.
    #[must_use]
    pub fn federation(mut self, federation: FederatedCredential) -> Self {
        self.federations.push(federation);
        self
    }

    /// Allows public-client flows (ROPC without a client credential), as the portal's
    /// "Allow public client flows" switch does.
    #[must_use]
    pub fn public_client(mut self, allowed: bool) -> Self {
        self.public_client = allowed;
        self
    }
}

/// A user (for the ROPC `password` grant).
#[derive(Clone)]
pub struct UserSpec {
    pub(crate) upn: String,
    pub(crate) password: SecretText,
    pub(crate) object_id: String,
    pub(crate) tenant_id: String,
    pub(crate) cloud: Cloud,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("upn", &self.upn)
            .field("object_id", &self.object_id)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl UserSpec {
    /// User `upn` with `password` in the default tenant of the public cloud; its object id is
    /// derived from the UPN (see [`UserSpec::object_id`]).
    pub fn new(upn: &str, password: &str) -> Self {
        Self {
            upn: upn.to_owned(),
            password: SecretText(password.to_owned()),
            object_id: derived_guid("user", &upn.to_ascii_lowercase()),
            tenant_id: crate::token::DEFAULT_TENANT_ID.to_owned(),
            cloud: Cloud::PUBLIC,
        }
    }

    /// In another tenant.
    #[must_use]
    pub fn tenant(mut self, tenant_id: &str) -> Self {
        self.tenant_id = tenant_id.to_owned();
        self
    }

    /// In another cloud.
    #[must_use]
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// The user's object id (`oid` of its tokens), for Key Vault grants.
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The user as a [`Principal`] (for Key Vault grants); its `app_id` is unused.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.upn.clone(),
            tenant_id: self.tenant_id.clone(),
            object_id: self.object_id.clone(),
            app_id: String::new(),
        }
    }
}

/// One tenant's directory.
#[derive(Default)]
pub(crate) struct Directory {
    /// By lower-case client id.
    pub apps: BTreeMap<String, ClientSpec>,
    /// By lower-case UPN.
    pub users: BTreeMap<String, UserSpec>,
}

/// Tenants keyed by (authority host, lower-case tenant id).
pub(crate) type Tenants = BTreeMap<(String, String), Directory>;

/// A running Entra ID fake. Dropping it stops the server.
pub struct EntraFake {
    service: Arc<http::EntraService>,
    endpoint: Endpoint,
}

impl fmt::Debug for EntraFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraFake")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl EntraFake {
    /// Starts the fake on an ephemeral loopback port.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound or the TLS identity or a signing key cannot be made.
    pub async fn start(opts: EntraOptions) -> Result<Self, EntraError> {
        let clock = opts.clock.unwrap_or_default();
        let issuer = issuer_or_new(opts.issuer, &clock).map_err(EntraError::Issuer)?;
        let sa_issuer = Arc::new(
            ServiceAccountIssuer::new(&default_oidc_issuer(), clock.clone())
                .map_err(EntraError::SigningKey)?,
        );
        let service = Arc::new(http::EntraService {
            tenants: Mutex::new(BTreeMap::new()),
            issuer,
            trusted: Mutex::new(vec![sa_issuer.clone()]),
            sa_issuer,
            resources: Mutex::new(
                Cloud::ALL
                    .iter()
                    .map(|c| c.vault_audience.to_owned())
                    .collect(),
            ),
            lifetime: opts.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME),
            clock: clock.clone(),
        });
        let names: Vec<&str> = Cloud::ALL.iter().map(|c| c.authority_host).collect();
        let endpoint = Endpoint::tls(service.clone(), clock, opts.ca, &names)
            .await
            .map_err(|e| e.into_error(EntraError::Cert, EntraError::Tls, EntraError::Bind))?;
        Ok(Self { service, endpoint })
    }

    /// The loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// The CA that signed the serving certificate.
    pub fn ca(&self) -> &Arc<TestCa> {
        self.endpoint.ca()
    }

    /// The CA certificate as PEM (for `SSL_CERT_FILE` or `tls_certs_only`).
    pub fn ca_pem(&self) -> String {
        self.endpoint.ca_pem()
    }

    /// The token issuer that signs the access tokens.
    pub fn issuer(&self) -> &Arc<TokenIssuer> {
        &self.service.issuer
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        self.endpoint.clock()
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// Every request answered. Issued tokens are logged as [`crate::faults::Outcome::Anonymous`]
    /// with the principal's object id, refused credentials as
    /// [`crate::faults::Outcome::TokenRejected`], malformed requests as
    /// [`crate::faults::Outcome::BadRequest`].
    pub fn log(&self) -> &RequestLog {
        self.endpoint.log()
    }

    /// `(host, addr)` for every cloud's authority host: what a client's resolve override must
    /// map.
    pub fn resolve_overrides(&self) -> Vec<(String, SocketAddr)> {
        self.endpoint
            .resolve_overrides(Cloud::ALL.iter().map(|c| c.authority_host.to_owned()))
    }

    /// The resolve override as `AKV2K8S_RESOLVE` takes it: `host=addr:port` pairs joined by `,`.
    pub fn resolve_env(&self) -> String {
        resolve_env(&self.resolve_overrides())
    }

    /// The v2 token endpoint of `tenant_id` in `cloud`
    /// (`https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`): the `aud` a client
    /// assertion must carry.
    pub fn token_endpoint(cloud: &Cloud, tenant_id: &str) -> String {
        format!(
            "https://{}/{tenant_id}/oauth2/v2.0/token",
            cloud.authority_host
        )
    }

    /// Registers an empty tenant (tenants of added clients and users exist implicitly).
    pub fn add_tenant(&self, tenant_id: &str, cloud: &Cloud) {
        lock(&self.service.tenants)
            .entry(tenant_key(cloud, tenant_id))
            .or_default();
    }

    /// Registers (or replaces) an application in its principal's tenant.
    pub fn add_client(&self, spec: ClientSpec) {
        let key = tenant_key(&spec.cloud, &spec.principal.tenant_id);
        lock(&self.service.tenants)
            .entry(key)
            .or_default()
            .apps
            .insert(spec.principal.app_id.to_ascii_lowercase(), spec);
    }

    /// Removes an application (its tokens stay valid until they expire, as in Entra).
    pub fn remove_client(&self, principal: &Principal, cloud: &Cloud) {
        if let Some(dir) =
            lock(&self.service.tenants).get_mut(&tenant_key(cloud, &principal.tenant_id))
        {
            dir.apps.remove(&principal.app_id.to_ascii_lowercase());
        }
    }

    /// Registers (or replaces) a user.
    pub fn add_user(&self, spec: UserSpec) {
        let key = tenant_key(&spec.cloud, &spec.tenant_id);
        lock(&self.service.tenants)
            .entry(key)
            .or_default()
            .users
            .insert(spec.upn.to_ascii_lowercase(), spec);
    }

    /// Makes `resource` (an application ID URI such as `https://management.azure.com`) known;
    /// every cloud's Key Vault audience is known from the start.
    pub fn add_resource(&self, resource: &str) {
        lock(&self.service.resources).insert(resource.trim_end_matches('/').to_owned());
    }

    /// The Kubernetes service-account token issuer this fake trusts (an AKS-style OIDC issuer).
    pub fn service_account_issuer(&self) -> &Arc<ServiceAccountIssuer> {
        &self.service.sa_issuer
    }

    /// Trusts another external token issuer (a second cluster).
    pub fn trust_issuer(&self, issuer: Arc<ServiceAccountIssuer>) {
        lock(&self.service.trusted).push(issuer);
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(&self) {
        self.endpoint.shutdown();
    }
}

pub(crate) fn tenant_key(cloud: &Cloud, tenant_id: &str) -> (String, String) {
    (
        cloud.authority_host.to_owned(),
        tenant_id.to_ascii_lowercase(),
    )
}

/// The OIDC issuer URL of the fake's default cluster, shaped like AKS's.
fn default_oidc_issuer() -> String {
    format!(
        "https://oidc.prod-aks.azure.com/{}/",
        derived_guid("oidc", "testkit-cluster")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_do_not_print_secrets_or_passwords() {
        let p = Principal::new("app");
        let spec = ClientSpec::new(&p).secret("hunter2-secret");
        let user = UserSpec::new("alice@contoso.com", "hunter2-password");
        let shown = format!("{spec:?} {user:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(&p.app_id));
        assert!(shown.contains("alice@contoso.com"));
    }

    #[test]
    fn kubernetes_federations_name_the_service_account() {
        let f = FederatedCredential::kubernetes("https://oidc.example/", "ns", "sa");
        assert_eq!(f.subject, "system:serviceaccount:ns:sa");
        assert_eq!(f.audience, "api://AzureADTokenExchange");
    }
}
