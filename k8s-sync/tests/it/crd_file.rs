//! The checked-in CRD file matches the Rust types.

use std::path::Path;

#[test]
fn checked_in_crd_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(k8s_sync::crd::CRD_PATH);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = k8s_sync::crd_yaml().expect("generate CRD YAML");
    assert!(
        on_disk == generated,
        "{} is out of date with the k8s-sync API types (or missing).\nRegenerate it from the workspace root:\n    {}",
        k8s_sync::crd::CRD_PATH,
        k8s_sync::crd::REGENERATE
    );
}
