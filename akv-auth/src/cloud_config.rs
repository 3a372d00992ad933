//! `AUTH_TYPE=azureCloudConfig`: the cloud config file (`/etc/kubernetes/azure.json`, the AKS
//! node's file or the chart's `userDefinedMSI` ConfigMap).
//!
//! Parsed as YAML (so JSON works and the trailing comma the upstream chart renders is
//! tolerated), read with a 10 MiB cap. Precedence as upstream: managed identity
//! (`useManagedIdentityExtension`, `userAssignedIdentityID`) → client secret → client
//! certificate (`aadClientCertPath` **and** `aadClientCertPassword`) → error. The chart's
//! `userDefinedMSI` file (`aadClientId: msi`, `aadClientSecret: msi`,
//! `useManagedIdentityExtension: true`) therefore yields the user-assigned managed identity,
//! never a service principal named `msi`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use serde::Deserialize;

use crate::client_certificate::{
    CertificateSource, ClientCertificateCredential, ClientCertificateOptions,
};
use crate::client_secret::{ClientSecretCredential, ClientSecretOptions};
use crate::credential::CredentialOptions;
use crate::error::{Error, Result};
use crate::managed_identity::{
    ImdsOptions, ManagedIdentityCredential, ManagedIdentityOptions, UserAssignedId,
};

/// Default path (`--cloudconfig`).
pub const DEFAULT_CLOUD_CONFIG_PATH: &str = "/etc/kubernetes/azure.json";
/// Read cap, as upstream.
pub const MAX_CLOUD_CONFIG_BYTES: u64 = 10 * 1024 * 1024;

/// The fields akv2k8s uses.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CloudConfig {
    /// Cloud name; empty = public.
    pub cloud: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Subscription id (unused for Key Vault).
    pub subscription_id: String,
    /// Service principal client id.
    pub aad_client_id: String,
    /// Service principal secret.
    pub aad_client_secret: Option<Secret>,
    /// PFX path.
    pub aad_client_cert_path: String,
    /// PFX password.
    pub aad_client_cert_password: Option<Secret>,
    /// Use managed identity.
    pub use_managed_identity_extension: bool,
    /// Client id of the user-assigned identity; empty = system-assigned.
    #[serde(rename = "userAssignedIdentityID")]
    pub user_assigned_identity_id: String,
    /// Location (parsed, unused).
    pub location: String,
    /// `vmss` or `standard` (parsed, unused).
    pub vm_type: String,
}

impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("cloud", &self.cloud)
            .field("tenant_id", &self.tenant_id)
            .field("aad_client_id", &self.aad_client_id)
            .field("has_client_secret", &self.has_secret())
            .field("aad_client_cert_path", &self.aad_client_cert_path)
            .field(
                "use_managed_identity_extension",
                &self.use_managed_identity_extension,
            )
            .field("user_assigned_identity_id", &self.user_assigned_identity_id)
            .finish_non_exhaustive()
    }
}

/// What a cloud config selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloudConfigSelection {
    /// Managed identity; `Some(client id)` for a user-assigned one.
    ManagedIdentity(Option<String>),
    /// Service principal with `aadClientSecret`.
    ClientSecret,
    /// Service principal with `aadClientCertPath`.
    ClientCertificate,
}

impl CloudConfig {
    /// Parses JSON or YAML (trailing commas tolerated).
    ///
    /// # Errors
    ///
    /// [`Error::ParseCloudConfig`] (without the parser's text, which may quote the secret).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        serde_saphyr::from_str(text).map_err(|_| Error::ParseCloudConfig {
            path: path.to_owned(),
            location: String::new(),
        })
    }

    /// Reads and parses `path` (at most 10 MiB).
    ///
    /// # Errors
    ///
    /// [`Error::ReadFile`] or [`Error::ParseCloudConfig`].
    pub fn load(path: &Path) -> Result<Self> {
        let read_err = |e| Error::ReadFile {
            what: "cloud config",
            path: path.to_owned(),
            source: e,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_CLOUD_CONFIG_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        Self::parse(&text, path)
    }

    fn has_secret(&self) -> bool {
        self.aad_client_secret
            .as_ref()
            .is_some_and(|s| !s.secret().is_empty())
    }

    /// Upstream precedence: managed identity → secret → certificate.
    ///
    /// # Errors
    ///
    /// [`Error::NoCredentials`] when none is configured.
    pub fn selection(&self) -> Result<CloudConfigSelection> {
        if self.use_managed_identity_extension {
            let id = self.user_assigned_identity_id.trim();
            return Ok(CloudConfigSelection::ManagedIdentity(
                (!id.is_empty()).then(|| id.to_owned()),
            ));
        }
        if self.has_secret() {
            return Ok(CloudConfigSelection::ClientSecret);
        }
        if !self.aad_client_cert_path.is_empty() && self.aad_client_cert_password.is_some() {
            return Ok(CloudConfigSelection::ClientCertificate);
        }
        Err(Error::NoCredentials {
            client_id: self.aad_client_id.clone(),
        })
    }

    /// Builds the selected credential; returns it with its provider name.
    ///
    /// # Errors
    ///
    /// As [`CloudConfig::selection`] and the provider constructors.
    pub fn credential(
        &self,
        common: CredentialOptions,
        imds: ImdsOptions,
    ) -> Result<(Arc<dyn TokenCredential>, &'static str)> {
        Ok(match self.selection()? {
            CloudConfigSelection::ManagedIdentity(id) => (
                ManagedIdentityCredential::new(ManagedIdentityOptions {
                    user_assigned: id.map(UserAssignedId::ClientId),
                    imds,
                    env: crate::Env::Map(Default::default()),
                    common,
                })?,
                crate::managed_identity::PROVIDER,
            ),
            CloudConfigSelection::ClientSecret => (
                ClientSecretCredential::new(ClientSecretOptions {
                    tenant_id: self.tenant_id.clone(),
                    client_id: self.aad_client_id.clone(),
                    secret: self
                        .aad_client_secret
                        .clone()
                        .unwrap_or_else(|| Secret::new("")),
                    common,
                })?,
                crate::client_secret::PROVIDER,
            ),
            CloudConfigSelection::ClientCertificate => (
                ClientCertificateCredential::new(ClientCertificateOptions {
                    tenant_id: self.tenant_id.clone(),
                    client_id: self.aad_client_id.clone(),
                    certificate: CertificateSource::Path(PathBuf::from(&self.aad_client_cert_path)),
                    password: self.aad_client_cert_password.clone(),
                    common,
                })?,
                crate::client_certificate::PROVIDER,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn parse(text: &str) -> CloudConfig {
        CloudConfig::parse(text, Path::new("azure.json")).expect("parse")
    }

    #[test]
    fn the_charts_user_defined_msi_file_with_trailing_comma_selects_the_user_assigned_identity() {
        let text = r#"{
  "cloud": "AzurePublicCloud",
  "tenantId": "t",
  "subscriptionId": "s",
  "aadClientId": "msi",
  "aadClientSecret": "msi",
  "useManagedIdentityExtension": true,
  "userAssignedIdentityID": "11111111-2222-3333-4444-555555555555",
}"#;
        let cfg = parse(text);
        assert_eq!(
            cfg.selection().expect("selection"),
            CloudConfigSelection::ManagedIdentity(Some(
                "11111111-2222-3333-4444-555555555555".into()
            ))
        );
    }

    #[test]
    fn precedence_is_managed_identity_then_secret_then_certificate() {
        let sp = parse(
            r#"{"aadClientId":"c","aadClientSecret":"x","aadClientCertPath":"/p","aadClientCertPassword":"pw"}"#,
        );
        assert_eq!(
            sp.selection().expect("sp"),
            CloudConfigSelection::ClientSecret
        );
        let cert =
            parse(r#"{"aadClientId":"c","aadClientCertPath":"/p","aadClientCertPassword":"pw"}"#);
        assert_eq!(
            cert.selection().expect("cert"),
            CloudConfigSelection::ClientCertificate
        );
        let cert_no_pw = parse(r#"{"aadClientId":"c","aadClientCertPath":"/p"}"#);
        let err = cert_no_pw.selection().expect_err("needs both");
        assert!(
            err.to_string()
                .contains("no credentials provided for AAD application c"),
            "{err}"
        );
        let system = parse("useManagedIdentityExtension: true\n");
        assert_eq!(
            system.selection().expect("mi"),
            CloudConfigSelection::ManagedIdentity(None)
        );
    }

    #[test]
    fn debug_and_parse_errors_never_print_the_secret() {
        let cfg = parse(
            r#"{"aadClientId":"c","aadClientSecret":"hunter2","aadClientCertPassword":"pfxpw"}"#,
        );
        let text = format!("{cfg:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("pfxpw"),
            "{text}"
        );
        let err = CloudConfig::parse(r#"{"aadClientSecret": "hunter2" "#, Path::new("a.json"))
            .expect_err("broken");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    /// The fields of a cloud config as generated: `None` leaves the key out.
    #[derive(Clone, Debug)]
    struct Fields {
        strings: Vec<(&'static str, Option<String>)>,
        secret: Option<String>,
        cert_password: Option<String>,
        use_managed_identity: Option<bool>,
    }

    const STRING_KEYS: [&str; 9] = [
        "cloud",
        "tenantId",
        "subscriptionId",
        "aadClientId",
        "aadClientCertPath",
        "userAssignedIdentityID",
        "location",
        "vmType",
        "resourceGroup",
    ];

    fn fields() -> impl Strategy<Value = Fields> {
        let value = proptest::option::of("[ -~]{0,24}");
        let secret = proptest::option::of("S3CRET-[a-zA-Z0-9]{10}");
        (
            proptest::collection::vec(value, STRING_KEYS.len()),
            secret.clone(),
            secret,
            proptest::option::of(any::<bool>()),
        )
            .prop_map(
                |(values, secret, cert_password, use_managed_identity)| Fields {
                    strings: STRING_KEYS.iter().copied().zip(values).collect(),
                    secret,
                    cert_password,
                    use_managed_identity,
                },
            )
    }

    impl Fields {
        fn string(&self, key: &str) -> String {
            self.strings
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone())
                .unwrap_or_default()
        }

        /// Key/value pairs, extra keys akv2k8s ignores included, in generated order.
        fn entries(&self) -> Vec<(&'static str, Value)> {
            let mut out: Vec<(&'static str, Value)> = self
                .strings
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (*k, json!(v))))
                .collect();
            out.extend(self.secret.as_ref().map(|s| ("aadClientSecret", json!(s))));
            out.extend(
                self.cert_password
                    .as_ref()
                    .map(|s| ("aadClientCertPassword", json!(s))),
            );
            out.extend(
                self.use_managed_identity
                    .map(|b| ("useManagedIdentityExtension", json!(b))),
            );
            out.push(("maximumLoadBalancerRuleCount", json!(250)));
            out.push((
                "cloudProviderRateLimit",
                json!({"qps": 6, "buckets": [1, 2]}),
            ));
            out
        }
    }

    /// Renders `entries` as JSON (optionally with the chart's trailing comma) or as YAML block
    /// mapping lines with JSON-quoted values.
    fn render(
        entries: &[(&'static str, Value)],
        yaml: bool,
        trailing_comma: bool,
        pad: &str,
    ) -> String {
        if yaml {
            return entries
                .iter()
                .map(|(k, v)| format!("{k}:{pad} {v}\n"))
                .collect();
        }
        let body = entries
            .iter()
            .map(|(k, v)| format!("{pad}\"{k}\"{pad}:{pad}{v}"))
            .collect::<Vec<_>>()
            .join(",\n");
        let comma = if trailing_comma && !entries.is_empty() {
            ","
        } else {
            ""
        };
        format!("{{\n{body}{comma}\n}}")
    }

    fn document() -> impl Strategy<Value = (Fields, String)> {
        (fields(), any::<bool>(), any::<bool>(), "[ \t]{0,2}")
            .prop_flat_map(|(f, yaml, comma, pad)| {
                let entries = Just(f.entries()).prop_shuffle();
                (Just(f), entries, Just(yaml), Just(comma), Just(pad))
            })
            .prop_map(|(f, entries, yaml, comma, pad)| {
                let text = render(&entries, yaml, comma, &pad);
                (f, text)
            })
    }

    proptest! {
        #[test]
        fn json_yaml_and_trailing_commas_in_any_key_order_parse_to_the_same_fields(
            (f, text) in document(),
        ) {
            let cfg = CloudConfig::parse(&text, Path::new("azure.json")).expect("parse");
            prop_assert_eq!(&cfg.cloud, &f.string("cloud"), "{}", text);
            prop_assert_eq!(&cfg.tenant_id, &f.string("tenantId"));
            prop_assert_eq!(&cfg.subscription_id, &f.string("subscriptionId"));
            prop_assert_eq!(&cfg.aad_client_id, &f.string("aadClientId"));
            prop_assert_eq!(&cfg.aad_client_cert_path, &f.string("aadClientCertPath"));
            prop_assert_eq!(&cfg.user_assigned_identity_id, &f.string("userAssignedIdentityID"));
            prop_assert_eq!(&cfg.location, &f.string("location"));
            prop_assert_eq!(&cfg.vm_type, &f.string("vmType"));
            prop_assert_eq!(
                cfg.aad_client_secret.as_ref().map(|s| s.secret().to_owned()),
                f.secret.clone()
            );
            prop_assert_eq!(
                cfg.aad_client_cert_password.as_ref().map(|s| s.secret().to_owned()),
                f.cert_password.clone()
            );
            prop_assert_eq!(cfg.use_managed_identity_extension, f.use_managed_identity.unwrap_or(false));
            let debug = format!("{cfg:?}");
            for secret in f.secret.iter().chain(&f.cert_password) {
                prop_assert!(!debug.contains(secret.as_str()), "{}", debug);
            }
        }

        #[test]
        fn truncated_documents_never_echo_a_secret_in_their_error(
            (f, text) in document(),
            cut in any::<proptest::sample::Index>(),
        ) {
            let truncated = &text[..cut.index(text.len() + 1)];
            if let Err(err) = CloudConfig::parse(truncated, Path::new("azure.json")) {
                let shown = format!("{err} {err:?}");
                for secret in f.secret.iter().chain(&f.cert_password) {
                    prop_assert!(!shown.contains(secret.as_str()), "{}", shown);
                }
            }
        }
    }
}
