//! `akv2k8s render`: the Secrets and ConfigMaps the controller would write for AzureKeyVaultSecret
//! manifests, read from Key Vault (or a fake seeded with a vault fixture) through the
//! controller's own read and formatting code ([`k8s_sync::preview`]).
//!
//! Documents that are not AzureKeyVaultSecrets are skipped with a note on stderr, so a whole
//! deployment directory can be rendered. Outputs of several AzureKeyVaultSecrets that name one
//! object are merged as the API server merges their server-side applies. An AzureKeyVaultSecret
//! that cannot be rendered is reported on stderr (file, document, cause) and makes the exit
//! status 1; the others are still printed.

use std::io::Write as _;
use std::sync::Arc;

use akv_auth::{AuthOptions, HttpOptions};
use akv_client::KeyVaultProvider;
use anyhow::Context as _;
use k8s_sync::preview::{ReadOptions, merge, preview};
use kube::ResourceExt as _;

use crate::args::RenderArgs;
use crate::fakes::{AzureFakes, key_vaults};
use crate::manifests::{self, Document};
use crate::show;

/// Runs `render`; `Ok(false)` when some AzureKeyVaultSecret could not be rendered.
///
/// # Errors
///
/// Unreadable input, invalid manifests, no AzureKeyVaultSecret at all, or no Key Vault access.
pub async fn run(args: RenderArgs) -> anyhow::Result<bool> {
    let docs = manifests::read_paths(&args.files)?;
    let mut akvs = Vec::new();
    for doc in &docs {
        match doc.akvs()? {
            Some(mut a) => {
                if a.metadata.namespace.is_none() {
                    a.metadata.namespace = Some(args.namespace.clone());
                }
                akvs.push((doc, a));
            }
            None => eprintln!(
                "akv2k8s render: {}: skipping {} (not an AzureKeyVaultSecret)",
                doc.location(),
                doc.describe()
            ),
        }
    }
    anyhow::ensure!(
        !akvs.is_empty(),
        "no AzureKeyVaultSecret in {}",
        args.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Keeps the fakes running while they are read.
    let (_fakes, key_vault, suffix) = match &args.vault_fixture {
        Some(path) => {
            let fixture = manifests::fixture(Some(path))?;
            let fakes = AzureFakes::start(&fixture).await?;
            let (kv, suffix) = fakes.key_vaults()?;
            (Some(fakes), kv, suffix)
        }
        None => {
            let (kv, suffix) = real_key_vaults(&args)?;
            (None, kv, suffix)
        }
    };
    let opts = ReadOptions {
        vault_dns_suffix: suffix,
        ..ReadOptions::default()
    };
    let (manifests, failures) = render_all(&akvs, key_vault.as_ref(), &opts).await;
    for f in &failures {
        eprintln!("akv2k8s render: {f}");
    }
    let yaml = show::yaml_documents(&merge(manifests), args.show_values)?;
    std::io::stdout()
        .write_all(yaml.as_bytes())
        .context("writing to stdout")?;
    Ok(failures.is_empty())
}

/// Previews every AzureKeyVaultSecret in order: the manifests, and one message per failure.
pub async fn render_all(
    akvs: &[(&Document, k8s_sync::crd::v2beta1::AzureKeyVaultSecret)],
    key_vault: &dyn KeyVaultProvider,
    opts: &ReadOptions,
) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut manifests = Vec::new();
    let mut failures = Vec::new();
    for (doc, a) in akvs {
        let what = format!(
            "AzureKeyVaultSecret {}/{}",
            a.namespace().unwrap_or_default(),
            a.name_any()
        );
        if a.spec.secret_output().is_none() && a.spec.config_map_output().is_none() {
            eprintln!(
                "akv2k8s render: {}: {what} has no output (env injection only): nothing to write",
                doc.location()
            );
            continue;
        }
        match preview(a, key_vault, opts).await {
            Ok(m) => manifests.extend(m),
            Err(failure) => failures.push(format!(
                "{}: {what}: {} ({:#})",
                doc.location(),
                failure.reason.as_str(),
                anyhow::Error::from(failure.error)
            )),
        }
    }
    (manifests, failures)
}

/// Key Vault as `akv2k8s-controller` reaches it: `AUTH_TYPE`, `AZURE_*`, `--cloudconfig`,
/// `AKV2K8S_RESOLVE`, `SSL_CERT_FILE` / `SSL_CERT_DIR`.
fn real_key_vaults(args: &RenderArgs) -> anyhow::Result<(Arc<dyn KeyVaultProvider>, String)> {
    let http = HttpOptions {
        resolve: args.resolve.clone(),
        ..HttpOptions::default()
    };
    key_vaults(
        args.auth_type,
        AuthOptions {
            cloud_config_path: args.cloudconfig.clone(),
            http: Some(http.clone()),
            ..AuthOptions::default()
        },
        http,
    )
}
