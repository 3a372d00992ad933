//! Pod env injection for akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `k8s-mutate` depends on `akv-client` and on `kube`. It will hold the mutating admission
//! webhook (AdmissionReview to JSONPatch), image command resolution from OCI registries, the mTLS
//! auth service (behind a `webhook` feature) and the placeholder syntax and resolve/exec plan of
//! the in-pod launcher (behind a `launcher` feature, so the launcher stays small).
//!
//! This crate is a skeleton until the env-injection issues land.
