//! Azure credential providers for akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `akv-auth` is the bottom of the graph: it depends on no other workspace crate and never on
//! `kube`. It will hold every credential provider akv2k8s users rely on (cloud config
//! `azure.json`, environment, client certificate, workload identity, IMDS managed identity with
//! aad-pod-identity NMI awareness, the auth-service token) behind azure_core's
//! `TokenCredential`, a per-scope token cache and the `Env` seam. Tests use the Entra ID and
//! IMDS fakes from `testkit` (a dev-dependency only).
//!
//! This crate is a skeleton until the "akv-auth: every Azure credential provider" issue lands.
