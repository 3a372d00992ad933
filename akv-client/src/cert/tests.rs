use proptest::prelude::*;
use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption, openssl};

use der::Encode as _;

use super::*;

fn chain(kind: KeyKind) -> CertChain {
    CertChain::builder(kind)
        .common_name("app.example.com")
        .build()
        .expect("chain")
}

fn ders(bundle: &CertificateBundle) -> Vec<Vec<u8>> {
    bundle
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

fn leaf_first(c: &CertChain) -> Vec<Vec<u8>> {
    c.certs_leaf_first()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

#[test]
fn pfx_of_every_encryption_reads_key_and_chain_leaf_first() {
    for kind in [KeyKind::Rsa2048, KeyKind::EcdsaP256, KeyKind::EcdsaP384] {
        let c = chain(kind);
        for enc in [
            PfxEncryption::Modern,
            PfxEncryption::Legacy3Des,
            PfxEncryption::LegacyRc2,
        ] {
            let pfx = c.pfx(enc).expect("pfx");
            let b = CertificateBundle::from_pfx(&pfx).expect("read pfx");
            assert_eq!(ders(&b), leaf_first(&c), "{kind:?} {enc:?}");
            let key = b.private_key().expect("key");
            assert_eq!(
                key.pkcs8_der(),
                c.leaf_key().pkcs8_der(),
                "{kind:?} {enc:?}: PKCS#8 unchanged"
            );
            assert_eq!(b.raw(), pfx.as_slice(), "raw is the PFX as given");
            assert_eq!(b.source(), BundleSource::Pfx);
        }
    }
}

#[test]
fn openssl_made_pfx_files_read_in_both_encryptions() {
    for pfx in [openssl::LEGACY_PFX, openssl::MODERN_PFX] {
        let b = CertificateBundle::from_pfx(pfx).expect("openssl pfx");
        assert_eq!(b.certificates().len(), 3);
        assert_eq!(
            b.public_pem().expect("pem"),
            format!(
                "{}{}{}",
                openssl::LEAF_PEM,
                openssl::INTERMEDIATE_PEM,
                openssl::ROOT_PEM
            )
            .replace("\r\n", "\n")
        );
        let key = b.private_key().expect("key");
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        let expected = pem::parse(openssl::LEAF_KEY_PEM).expect("key pem");
        assert_eq!(key.pkcs8_der(), expected.contents());
    }
}

#[test]
fn pem_with_the_chain_root_first_is_exported_leaf_first() {
    let c = chain(KeyKind::Rsa2048);
    let text = c.pem_bundle(&[
        PemPart::Root,
        PemPart::Intermediate,
        PemPart::Key,
        PemPart::Leaf,
    ]);
    let b = CertificateBundle::from_pem(text.as_bytes()).expect("pem");
    assert_eq!(ders(&b), leaf_first(&c));
    assert_eq!(b.raw(), text.as_bytes());
    assert_eq!(
        b.public_pem().expect("public"),
        c.certs_leaf_first()
            .iter()
            .map(|c| lf(&c.pem()))
            .collect::<String>()
    );
    assert_eq!(b.ca_pem().as_deref(), Some(lf(&c.root().pem()).as_str()));
}

#[test]
fn the_leaf_is_found_by_its_key_when_names_do_not_decide() {
    // Only the leaf and the root: the intermediate is missing, so both are "unlinked".
    let c = chain(KeyKind::EcdsaP256);
    let text = c.pem_bundle(&[PemPart::Root, PemPart::Leaf, PemPart::Key]);
    let b = CertificateBundle::from_pem(text.as_bytes()).expect("pem");
    assert_eq!(b.certificates()[0].der(), c.leaf().der());
}

#[test]
fn rsa_keys_export_as_pkcs1_and_optionally_pkcs8() {
    let c = chain(KeyKind::Rsa2048);
    let b = CertificateBundle::from_pem(c.pem_bundle(&PemPart::KEY_VAULT_ORDER).as_bytes())
        .expect("pem");
    let trad = b.private_pem(KeyFormat::Traditional).expect("pkcs1");
    assert!(
        trad.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{}",
        &trad[..40]
    );
    let p8 = b.private_pem(KeyFormat::Pkcs8).expect("pkcs8");
    assert_eq!(p8.as_str(), c.leaf_key().pkcs8_pem().replace("\r\n", "\n"));
    // PKCS#1 → PKCS#8 → PKCS#1 is lossless.
    let again =
        PrivateKey::from_pkcs1_der(b.private_key().expect("key").traditional_der()).expect("pkcs1");
    assert_eq!(again.pkcs8_der(), c.leaf_key().pkcs8_der());
}

#[test]
fn ec_keys_export_as_sec1_naming_the_curve_and_sec1_round_trips_byte_for_byte() {
    let c = chain(KeyKind::EcdsaP384);
    let b = CertificateBundle::from_pfx(&c.pfx(PfxEncryption::Modern).expect("pfx")).expect("pfx");
    let key = b.private_key().expect("key");
    assert_eq!(key.algorithm(), KeyAlgorithm::Ec(Curve::P384));
    let sec1_pem = key.to_pem(KeyFormat::Traditional);
    assert!(sec1_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    // The SEC1 output names the curve ([0] OID secp384r1).
    let sec1 = EcPrivateKey::try_from(key.traditional_der()).expect("sec1");
    assert_eq!(
        sec1.parameters.and_then(EcParameters::named_curve),
        Some(oid::P384),
        "[0] parameters"
    );
    assert!(sec1.public_key.is_some(), "[1] public key kept");
    // Reading that SEC1 back and exporting again is byte-identical (upstream's test).
    let text = format!("{}{}", c.leaf().pem(), sec1_pem.as_str());
    let again = CertificateBundle::from_pem(text.as_bytes()).expect("sec1 pem");
    assert_eq!(
        again
            .private_pem(KeyFormat::Traditional)
            .expect("sec1")
            .as_str(),
        sec1_pem.as_str()
    );
    assert_eq!(
        again.private_key().expect("key").pkcs8_der(),
        key.pkcs8_der()
    );
}

#[test]
fn der_certificates_have_no_private_key() {
    let c = chain(KeyKind::EcdsaP256);
    let b = CertificateBundle::from_der(c.leaf().der()).expect("der");
    assert_eq!(b.certificates().len(), 1);
    assert!(matches!(
        b.private_pem(KeyFormat::Traditional),
        Err(Error::NoPrivateKey)
    ));
    assert_eq!(b.raw(), c.leaf().der());
}

#[test]
fn a_certificates_only_pfx_has_no_private_key() {
    let c = chain(KeyKind::Rsa2048);
    let b =
        CertificateBundle::from_pfx(&c.pfx_certificates_only(PfxEncryption::Modern).expect("pfx"))
            .expect("read");
    assert_eq!(b.certificates().len(), 3);
    assert!(b.private_key().is_none());
}

#[test]
fn unsupported_pkcs8_algorithms_and_garbage_are_errors() {
    // An Ed25519 PKCS#8 key.
    let seed = OctetStringRef::new(&[7; 32])
        .expect("seed")
        .to_der()
        .expect("der");
    let ed = PrivateKeyInfoRef::new(
        AlgorithmIdentifierRef {
            oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
            parameters: None,
        },
        OctetStringRef::new(&seed).expect("key"),
    )
    .to_der()
    .expect("der");
    let e = PrivateKey::from_pkcs8_der(&ed).expect_err("ed25519");
    assert!(
        e.to_string().contains("only rsa and ecdsa supported"),
        "{e}"
    );
    assert!(CertificateBundle::from_pfx(b"not a pfx").is_err());
    assert!(CertificateBundle::from_pem(b"no pem here").is_err());
    let bad_key = "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n";
    assert!(CertificateBundle::from_pem(bad_key.as_bytes()).is_err());
}

#[test]
fn debug_output_never_shows_key_material() {
    let c = chain(KeyKind::EcdsaP256);
    let b = CertificateBundle::from_pfx(&c.pfx(PfxEncryption::Modern).expect("pfx")).expect("read");
    let dbg = format!("{b:?} {:?}", b.private_key());
    let key_b64 = c.leaf_key().pkcs8_pem();
    let key_body: String = key_b64
        .lines()
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take(20)
        .collect();
    assert!(!dbg.contains(&key_body), "{dbg}");
    assert!(
        dbg.contains("PrivateKey") && dbg.contains("app.example.com"),
        "{dbg}"
    );
}

fn orders() -> impl Strategy<Value = Vec<PemPart>> {
    Just(vec![
        PemPart::Key,
        PemPart::Leaf,
        PemPart::Intermediate,
        PemPart::Root,
    ])
    .prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_pem_order_round_trips_to_leaf_first_chain_and_same_key(order in orders(), ec in any::<bool>()) {
        let kind = if ec { KeyKind::EcdsaP256 } else { KeyKind::Rsa2048 };
        let c = chain(kind);
        let b = CertificateBundle::from_pem(c.pem_bundle(&order).as_bytes()).expect("pem");
        prop_assert_eq!(ders(&b), leaf_first(&c));
        let key = b.private_key().expect("key");
        prop_assert_eq!(key.pkcs8_der(), c.leaf_key().pkcs8_der());
        // Our own export reads back to the same bundle.
        let text = format!("{}{}", b.public_pem().expect("pub"), b.private_pem(KeyFormat::Traditional).expect("key").as_str());
        let again = CertificateBundle::from_pem(text.as_bytes()).expect("again");
        prop_assert_eq!(ders(&again), leaf_first(&c));
        prop_assert_eq!(again.private_key().expect("key").pkcs8_der(), c.leaf_key().pkcs8_der());
    }

    #[test]
    fn any_pfx_encryption_round_trips(enc in prop_oneof![Just(PfxEncryption::Modern), Just(PfxEncryption::Legacy3Des), Just(PfxEncryption::LegacyRc2)], ec in any::<bool>()) {
        let kind = if ec { KeyKind::EcdsaP384 } else { KeyKind::Rsa2048 };
        let c = chain(kind);
        let b = CertificateBundle::from_pfx(&c.pfx(enc).expect("pfx")).expect("read");
        prop_assert_eq!(ders(&b), leaf_first(&c));
        prop_assert_eq!(b.private_key().expect("key").pkcs8_der(), c.leaf_key().pkcs8_der());
    }
}

/// testkit writes PEM with CRLF; we write LF, as Go's `pem.Encode`.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}
