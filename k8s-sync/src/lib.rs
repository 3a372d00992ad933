//! The `AzureKeyVaultSecret` controller of akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `k8s-sync` sits above `akv-client` (it uses only its `KeyVaultProvider` port) and `kube`, and
//! below the `akv2k8s-controller` binary and any operator that embeds the controller. It holds:
//!
//! * [`crd`](mod@crd): `AzureKeyVaultSecret` in every version upstream akv2k8s serves
//!   ([`crd::v1alpha1`], [`crd::v1`], [`crd::v2alpha1`], and [`crd::v2beta1`], the storage
//!   version the controller uses), the `Ready` condition and its reasons, and [`crd()`] /
//!   [`crd_yaml()`], the multi-version `CustomResourceDefinition` checked in at
//!   `crds/azurekeyvaultsecrets.spv.no.yaml`.
//! * [`leader`]: leader election on a `coordination.k8s.io/v1` Lease ([`LeaderElector`]), so
//!   several replicas run and one writes; the leader releases the Lease on shutdown.
//! * [`render`]: pure rendering of an AKVS and its formatted Key Vault values into the
//!   server-side apply configuration of its Secret/ConfigMap, and the ownership checks.
//! * [`preview`]: the Key Vault read and formatting of one AKVS, shared by the reconciler and
//!   `akv2k8s render`, and the manifests the controller would apply.
//! * [`index`]: the compact index of managed Secrets/ConfigMaps the reconciler reads.
//! * [`events`]: `events.k8s.io/v1` Events with series and bounded memory.
//! * [`reconcile`] (+ [`error_policy`]): one sync of one AKVS (outputs, status, Events,
//!   finalizer), with [`context::Context`] shared by all reconciles.
//! * [`controller`]: [`run`]`(`[`SyncDeps`]`, `[`SyncConfig`]`, shutdown)`, the embeddable
//!   entry point (kube-runtime `Controller`, label-selected indexes of outputs, read plane,
//!   optional leader election), and [`metrics`] ([`SyncMetrics`], upstream's counter names).
//!
//! # Example
//!
//! Install the CRD into testkit's fake API server, apply an upstream `v1` manifest unchanged and
//! read it back at the storage version, as the controller will:
//!
//! ```
//! use kube::api::{Api, PostParams};
//! use k8s_sync::crd::{v1, v2beta1, ObjectType};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! testkit::install_crypto_provider();
//! let api = testkit::apiserver::ApiServerFake::start(Default::default()).await?;
//! let kubeconfig = kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml())?;
//! let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
//! let client = kube::Client::try_from(config)?;
//!
//! k8s_sync::crd::install(&client, &k8s_sync::crd()?, std::time::Duration::from_secs(10)).await?;
//!
//! let manifest = "
//! apiVersion: spv.no/v1
//! kind: AzureKeyVaultSecret
//! metadata:
//!   name: test-secret
//! spec:
//!   vault:
//!     name: akv2k8s-test
//!     object:
//!       type: secret
//!       name: my-secret
//! ";
//! let akvs: v1::AzureKeyVaultSecret = serde_saphyr::from_str(manifest)?;
//! Api::<v1::AzureKeyVaultSecret>::default_namespaced(client.clone())
//!     .create(&PostParams::default(), &akvs)
//!     .await?;
//!
//! let stored = Api::<v2beta1::AzureKeyVaultSecret>::default_namespaced(client)
//!     .get("test-secret")
//!     .await?;
//! assert_eq!(stored.spec.vault.object.type_, ObjectType::Secret);
//! assert!(stored.spec.secret_output().is_none(), "env injection only");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod context;
pub mod controller;
pub mod crd;
mod error;
pub mod events;
pub mod index;
pub mod leader;
pub mod metrics;
pub mod preview;
pub mod reconcile;
pub mod render;

pub use controller::{SyncConfig, SyncDeps, run};
pub use crd::{crd, crd_yaml};
pub use error::{Error, Result};
pub use leader::{LeaderElectionConfig, LeaderElector};
pub use metrics::SyncMetrics;
pub use reconcile::{error_policy, reconcile};
