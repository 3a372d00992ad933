//! Integration tests of the public API: the upstream manifests against the Rust types, the CRD
//! file against the types, and the CRD installed into testkit's fake API server, driven by kube's
//! client and by the real `kubectl`; leader election on a Lease in the same fake.

mod apiserver;
mod controller;
mod controller_harness;
mod crd_file;
mod kubectl;
mod leader;
mod manifests;
mod support;
