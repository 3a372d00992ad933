//! A Key Vault fake with vault `accvault`, and akv-client wired to it.

use std::sync::Arc;
use std::time::Duration;

use akv_auth::HttpOptions;
use akv_client::azure::{AzureKeyVaults, AzureOptions};
use akv_client::{IdentityRef, KeyVault, KeyVaultProvider, VaultUrl};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use testkit::clock::Clock;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, VaultSpec};

pub const VAULT: &str = "accvault";

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

    pub fn url(&self) -> VaultUrl {
        VaultUrl::from_name(VAULT, "").expect("url")
    }

    /// The production wiring: akv-auth's HTTP options with the resolve override and the
    /// testkit CA as the only root, one credential.
    pub fn provider(&self) -> Arc<AzureKeyVaults> {
        self.provider_with(
            HttpOptions::default()
                .trust_only(self.kv.ca_pem())
                .resolve(self.kv.resolve_overrides()),
        )
    }

    /// As [`World::provider`] with other HTTP options.
    pub fn provider_with(&self, http: HttpOptions) -> Arc<AzureKeyVaults> {
        let cred = Arc::new(EntraStandIn::new(self));
        AzureKeyVaults::new(AzureOptions::single(cred, http)).expect("provider")
    }

    pub fn vault(&self) -> Arc<dyn KeyVault> {
        self.provider()
            .vault(&self.url(), &IdentityRef::default_identity())
            .expect("vault")
    }
}

/// Mints the fake's tokens for the requested audience, as Entra would.
#[derive(Debug)]
pub struct EntraStandIn {
    issuer: Arc<TokenIssuer>,
    principal: Principal,
}

impl EntraStandIn {
    /// Mints tokens for the world's app.
    pub fn new(w: &World) -> Self {
        Self {
            issuer: w.kv.issuer().clone(),
            principal: w.app.clone(),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for EntraStandIn {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let (token, exp) =
            self.issuer
                .mint_for_vault_scope(&self.principal, scope, Duration::from_secs(3600));
        let expires =
            azure_core::time::OffsetDateTime::from_unix_timestamp(exp as i64).expect("expiry");
        Ok(AccessToken::new(token.as_str().to_owned(), expires))
    }
}
