//! Integration tests of the public API: the upstream manifests against the Rust types, the CRD
//! file against the types, and the CRD installed into testkit's fake API server, driven by kube's
//! client and by the real `kubectl`; leader election on a Lease in the same fake; the controller
//! (`run`) against the API server and Key Vault fakes.

mod apiserver;
mod controller;
mod controller_conflicts;
mod controller_harness;
mod controller_operations;
mod crd_file;
mod events;
mod kubectl;
mod leader;
mod manifests;
mod support;
