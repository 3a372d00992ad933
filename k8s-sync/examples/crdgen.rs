//! Prints the `AzureKeyVaultSecret` CRD as YAML:
//! `cargo run -p k8s-sync --example crdgen > crds/azurekeyvaultsecrets.spv.no.yaml`.

fn main() -> Result<(), k8s_sync::Error> {
    print!("{}", k8s_sync::crd_yaml()?);
    Ok(())
}
