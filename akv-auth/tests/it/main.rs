//! Integration tests of akv-auth's public API against the testkit fakes (Entra ID, IMDS/NMI,
//! Key Vault), through the real Azure SDK path.

mod auth_service;
mod entra;
mod imds;
mod modes;
mod support;
