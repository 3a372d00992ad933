//! The certificate factory checked by independent readers: webpki path validation (rustls),
//! p12-keystore, and the openssl command-line tool.

use std::process::Command;
use std::sync::Arc;

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption, TestCa, openssl};

/// A webpki verifier trusting only `root` (DER).
fn verifier_trusting(root: &[u8]) -> Arc<WebPkiServerVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .expect("root");
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier")
}

fn verify_chain(chain: &CertChain, name: &str) -> Result<(), rustls::Error> {
    verifier_trusting(chain.root().der())
        .verify_server_cert(
            &CertificateDer::from(chain.leaf().der().to_vec()),
            &[CertificateDer::from(chain.intermediate().der().to_vec())],
            &ServerName::try_from(name.to_owned()).expect("name"),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn rsa_and_ecdsa_chains_validate_from_root_through_intermediate() {
    for kind in [KeyKind::Rsa2048, KeyKind::EcdsaP256, KeyKind::EcdsaP384] {
        let chain = CertChain::builder(kind)
            .common_name("app.example.com")
            .dns_names(["app.example.com", "www.example.com"])
            .build()
            .expect("chain");
        verify_chain(&chain, "www.example.com").unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(
            verify_chain(&chain, "evil.example.com").is_err(),
            "{kind:?}: wrong name accepted"
        );
        assert_eq!(chain.leaf_key().kind(), kind);
    }
}

#[test]
fn an_expired_leaf_does_not_validate() {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let chain = CertChain::builder(KeyKind::EcdsaP256)
        .common_name("old.example.com")
        .validity(now - 30 * day, now - day)
        .build()
        .expect("chain");
    let err = verify_chain(&chain, "old.example.com").expect_err("expired");
    assert!(format!("{err}").to_lowercase().contains("expired"), "{err}");
}

#[test]
fn pfx_files_round_trip_in_every_encryption() {
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    for enc in [
        PfxEncryption::Modern,
        PfxEncryption::Legacy3Des,
        PfxEncryption::LegacyRc2,
    ] {
        let pfx = chain.pfx(enc).expect("pfx");
        let store = KeyStore::from_pkcs12(&pfx, "", Pkcs12ImportPolicy::Strict).expect("read back");
        let (_, kc) = store.private_key_chain().expect("key chain");
        assert_eq!(kc.key().as_der(), chain.leaf_key().pkcs8_der(), "{enc:?}");
        let ders: Vec<&[u8]> = kc.certs().iter().map(|c| c.as_der()).collect();
        assert_eq!(ders, chain.certs_leaf_first().map(|c| c.der()), "{enc:?}");
        assert!(
            KeyStore::from_pkcs12(&pfx, "wrong", Pkcs12ImportPolicy::Strict).is_err(),
            "{enc:?}: MAC not checked"
        );
    }
    let locked = chain
        .pfx_certificates_only(PfxEncryption::Modern)
        .expect("pfx");
    let store = KeyStore::from_pkcs12(&locked, "", Pkcs12ImportPolicy::Relaxed).expect("read back");
    assert!(store.private_key_chain().is_none());
    assert_eq!(store.entries_len(), 3);
}

/// Runs `openssl pkcs12 -info` on `pfx` and returns its report (stderr carries the
/// algorithm lines).
fn openssl_info(pfx: &[u8], legacy: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.pfx");
    std::fs::write(&path, pfx).expect("write");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "pkcs12", "-info", "-nokeys", "-nocerts", "-passin", "pass:", "-in",
    ])
    .arg(&path);
    if legacy {
        cmd.arg("-legacy");
    }
    let out = cmd.output().expect("openssl is installed by .ci/run");
    assert!(
        out.status.success(),
        "openssl refused the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn openssl_reads_the_factorys_pfx_files_with_the_promised_algorithms() {
    let chain = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain");
    let modern = openssl_info(&chain.pfx(PfxEncryption::Modern).expect("pfx"), false);
    assert!(modern.contains("AES-256-CBC"), "{modern}");
    assert!(modern.contains("MAC: sha256"), "{modern}");
    let des = openssl_info(&chain.pfx(PfxEncryption::Legacy3Des).expect("pfx"), true);
    assert!(des.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{des}");
    assert!(des.contains("MAC: sha1"), "{des}");
    let rc2 = openssl_info(&chain.pfx(PfxEncryption::LegacyRc2).expect("pfx"), true);
    assert!(rc2.contains("pbeWithSHA1And40BitRC2-CBC"), "{rc2}");
}

#[test]
fn openssl_made_fixtures_are_readable_and_hold_the_same_chain() {
    let pem_certs: Vec<Vec<u8>> = pem::parse_many(openssl::CHAIN_PEM)
        .expect("pem")
        .iter()
        .map(|p| p.contents().to_vec())
        .collect();
    assert_eq!(pem_certs.len(), 3);
    let key = pem::parse(openssl::LEAF_KEY_PEM).expect("key");
    for pfx in [openssl::LEGACY_PFX, openssl::MODERN_PFX] {
        let store =
            KeyStore::from_pkcs12(pfx, "", Pkcs12ImportPolicy::Relaxed).expect("openssl PFX");
        let (_, kc) = store.private_key_chain().expect("key chain");
        assert_eq!(kc.key().as_der(), key.contents());
        assert_eq!(
            kc.certs()[0].as_der(),
            pem_certs[0].as_slice(),
            "leaf first"
        );
        assert_eq!(kc.certs().len(), 3);
    }
    assert!(openssl_info(openssl::LEGACY_PFX, true).contains("RC2"));
}

#[test]
fn pem_bundles_follow_the_requested_order() {
    let chain = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain");
    let bundle = chain.pem_bundle(&[
        PemPart::Root,
        PemPart::Key,
        PemPart::Leaf,
        PemPart::Intermediate,
    ]);
    let blocks = pem::parse_many(&bundle).expect("pem");
    let tags: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
    assert_eq!(
        tags,
        ["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]
    );
    assert_eq!(blocks[0].contents(), chain.root().der());
    assert_eq!(blocks[2].contents(), chain.leaf().der());
    assert_eq!(blocks[3].contents(), chain.intermediate().der());
    let kv = chain.pem_bundle(&PemPart::KEY_VAULT_ORDER);
    assert!(kv.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn private_keys_never_print() {
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    let debug = format!("{:?} {:?}", chain.leaf_key(), chain);
    let pem_body: String = chain
        .leaf_key()
        .pkcs8_pem()
        .lines()
        .nth(1)
        .expect("line")
        .to_owned();
    assert!(!debug.contains(&pem_body), "{debug}");
    assert!(debug.contains("PrivateKey"));
}

#[test]
fn the_test_ca_issues_serving_certificates_for_wildcards_of_every_cloud() {
    let ca = TestCa::new().expect("ca");
    let id = ca
        .issue_server(&[
            "*.vault.azure.net",
            "*.vault.azure.cn",
            "login.microsoftonline.com",
        ])
        .expect("identity");
    let verifier = verifier_trusting(ca.cert().der());
    for name in [
        "myvault.vault.azure.net",
        "other.vault.azure.cn",
        "login.microsoftonline.com",
    ] {
        verifier
            .verify_server_cert(
                &id.chain[0],
                &id.chain[1..],
                &ServerName::try_from(name).expect("name"),
                &[],
                UnixTime::now(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ca.write_pem(dir.path()).expect("write");
    assert_eq!(std::fs::read_to_string(path).expect("read"), ca.pem());
}
