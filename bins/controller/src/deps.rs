//! The controller's outside world, built from the command line: the Key Vault provider (akv-auth
//! credentials + akv-client's Azure SDK provider) and the Kubernetes client.

use std::path::Path;
use std::sync::Arc;

use akv_auth::{AuthOptions, Credentials, HttpOptions};
use akv_client::KeyVaultProvider;
use akv_client::azure::{AzureKeyVaults, AzureOptions};
use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::args::ControllerArgs;

/// Key Vault access as `AUTH_TYPE` selects it, and the cloud's Key Vault DNS suffix.
///
/// # Errors
///
/// Credential configuration errors (unreadable cloud config, missing tenant id, …): upstream
/// swallowed these and started without a credential; here they stop the start.
pub fn key_vaults(args: &ControllerArgs) -> anyhow::Result<(Arc<dyn KeyVaultProvider>, String)> {
    // `--resolve` / AKV2K8S_RESOLVE were parsed by clap; SSL_CERT_FILE / SSL_CERT_DIR are read
    // by rustls-native-certs when the clients are built.
    let http = HttpOptions {
        resolve: args.resolve.clone(),
        ..HttpOptions::default()
    };
    let creds = Credentials::new(
        args.auth_type,
        AuthOptions {
            cloud_config_path: args.cloudconfig.clone(),
            http: Some(http.clone()),
            ..AuthOptions::default()
        },
    )
    .with_context(|| {
        format!(
            "building the Key Vault credential (AUTH_TYPE={})",
            args.auth_type
        )
    })?;
    tracing::info!(
        auth_type = %creds.mode,
        provider = creds.provider,
        cloud = %creds.cloud.name,
        "Key Vault credential"
    );
    let provider = AzureKeyVaults::new(AzureOptions::single(creds.credential, http))
        .context("building the Key Vault client")?;
    Ok((provider, creds.cloud.key_vault_dns_suffix))
}

/// The `User-Agent` of the controller's API requests, client-go style
/// (`akv2k8s-controller/<version> (<os>/<arch>)`), with the replica's identity (`POD_NAME` or
/// `--leader-elect-identity`) when known, so that API audit logs tell replicas apart. kube sends
/// no `User-Agent` of its own.
pub fn user_agent(identity: Option<&str>) -> String {
    let base = format!(
        "akv2k8s-controller/{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    match identity {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("{base} {id}")
        }
        _ => base,
    }
}

/// The API client: `--kubeconfig` (else KUBECONFIG, ~/.kube/config, then in-cluster), with the
/// server URL replaced by `--master` when given, sending `user_agent`.
///
/// # Errors
///
/// The kubeconfig cannot be read or used, or no configuration is found.
pub async fn kube_client(
    kubeconfig: Option<&Path>,
    master: Option<&str>,
    user_agent: &str,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("using --kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration: not in a cluster, and no --kubeconfig, KUBECONFIG or ~/.kube/config")?,
    };
    if let Some(master) = master {
        config.cluster_url = master
            .parse()
            .with_context(|| format!("--master {master}"))?;
    }
    let user_agent = http::HeaderValue::from_str(user_agent)
        .with_context(|| format!("User-Agent {user_agent:?}"))?;
    config.headers.push((http::header::USER_AGENT, user_agent));
    kube::Client::try_from(config).context("building the Kubernetes client")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, ListParams};

    use super::*;

    #[tokio::test]
    async fn kubeconfig_flag_reaches_the_api_server_it_names() {
        akv2k8s_bins_common::install_crypto_provider();
        let api = testkit::apiserver::ApiServerFake::start(Default::default())
            .await
            .expect("fake API server");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, api.kubeconfig_yaml()).expect("write kubeconfig");

        let client = kube_client(Some(&path), None, &user_agent(Some("replica-0")))
            .await
            .expect("client");
        Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await
            .expect("list namespaces through the kubeconfig");
    }

    #[tokio::test]
    async fn missing_kubeconfig_names_the_flag() {
        let Err(err) = kube_client(
            Some(Path::new("/nonexistent/kubeconfig")),
            None,
            &user_agent(None),
        )
        .await
        else {
            panic!("a client from a kubeconfig that does not exist");
        };
        assert!(
            format!("{err:#}").contains("--kubeconfig /nonexistent/kubeconfig"),
            "{err:#}"
        );
    }

    #[test]
    fn user_agent_names_the_binary_and_the_replica() {
        let plain = user_agent(None);
        assert!(plain.starts_with("akv2k8s-controller/"), "{plain}");
        assert_eq!(user_agent(Some("")), plain);
        assert_eq!(user_agent(Some("replica-0")), format!("{plain} replica-0"));
        assert_eq!(
            user_agent(Some("bad id\n")),
            plain,
            "not a header-safe token"
        );
    }

    #[test]
    fn bad_cloud_config_stops_the_start() {
        let args = ControllerArgs::try_parse_validated_from(
            [
                "akv2k8s-controller",
                "--cloudconfig=/nonexistent/azure.json",
                "--auth-type=azureCloudConfig",
            ],
            || Some("host".to_owned()),
        )
        .expect("args");
        let err = key_vaults(&args).expect_err("no cloud config file");
        let text = format!("{err:#}");
        assert!(text.contains("AUTH_TYPE=azureCloudConfig"), "{text}");
        assert!(text.contains("/nonexistent/azure.json"), "{text}");
    }
}
