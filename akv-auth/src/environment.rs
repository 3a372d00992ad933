//! `AUTH_TYPE=environment`: go-autorest's environment settings, first usable wins:
//!
//! 1. client secret (`AZURE_CLIENT_SECRET` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID`);
//! 2. client certificate (`AZURE_CERTIFICATE_PATH`, `AZURE_CERTIFICATE_PASSWORD`; PFX or PEM);
//! 3. username/password (`AZURE_USERNAME` + `AZURE_PASSWORD`);
//! 4. managed identity, `AZURE_CLIENT_ID` as the user-assigned identity if set.
//!
//! The cloud comes from `AZURE_ENVIRONMENT`.

use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};

use crate::client_certificate::{
    CertificateSource, ClientCertificateCredential, ClientCertificateOptions,
};
use crate::client_secret::{ClientSecretCredential, ClientSecretOptions};
use crate::credential::CredentialOptions;
use crate::env::{
    AZURE_CERTIFICATE_PASSWORD, AZURE_CERTIFICATE_PATH, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
    AZURE_PASSWORD, AZURE_TENANT_ID, AZURE_USERNAME, Env,
};
use crate::error::{Error, Result};
use crate::managed_identity::{
    ImdsOptions, ManagedIdentityCredential, ManagedIdentityOptions, UserAssignedId,
};
use crate::username_password::{UsernamePasswordCredential, UsernamePasswordOptions};

/// Which provider the environment selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvironmentSelection {
    /// `AZURE_CLIENT_SECRET` is set.
    ClientSecret,
    /// `AZURE_CERTIFICATE_PATH` is set.
    ClientCertificate,
    /// `AZURE_USERNAME` and `AZURE_PASSWORD` are set.
    UsernamePassword,
    /// None of the above.
    ManagedIdentity,
}

impl EnvironmentSelection {
    /// The selection for `env`, by upstream precedence.
    pub fn of(env: &Env) -> Self {
        if env.is_set(AZURE_CLIENT_SECRET) {
            Self::ClientSecret
        } else if env.is_set(AZURE_CERTIFICATE_PATH) {
            Self::ClientCertificate
        } else if env.is_set(AZURE_USERNAME) && env.is_set(AZURE_PASSWORD) {
            Self::UsernamePassword
        } else {
            Self::ManagedIdentity
        }
    }

    /// Provider name for logs.
    pub fn provider(self) -> &'static str {
        match self {
            Self::ClientSecret => crate::client_secret::PROVIDER,
            Self::ClientCertificate => crate::client_certificate::PROVIDER,
            Self::UsernamePassword => crate::username_password::PROVIDER,
            Self::ManagedIdentity => crate::managed_identity::PROVIDER,
        }
    }
}

/// Inputs of [`EnvironmentCredential::new`].
#[derive(Clone, Debug, Default)]
pub struct EnvironmentOptions {
    /// The variables.
    pub env: Env,
    /// Cloud, HTTP, cache (`cloud` is usually [`crate::CloudEnvironment::from_env`]).
    pub common: CredentialOptions,
    /// IMDS options for the managed identity fallback.
    pub imds: ImdsOptions,
}

/// The credential `AUTH_TYPE=environment` selects.
#[derive(Debug)]
pub struct EnvironmentCredential {
    inner: Arc<dyn TokenCredential>,
    selection: EnvironmentSelection,
}

impl EnvironmentCredential {
    /// Selects and builds the provider.
    ///
    /// # Errors
    ///
    /// Missing tenant/client id for the service principal flows, certificate errors.
    pub fn new(opts: EnvironmentOptions) -> Result<Arc<Self>> {
        let selection = EnvironmentSelection::of(&opts.env);
        let inner = match service_principal(&opts.env, &opts.common)? {
            Some(c) => c,
            None => ManagedIdentityCredential::new(ManagedIdentityOptions {
                user_assigned: opts.env.get(AZURE_CLIENT_ID).map(UserAssignedId::ClientId),
                imds: opts.imds,
                env: opts.env.clone(),
                common: opts.common,
            })? as Arc<dyn TokenCredential>,
        };
        Ok(Arc::new(Self { inner, selection }))
    }

    /// What was selected.
    pub fn selection(&self) -> EnvironmentSelection {
        self.selection
    }

    /// Provider name for logs.
    pub fn provider(&self) -> &'static str {
        self.selection.provider()
    }
}

/// Client secret, certificate or username/password from `env`; `None` when none is configured.
pub(crate) fn service_principal(
    env: &Env,
    common: &CredentialOptions,
) -> Result<Option<Arc<dyn TokenCredential>>> {
    let need = |name: &'static str, flow: &str| {
        env.get(name).ok_or_else(|| Error::InvalidConfig {
            field: name,
            reason: format!("not set, but {flow} needs it"),
        })
    };
    Ok(Some(match EnvironmentSelection::of(env) {
        EnvironmentSelection::ClientSecret => {
            let flow = "AZURE_CLIENT_SECRET is set: the client secret flow";
            ClientSecretCredential::new(ClientSecretOptions {
                tenant_id: need(AZURE_TENANT_ID, flow)?,
                client_id: need(AZURE_CLIENT_ID, flow)?,
                secret: Secret::new(need(AZURE_CLIENT_SECRET, flow)?),
                common: common.clone(),
            })? as Arc<dyn TokenCredential>
        }
        EnvironmentSelection::ClientCertificate => {
            let flow = "AZURE_CERTIFICATE_PATH is set: the client certificate flow";
            ClientCertificateCredential::new(ClientCertificateOptions {
                tenant_id: need(AZURE_TENANT_ID, flow)?,
                client_id: need(AZURE_CLIENT_ID, flow)?,
                certificate: CertificateSource::Path(PathBuf::from(need(
                    AZURE_CERTIFICATE_PATH,
                    flow,
                )?)),
                password: env.get(AZURE_CERTIFICATE_PASSWORD).map(Secret::new),
                common: common.clone(),
            })?
        }
        EnvironmentSelection::UsernamePassword => {
            let flow = "AZURE_USERNAME and AZURE_PASSWORD are set: the username/password flow";
            UsernamePasswordCredential::new(UsernamePasswordOptions {
                tenant_id: need(AZURE_TENANT_ID, flow)?,
                client_id: need(AZURE_CLIENT_ID, flow)?,
                username: need(AZURE_USERNAME, flow)?,
                password: Secret::new(need(AZURE_PASSWORD, flow)?),
                common: common.clone(),
            })?
        }
        EnvironmentSelection::ManagedIdentity => return Ok(None),
    }))
}

#[async_trait::async_trait]
impl TokenCredential for EnvironmentCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // Every inner provider caches.
        self.inner.get_token(scopes, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_secret_then_certificate_then_password_then_managed_identity() {
        let all = [
            (AZURE_CLIENT_SECRET, "s"),
            (AZURE_CERTIFICATE_PATH, "/c.pfx"),
            (AZURE_USERNAME, "u"),
            (AZURE_PASSWORD, "p"),
        ];
        let cases = [
            (&all[..], EnvironmentSelection::ClientSecret),
            (&all[1..], EnvironmentSelection::ClientCertificate),
            (&all[2..], EnvironmentSelection::UsernamePassword),
            (&all[2..3], EnvironmentSelection::ManagedIdentity),
            (&[][..], EnvironmentSelection::ManagedIdentity),
        ];
        for (vars, want) in cases {
            let env: Env = vars.iter().copied().collect();
            assert_eq!(EnvironmentSelection::of(&env), want, "{vars:?}");
        }
    }

    #[test]
    fn a_secret_without_tenant_is_a_clear_startup_error() {
        let env = Env::from([(AZURE_CLIENT_SECRET, "hunter2"), (AZURE_CLIENT_ID, "c")]);
        let err = EnvironmentCredential::new(EnvironmentOptions {
            env,
            ..Default::default()
        })
        .expect_err("no tenant");
        let text = err.to_string();
        assert!(
            text.contains("AZURE_TENANT_ID") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
