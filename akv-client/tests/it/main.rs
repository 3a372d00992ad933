//! Integration tests of akv-client against the testkit Key Vault fake, through the official
//! Azure SDK clients, the resolve override and the testkit CA.

mod azure;
mod read_plane;
mod support;
