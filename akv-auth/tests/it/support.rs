//! Shared setup: Key Vault, Entra and IMDS fakes on one clock, issuer and CA; our HTTP options
//! pointing at them through the resolve override.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use akv_auth::{CredentialOptions, HttpOptions, RetryConfig};
use azure_core::credentials::TokenCredential;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use testkit::clock::Clock;
use testkit::cloud::Cloud;
use testkit::entra::{EntraFake, EntraOptions};
use testkit::imds::{ImdsFake, ImdsMode, ImdsOptions};
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, SecretSpec, VaultSpec};

pub const VAULT: &str = "accvault";
pub const ACCVAULT_URL: &str = "https://accvault.vault.azure.net/";
pub const CHINAVAULT_URL: &str = "https://chinavault.vault.azure.cn/";
pub const SCOPE: &str = "https://vault.azure.net/.default";

pub struct World {
    pub kv: KeyVaultFake,
    pub entra: EntraFake,
    pub clock: Clock,
}

impl World {
    pub async fn start() -> World {
        Self::with(Clock::system(), None).await
    }

    pub async fn with(clock: Clock, token_lifetime: Option<Duration>) -> World {
        testkit::install_crypto_provider();
        let issuer = Arc::new(TokenIssuer::new(clock.clone()).expect("issuer"));
        let ca = Arc::new(testkit::certs::TestCa::new().expect("CA"));
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer.clone()),
            ca: Some(ca.clone()),
        })
        .await
        .expect("Key Vault fake");
        kv.create_vault(VaultSpec::new(VAULT)).expect("vault");
        kv.create_vault(VaultSpec::new("chinavault").cloud(Cloud::CHINA))
            .expect("china vault");
        kv.set_secret(VAULT, "db-pass", SecretSpec::new("s3cr3t"))
            .expect("seed");
        kv.set_secret("chinavault", "db-pass", SecretSpec::new("ni hao"))
            .expect("seed");
        let entra = EntraFake::start(EntraOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer),
            ca: Some(ca),
            token_lifetime,
        })
        .await
        .expect("Entra fake");
        World { kv, entra, clock }
    }

    pub fn grant(&self, p: &Principal) {
        self.kv
            .grant(VAULT, p, Permissions::read_all())
            .expect("grant");
        self.kv
            .grant("chinavault", p, Permissions::read_all())
            .expect("grant");
    }

    pub async fn imds(&self, mode: ImdsMode) -> ImdsFake {
        ImdsFake::start(ImdsOptions {
            clock: Some(self.clock.clone()),
            issuer: Some(self.kv.issuer().clone()),
            mode,
            ..Default::default()
        })
        .await
        .expect("IMDS fake")
    }

    /// Our HTTP options: the fakes' CA only, every fake host resolved to its listener, no
    /// SDK retries.
    pub fn http(&self) -> HttpOptions {
        HttpOptions {
            retry: RetryConfig::none(),
            ..HttpOptions::default()
        }
        .trust_only(self.kv.ca_pem())
        .resolve(
            self.kv
                .resolve_overrides()
                .into_iter()
                .chain(self.entra.resolve_overrides()),
        )
    }

    pub fn common(&self) -> CredentialOptions {
        CredentialOptions {
            http: self.http(),
            ..Default::default()
        }
    }

    /// Reads `name` from `vault_url` with `cred` through the official `SecretClient` on our
    /// transport.
    pub async fn read_secret(
        &self,
        vault_url: &str,
        cred: Arc<dyn TokenCredential>,
        name: &str,
    ) -> azure_core::Result<Option<String>> {
        let options = SecretClientOptions {
            client_options: self.http().client_options().expect("client options"),
            ..Default::default()
        };
        let client = SecretClient::new(vault_url, cred, Some(options))?;
        Ok(client.get_secret(name, None).await?.into_model()?.value)
    }
}

pub fn pod_ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The error's text with its whole source chain.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        text.push_str(" | ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    text
}

/// Mirrors tokio's (paused) clock onto the testkit clock, one second at a time, so NMI's
/// assignment window (testkit clock) and our retry budget (tokio time) advance together.
pub fn mirror_clock(clock: Clock) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            clock.advance(Duration::from_secs(1));
        }
    })
}
