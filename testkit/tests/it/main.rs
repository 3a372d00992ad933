//! testkit's integration tests: the fakes driven through real clients (the official Azure SDK
//! Key Vault clients, reqwest) and the certificate factory checked by independent readers.

mod apiserver;
mod apiserver_kubectl;
mod apiserver_patch;
mod certs;
mod entra;
mod imds;
mod support;
mod vault_faults;
mod vault_http;
mod vault_sdk;
