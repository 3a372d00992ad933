//! Shared setup: a Key Vault fake with one vault, clients wired to it through the resolve
//! override and the testkit CA, and a credential that plays Entra ID.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_core::time::Duration as AzDuration;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use testkit::clock::Clock;
use testkit::cloud::Cloud;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, VaultSpec};

pub const VAULT: &str = "accvault";
pub const API_VERSION: &str = "2025-07-01";
pub const ACCVAULT_URL: &str = "https://accvault.vault.azure.net/";

/// A started fake with vault `accvault` readable (get/list on everything, set on secrets) by
/// principal `app`.
pub struct World {
    pub kv: KeyVaultFake,
    pub app: Principal,
}

impl World {
    pub async fn start() -> World {
        Self::start_with_clock(Clock::system()).await
    }

    pub async fn start_with_clock(clock: Clock) -> World {
        testkit::install_crypto_provider();
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock),
            ..Default::default()
        })
        .await
        .expect("start the Key Vault fake");
        let app = Principal::new("app");
        kv.create_vault(VaultSpec::new(VAULT).grant(&app, Permissions::all()))
            .expect("create vault");
        World { kv, app }
    }

    /// A reqwest client that reaches every vault of the fake by its real name.
    pub fn http(&self) -> reqwest::Client {
        http_client(&self.kv)
    }

    /// Azure SDK client options using [`World::http`] as transport.
    pub fn client_options(&self, retry: RetryOptions) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http()))),
            retry,
            ..Default::default()
        }
    }

    /// A credential for `app` (see [`EntraStandIn`]).
    pub fn credential(&self) -> Arc<EntraStandIn> {
        EntraStandIn::new(self.kv.issuer().clone(), self.app.clone())
    }

    /// A `SecretClient` for `vault_url` authenticating with `cred`.
    pub fn secrets_as(
        &self,
        vault_url: &str,
        cred: Arc<dyn TokenCredential>,
        retry: RetryOptions,
    ) -> SecretClient {
        let options = SecretClientOptions {
            client_options: self.client_options(retry),
            ..Default::default()
        };
        SecretClient::new(vault_url, cred, Some(options)).expect("secret client")
    }

    /// A `SecretClient` for `accvault` as `app`.
    pub fn secrets(&self, retry: RetryOptions) -> SecretClient {
        self.secrets_as(ACCVAULT_URL, self.credential(), retry)
    }

    /// A `CertificateClient` for `accvault` as `app`, without retries.
    pub fn certificates(&self) -> CertificateClient {
        let options = CertificateClientOptions {
            client_options: self.client_options(no_retry()),
            ..Default::default()
        };
        CertificateClient::new(ACCVAULT_URL, self.credential(), Some(options))
            .expect("certificate client")
    }

    /// A `KeyClient` for `accvault` as `app`, without retries.
    pub fn keys(&self) -> KeyClient {
        let options = KeyClientOptions {
            client_options: self.client_options(no_retry()),
            ..Default::default()
        };
        KeyClient::new(ACCVAULT_URL, self.credential(), Some(options)).expect("key client")
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("https://{VAULT}.vault.azure.net{path_and_query}")
    }
}

pub fn http_client(kv: &KeyVaultFake) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(kv.ca_pem().as_bytes()).expect("CA PEM")]);
    for (host, addr) in kv.resolve_overrides() {
        b = b.resolve(&host, addr);
    }
    b.build().expect("reqwest client")
}

/// No retries: errors surface at once.
pub fn no_retry() -> RetryOptions {
    RetryOptions::none()
}

/// A few fast retries (the SDK still honours `Retry-After` on 429 and 503).
pub fn quick_retries() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: AzDuration::milliseconds(5),
        max_retries: 3,
        max_total_elapsed: AzDuration::seconds(30),
        max_delay: AzDuration::milliseconds(50),
    })
}

/// Plays Entra ID for the SDK: maps the requested scope to an audience and mints a token for
/// its principal, as Entra would. `audience_override` makes it misbehave (a token for another
/// cloud).
#[derive(Debug)]
pub struct EntraStandIn {
    issuer: Arc<TokenIssuer>,
    principal: Principal,
    pub audience_override: Option<String>,
    pub lifetime: Duration,
    calls: AtomicUsize,
    pub scopes: std::sync::Mutex<Vec<String>>,
}

impl EntraStandIn {
    pub fn new(issuer: Arc<TokenIssuer>, principal: Principal) -> Arc<Self> {
        Arc::new(Self {
            issuer,
            principal,
            audience_override: None,
            lifetime: Duration::from_secs(3600),
            calls: AtomicUsize::new(0),
            scopes: Default::default(),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenCredential for EntraStandIn {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let scope = scopes.first().copied().unwrap_or_default();
        self.scopes.lock().expect("scopes").push(scope.to_owned());
        let audience = self
            .audience_override
            .clone()
            .unwrap_or_else(|| scope.trim_end_matches("/.default").to_owned());
        let cloud = Cloud::ALL
            .into_iter()
            .find(|c| c.vault_audience == audience)
            .unwrap_or(Cloud::PUBLIC);
        let claims = self
            .issuer
            .claims_for(&self.principal, &cloud, &audience, self.lifetime);
        let expires = azure_core::time::OffsetDateTime::from_unix_timestamp(claims.exp as i64)
            .expect("expiry in range");
        Ok(AccessToken::new(
            self.issuer.mint(&claims).as_str().to_owned(),
            expires,
        ))
    }
}

/// Asserts that `actual` has every field of `example` with the same JSON type, recursively
/// (arrays: each element of `actual` against the example's first element). Used to hold the
/// fake's answers to Microsoft's documented REST examples.
pub fn assert_conforms(example: &serde_json::Value, actual: &serde_json::Value, path: &str) {
    use serde_json::Value::*;
    match (example, actual) {
        (Object(e), Object(a)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} is missing in {actual}"));
                assert_conforms(ev, av, &format!("{path}.{k}"));
            }
        }
        (Array(e), Array(a)) => {
            if let Some(first) = e.first() {
                assert!(!a.is_empty(), "{path} is empty");
                for (i, av) in a.iter().enumerate() {
                    assert_conforms(first, av, &format!("{path}[{i}]"));
                }
            }
        }
        (String(_), String(_)) | (Bool(_), Bool(_)) | (Number(_), Number(_)) | (Null, Null) => {}
        // A documented `nextLink: null` may be a string when more pages exist.
        (Null, String(_)) => {}
        _ => panic!("{path}: expected the type of {example}, got {actual}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Identity fakes (Entra ID, IMDS / NMI): shared setup for `entra.rs` and `imds.rs`.

/// Key Vault, Entra and IMDS fakes sharing one clock, token issuer and CA, with vault
/// `accvault` (default tenant, public cloud) and `chinavault` (China cloud).
pub struct IdentityWorld {
    pub kv: KeyVaultFake,
    pub entra: testkit::entra::EntraFake,
    pub clock: Clock,
}

impl IdentityWorld {
    pub async fn start() -> IdentityWorld {
        Self::start_with_clock(Clock::system()).await
    }

    pub async fn start_with_clock(clock: Clock) -> IdentityWorld {
        testkit::install_crypto_provider();
        let issuer = Arc::new(TokenIssuer::new(clock.clone()).expect("issuer"));
        let ca = Arc::new(testkit::certs::TestCa::new().expect("CA"));
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer.clone()),
            ca: Some(ca.clone()),
        })
        .await
        .expect("start the Key Vault fake");
        kv.create_vault(VaultSpec::new(VAULT)).expect("vault");
        kv.create_vault(VaultSpec::new("chinavault").cloud(Cloud::CHINA))
            .expect("china vault");
        let entra = testkit::entra::EntraFake::start(testkit::entra::EntraOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer),
            ca: Some(ca),
            token_lifetime: None,
        })
        .await
        .expect("start the Entra fake");
        IdentityWorld { kv, entra, clock }
    }

    /// An IMDS (or NMI) fake on the same clock and issuer.
    pub async fn imds(&self, mode: testkit::imds::ImdsMode) -> testkit::imds::ImdsFake {
        testkit::imds::ImdsFake::start(testkit::imds::ImdsOptions {
            clock: Some(self.clock.clone()),
            issuer: Some(self.kv.issuer().clone()),
            mode,
            ..Default::default()
        })
        .await
        .expect("start the IMDS fake")
    }

    /// A reqwest client reaching every vault and every authority host by its real name.
    pub fn http(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(self.kv.ca_pem().as_bytes()).expect("CA PEM")
            ]);
        for (host, addr) in self
            .kv
            .resolve_overrides()
            .into_iter()
            .chain(self.entra.resolve_overrides())
        {
            b = b.resolve(&host, addr);
        }
        b.build().expect("reqwest client")
    }

    /// Azure SDK client options using [`IdentityWorld::http`] as transport, no retries.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http()))),
            retry: no_retry(),
            ..Default::default()
        }
    }

    /// Reads secret `name` of `vault_url` with `cred` through the official `SecretClient`.
    pub async fn read_secret(
        &self,
        vault_url: &str,
        cred: Arc<dyn TokenCredential>,
        name: &str,
    ) -> azure_core::Result<Option<String>> {
        let options = SecretClientOptions {
            client_options: self.client_options(),
            ..Default::default()
        };
        let client = SecretClient::new(vault_url, cred, Some(options))?;
        Ok(client.get_secret(name, None).await?.into_model()?.value)
    }
}

/// Sends every request to `to` instead of the URL's host (scheme `http`), through a reqwest
/// client that may bind a local address: how a test reaches the hard-coded IMDS address.
#[derive(Debug)]
pub struct RedirectTransport {
    to: std::net::SocketAddr,
    inner: reqwest::Client,
}

impl RedirectTransport {
    /// Redirects to `to`; requests leave from `local` when given (to play a pod IP).
    pub fn new(to: std::net::SocketAddr, local: Option<std::net::IpAddr>) -> Arc<Self> {
        let inner = reqwest::Client::builder()
            .local_address(local)
            .build()
            .expect("reqwest client");
        Arc::new(Self { to, inner })
    }
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for RedirectTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let mut redirected = request.clone();
        let url = redirected.url_mut();
        let _ = url.set_scheme("http");
        let _ = url.set_ip_host(self.to.ip());
        let _ = url.set_port(Some(self.to.port()));
        self.inner.execute_request(&redirected).await
    }
}

/// A self-signed RSA client certificate on the checked-in client key
/// (`RsaFixtureKey::Client`), and that key for signing assertions.
pub fn client_certificate(cn: &str) -> (testkit::certs::Cert, Arc<ring::signature::RsaKeyPair>) {
    let pem = testkit::certs::RsaFixtureKey::Client.pem();
    let key = rcgen::KeyPair::from_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let cert = params.self_signed(&key).expect("self-signed");
    (
        testkit::certs::Cert::from_der(cert.der()),
        Arc::new(rsa_key(testkit::certs::RsaFixtureKey::Client)),
    )
}

/// A checked-in RSA key as a ring signing key.
pub fn rsa_key(which: testkit::certs::RsaFixtureKey) -> ring::signature::RsaKeyPair {
    let der = pem::parse(which.pem()).expect("PEM");
    ring::signature::RsaKeyPair::from_pkcs8(der.contents()).expect("PKCS#8 RSA key")
}

/// Base64url without padding.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with `key` (RS256) into a compact JWS.
pub fn sign_rs256(
    key: &ring::signature::RsaKeyPair,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string()),
        b64url(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", b64url(sig))
}

/// A client assertion as azure_identity's own certificate credential writes it: RS256, `x5t`
/// in *standard* base64, `aud` = the token endpoint, `iss` = `sub` = client id, 10 minutes.
#[derive(Clone)]
pub struct CertificateAssertion {
    pub key: Arc<ring::signature::RsaKeyPair>,
    pub cert: testkit::certs::Cert,
    pub client_id: String,
    pub audience: String,
    pub clock: Clock,
    pub calls: Arc<AtomicUsize>,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    pub fn sign(&self) -> String {
        use base64::Engine as _;
        let now = self.clock.unix_seconds();
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": base64::engine::general_purpose::STANDARD.encode(self.cert.sha1_thumbprint()),
        });
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": testkit::token::derived_guid("jti", &now.to_string()),
            "nbf": now,
            "exp": now + 600,
        });
        sign_rs256(&self.key, &header, &claims)
    }
}

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.sign())
    }
}

/// Walks an error's source chain and returns every HTTP status an `azure_core::Error` in it
/// carries.
pub fn http_statuses(err: &azure_core::Error) -> Vec<u16> {
    let mut found = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(az) = e.downcast_ref::<azure_core::Error>()
            && let Some(s) = az.http_status()
        {
            found.push(u16::from(s));
        }
        cur = e.source();
    }
    found
}

/// An error's message with its whole source chain.
pub fn error_text(err: &azure_core::Error) -> String {
    let mut text = err.to_string();
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        text.push_str(" | ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    text
}
