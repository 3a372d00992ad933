//! The `AzureKeyVaultSecret` controller of akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `k8s-sync` depends on `akv-client` (through its `KeyVault` port only) and on `kube`. It will
//! hold the `spv.no` API types for every served version, pure rendering of outputs, the
//! reconciler, status and Events, metrics and leader election, and a `run` entry point that the
//! `akv2k8s-controller` binary and embedding operators call. Tests use the fake API server and
//! Key Vault fake from `testkit`.
//!
//! This crate is a skeleton until the "k8s-sync: the AzureKeyVaultSecret controller" issue lands.
