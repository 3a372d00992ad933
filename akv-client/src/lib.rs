//! The Key Vault read plane of akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `akv-client` depends on `akv-auth` for credentials and never on `kube`. It will hold the
//! `KeyVault` port trait and its implementation on the official Azure SDK clients, the object
//! model (secret, certificate, key, multi-key-value secret), PEM/PFX/JWK conversions, the output
//! formatting shared by the controller and the in-pod launcher, transforms, and the shared cache
//! with single-flight and a per-vault rate limit. Tests use the Key Vault fake from `testkit`.
//!
//! This crate is a skeleton until the "akv-client: the Key Vault read plane" issue lands.
