//! testkit's fakes as `demo`, `sandbox` and `render --vault-fixture` run them: Key Vault and
//! Entra ID (and, for `demo` and `sandbox`, the Kubernetes API server) on 127.0.0.1, sharing
//! one CA, one clock and one token issuer, seeded from a vault fixture; and the Key Vault
//! client the controller binary would build to read them (akv-auth's client-secret credential
//! against the Entra fake, akv-client's Azure SDK provider, production host names resolved to
//! the fakes, only the testkit CA trusted).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use akv_auth::{AuthMode, AuthOptions, Credentials, Env, HttpOptions};
use akv_client::KeyVaultProvider;
use akv_client::azure::{AzureKeyVaults, AzureOptions};
use anyhow::{Context as _, bail};
use kube::api::Api;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};
use testkit::certs::TestCa;
use testkit::clock::Clock;
use testkit::entra::{EntraFake, EntraOptions};
use testkit::fixtures::{Applied, Fakes, Fixture};
use testkit::imds::{ImdsFake, ImdsMode, ImdsOptions, NmiOptions};
use testkit::vault::{KeyVaultFake, KeyVaultOptions};

/// Deadline of every wait on the fakes.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The identity the controller (or `render`) signs in as: a fixture client with a secret.
#[derive(Clone)]
pub struct ClientLogin {
    /// The fixture principal's name.
    pub principal: String,
    /// `AZURE_TENANT_ID`.
    pub tenant_id: String,
    /// `AZURE_CLIENT_ID`.
    pub client_id: String,
    /// `AZURE_CLIENT_SECRET`.
    pub secret: String,
    /// `AZURE_ENVIRONMENT`, when the client is not in the public cloud.
    pub cloud: Option<String>,
}

impl std::fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLogin")
            .field("principal", &self.principal)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientLogin {
    /// The `AZURE_*` variables of `AUTH_TYPE=environment` (client secret).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (akv_auth::env::AZURE_TENANT_ID, self.tenant_id.clone()),
            (akv_auth::env::AZURE_CLIENT_ID, self.client_id.clone()),
            (akv_auth::env::AZURE_CLIENT_SECRET, self.secret.clone()),
        ];
        if let Some(cloud) = &self.cloud {
            env.push(("AZURE_ENVIRONMENT", cloud.clone()));
        }
        env
    }
}

/// Key Vault and Entra fakes seeded from one fixture.
#[derive(Debug)]
pub struct AzureFakes {
    /// The CA behind every fake's TLS certificate.
    pub ca: Arc<TestCa>,
    /// The clock the fakes share.
    pub clock: Clock,
    /// Key Vault (every vault of the fixture, by host name).
    pub kv: KeyVaultFake,
    /// Entra ID's token endpoint (the fixture's clients).
    pub entra: EntraFake,
    /// IMDS (the fixture's `identities`), or aad-pod-identity's NMI when it has `pods`.
    pub imds: ImdsFake,
    /// The login of the fixture's first client with a secret.
    pub login: ClientLogin,
}

impl AzureFakes {
    /// Starts the fakes and seeds `fixture` into them.
    ///
    /// # Errors
    ///
    /// A fake cannot start, the fixture does not apply, or it declares no client with a
    /// secret (nothing could sign in).
    pub async fn start(fixture: &Fixture) -> anyhow::Result<Self> {
        let login_of = fixture_login(fixture)?;
        let clock = Clock::system();
        let ca = Arc::new(TestCa::new().context("making the testkit CA")?);
        let issuer = Arc::new(
            testkit::token::TokenIssuer::new(clock.clone()).context("making the token issuer")?,
        );
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer.clone()),
            ca: Some(ca.clone()),
        })
        .await
        .context("starting the Key Vault fake")?;
        let entra = EntraFake::start(EntraOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer),
            ca: Some(ca.clone()),
            token_lifetime: None,
        })
        .await
        .context("starting the Entra ID fake")?;
        let imds = ImdsFake::start(ImdsOptions {
            clock: Some(clock.clone()),
            issuer: Some(kv.issuer().clone()),
            mode: match fixture.pods.is_empty() {
                true => ImdsMode::Vm,
                false => ImdsMode::Nmi(NmiOptions::default()),
            },
            ..ImdsOptions::default()
        })
        .await
        .context("starting the IMDS fake")?;
        let applied = fixture
            .apply_all(&Fakes::new().key_vault(&kv).entra(&entra).imds(&imds))
            .context("seeding the fixture into the fakes")?;
        let login = login_of(&applied)?;
        Ok(Self {
            ca,
            clock,
            kv,
            entra,
            imds,
            login,
        })
    }

    /// Host name → loopback address of Key Vault (every cloud's vault hosts of the fixture)
    /// and Entra (every authority host).
    pub fn resolve(&self) -> Vec<(String, SocketAddr)> {
        let mut all = self.kv.resolve_overrides();
        all.extend(self.entra.resolve_overrides());
        all
    }

    /// [`AzureFakes::resolve`] as `AKV2K8S_RESOLVE` takes it.
    pub fn resolve_env(&self) -> String {
        format!("{},{}", self.kv.resolve_env(), self.entra.resolve_env())
    }

    /// The Key Vault provider `akv2k8s-controller` builds with `AUTH_TYPE=environment` and
    /// the fixture client's secret, `AKV2K8S_RESOLVE` pointing at the fakes and the testkit
    /// CA as the only trusted root; and the cloud's Key Vault DNS suffix.
    ///
    /// # Errors
    ///
    /// The credential or the client cannot be built.
    pub fn key_vaults(&self) -> anyhow::Result<(Arc<dyn KeyVaultProvider>, String)> {
        let env: BTreeMap<String, String> = self
            .login
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let http = HttpOptions::default()
            .trust_only(self.ca.pem())
            .resolve(self.resolve());
        key_vaults(
            AuthMode::Environment,
            AuthOptions {
                env: Env::Map(Arc::new(env)),
                http: Some(http.clone()),
                ..AuthOptions::default()
            },
            http,
        )
    }

    /// Stops the servers.
    pub fn shutdown(&self) {
        self.kv.shutdown();
        self.entra.shutdown();
        self.imds.shutdown();
    }
}

/// Key Vault access for `mode` as `akv2k8s-controller` builds it (akv-auth credential, then
/// akv-client's Azure SDK provider), and the cloud's Key Vault DNS suffix.
///
/// # Errors
///
/// Credential configuration errors (missing tenant id, unreadable cloud config, …).
pub fn key_vaults(
    mode: AuthMode,
    opts: AuthOptions,
    http: HttpOptions,
) -> anyhow::Result<(Arc<dyn KeyVaultProvider>, String)> {
    let creds = Credentials::new(mode, opts)
        .with_context(|| format!("building the Key Vault credential (AUTH_TYPE={mode})"))?;
    tracing::info!(auth_type = %creds.mode, provider = creds.provider, cloud = %creds.cloud.name, "Key Vault credential");
    let provider = AzureKeyVaults::new(AzureOptions::single(creds.credential, http))
        .context("building the Key Vault client")?;
    Ok((provider, creds.cloud.key_vault_dns_suffix))
}

/// The first client of the fixture with a secret, resolved once the fixture is applied.
type LoginOf = Box<dyn FnOnce(&Applied) -> anyhow::Result<ClientLogin>>;

fn fixture_login(fixture: &Fixture) -> anyhow::Result<LoginOf> {
    let Some((client, secret)) = fixture
        .clients
        .iter()
        .find_map(|c| c.secrets.first().map(|s| (c, s.expose().to_owned())))
    else {
        bail!(
            "the vault fixture declares no client with a secret: add one under `clients:` \
             (principal: <name>, secrets: [\"…\"]) and grant it read access in the vaults; \
             akv2k8s signs in as that client (docs/testkit-fixtures.md)"
        );
    };
    let (principal, cloud) = (client.principal.clone(), client.cloud.clone());
    Ok(Box::new(move |applied: &Applied| {
        let p = applied
            .principal(&principal)
            .with_context(|| format!("client {principal:?} is not a declared principal"))?;
        Ok(ClientLogin {
            principal: principal.clone(),
            tenant_id: p.tenant_id.clone(),
            client_id: p.app_id.clone(),
            secret,
            cloud,
        })
    }))
}

/// The Azure fakes plus the Kubernetes API server with the AzureKeyVaultSecret CRD installed.
pub struct Cluster {
    /// Key Vault and Entra.
    pub azure: AzureFakes,
    /// The API server.
    pub api: ApiServerFake,
    /// A client of the API server (admin token).
    pub client: kube::Client,
}

impl Cluster {
    /// Starts every fake, seeds the fixture and installs the CRD.
    ///
    /// # Errors
    ///
    /// As [`AzureFakes::start`]; the API server cannot start or the CRD is not established
    /// within [`DEADLINE`].
    pub async fn start(fixture: &Fixture) -> anyhow::Result<Self> {
        let azure = AzureFakes::start(fixture).await?;
        let api = ApiServerFake::start(ApiServerOptions {
            clock: Some(azure.clock.clone()),
            ca: Some(azure.ca.clone()),
            history: None,
        })
        .await
        .context("starting the Kubernetes API server fake")?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml())
            .context("reading the fake's kubeconfig")?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("using the fake's kubeconfig")?;
        let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
        Ok(Self { azure, api, client })
    }

    /// Installs the AzureKeyVaultSecret CRD (the checked-in one: `k8s_sync::crd()` equals
    /// it) and waits until it is established.
    ///
    /// # Errors
    ///
    /// The API server refuses it, or it is not established within [`DEADLINE`].
    pub async fn install_crd(&self) -> anyhow::Result<()> {
        k8s_sync::crd::install(&self.client, &k8s_sync::crd()?, DEADLINE).await?;
        Ok(())
    }

    /// Stops every server.
    pub fn shutdown(&self) {
        self.azure.shutdown();
    }
}

impl Cluster {
    /// Applies `docs` (server-side apply as field manager `akv2k8s`, like
    /// `kubectl apply --server-side`): Namespaces, Secrets, ConfigMaps and
    /// AzureKeyVaultSecrets at any served version.
    ///
    /// # Errors
    ///
    /// Another kind, or the API server refuses a document (the message names it).
    pub async fn apply(&self, docs: &[crate::manifests::Document]) -> anyhow::Result<()> {
        use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
        for doc in docs {
            let api_version = doc.value["apiVersion"].as_str().unwrap_or_default();
            let kind = doc.value["kind"].as_str().unwrap_or_default();
            let plural = match kind {
                "Namespace" => "namespaces",
                "Secret" => "secrets",
                "ConfigMap" => "configmaps",
                k8s_sync::crd::KIND => k8s_sync::crd::PLURAL,
                other => bail!(
                    "{}: kind {other:?}: the demo applies Namespaces, Secrets, ConfigMaps and \
                     AzureKeyVaultSecrets only",
                    doc.location()
                ),
            };
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let ar = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: api_version.into(),
                kind: kind.into(),
                plural: plural.into(),
            };
            let obj: DynamicObject = serde_json::from_value(doc.value.clone())
                .with_context(|| format!("{}: not a Kubernetes object", doc.location()))?;
            let name = obj.metadata.name.clone().unwrap_or_default();
            let api: Api<DynamicObject> = match (kind, obj.metadata.namespace.as_deref()) {
                ("Namespace", _) => Api::all_with(self.client.clone(), &ar),
                (_, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
                (_, None) => Api::namespaced_with(self.client.clone(), "default", &ar),
            };
            api.patch(
                &name,
                &PatchParams::apply("akv2k8s").force(),
                &Patch::Apply(&obj),
            )
            .await
            .with_context(|| format!("{}: applying {}", doc.location(), doc.describe()))?;
        }
        Ok(())
    }
}
