//! Key Vault keys (JWK) as PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
//!
//! **Deviation from upstream** (behaviour reference §2.7.4): akv2k8s writes the raw bytes of
//! the JWK `n` field (the RSA modulus without exponent, not even base64), and nothing for EC
//! keys. We write the public key as a PEM SubjectPublicKeyInfo, which every TLS/JWT library
//! reads, for RSA and EC keys alike.

use der::Encode as _;
use der::asn1::{AnyRef, BitStringRef, UintRef};
use pkcs1::RsaPublicKeyRef;
use pkcs8::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use crate::cert::{Curve, oid, pem_block};
use crate::error::{Error, Result};

/// A SubjectPublicKeyInfo: `algorithm` and the public key bytes as its BIT STRING.
fn spki(algorithm: AlgorithmIdentifierRef<'_>, public_key: &[u8]) -> der::Result<Vec<u8>> {
    SubjectPublicKeyInfoRef {
        algorithm,
        subject_public_key: BitStringRef::from_bytes(public_key)?,
    }
    .to_der()
}

/// The public part of a Key Vault JSON Web Key, as the SDK hands it over (`n`, `e`, `x`, `y`
/// already base64url-decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonWebKey {
    /// `kty`: `RSA`, `RSA-HSM`, `EC`, `EC-HSM`, `oct`…
    pub kty: String,
    /// RSA modulus.
    pub n: Option<Vec<u8>>,
    /// RSA public exponent.
    pub e: Option<Vec<u8>>,
    /// EC curve name (`P-256`, `P-384`, `P-521`, `P-256K`).
    pub crv: Option<String>,
    /// EC x coordinate.
    pub x: Option<Vec<u8>>,
    /// EC y coordinate.
    pub y: Option<Vec<u8>>,
}

impl JsonWebKey {
    /// The SubjectPublicKeyInfo DER.
    ///
    /// # Errors
    ///
    /// [`Error::Jwk`] for symmetric keys, unknown curves or missing components.
    pub fn to_spki_der(&self, object: &str) -> Result<Vec<u8>> {
        let err = |reason: String| Error::Jwk {
            object: object.to_owned(),
            reason,
        };
        match self.kty.as_str() {
            "RSA" | "RSA-HSM" => {
                let (Some(n), Some(e)) = (&self.n, &self.e) else {
                    return Err(err("RSA key without n or e".into()));
                };
                let encode = || {
                    let rsa = RsaPublicKeyRef {
                        modulus: UintRef::new(n)?,
                        public_exponent: UintRef::new(e)?,
                    }
                    .to_der()?;
                    let algorithm = AlgorithmIdentifierRef {
                        oid: oid::RSA,
                        parameters: Some(AnyRef::NULL),
                    };
                    spki(algorithm, &rsa)
                };
                encode().map_err(|e| err(format!("RSA key cannot be encoded: {e}")))
            }
            "EC" | "EC-HSM" => {
                let name = self.crv.as_deref().unwrap_or_default();
                let curve = Curve::from_jwk(name)
                    .ok_or_else(|| err(format!("unsupported curve '{name}'")))?;
                let (Some(x), Some(y)) = (&self.x, &self.y) else {
                    return Err(err("EC key without x or y".into()));
                };
                let len = curve.field_len();
                if x.len() > len || y.len() > len {
                    return Err(err("EC coordinates longer than the curve".into()));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.resize(1 + len - x.len(), 0);
                point.extend_from_slice(x);
                point.resize(1 + 2 * len - y.len(), 0);
                point.extend_from_slice(y);
                let curve_oid = curve.oid();
                let algorithm = AlgorithmIdentifierRef {
                    oid: oid::EC,
                    parameters: Some(AnyRef::from(&curve_oid)),
                };
                spki(algorithm, &point).map_err(|e| err(format!("EC key cannot be encoded: {e}")))
            }
            other => Err(err(format!(
                "key type '{other}' has no public key to export (only RSA and EC keys)"
            ))),
        }
    }

    /// The public key as a `PUBLIC KEY` PEM block.
    ///
    /// # Errors
    ///
    /// As [`JsonWebKey::to_spki_der`].
    pub fn to_pem(&self, object: &str) -> Result<String> {
        Ok(pem_block("PUBLIC KEY", &self.to_spki_der(object)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_modulus_with_high_bit_gets_a_leading_zero() {
        let jwk = JsonWebKey {
            kty: "RSA".into(),
            n: Some(vec![0xc0; 256]),
            e: Some(vec![1, 0, 1]),
            ..Default::default()
        };
        let der = jwk.to_spki_der("k").expect("spki");
        // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { n, e } } }
        let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).expect("spki");
        assert_eq!(spki.algorithm.oid, oid::RSA);
        assert_eq!(spki.algorithm.parameters, Some(AnyRef::NULL));
        let bits = spki.subject_public_key.as_bytes().expect("whole bytes");
        let rsa = RsaPublicKeyRef::try_from(bits).expect("rsa");
        assert_eq!(rsa.modulus.as_bytes(), &[0xc0; 256][..]);
        assert_eq!(rsa.public_exponent.as_bytes(), &[1, 0, 1]);
        // The INTEGER gets a zero byte in front of the high bit: 02 82 01 01 00 c0 …
        let n_at = bits
            .windows(5)
            .position(|w| w == [0x02, 0x82, 0x01, 0x01, 0x00])
            .expect("modulus with a leading zero");
        assert_eq!(bits[n_at + 5], 0xc0);
        assert!(
            jwk.to_pem("k")
                .expect("pem")
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
    }

    #[test]
    fn ec_coordinates_are_padded_to_the_field_size() {
        let jwk = JsonWebKey {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(vec![1; 31]),
            y: Some(vec![2; 32]),
            ..Default::default()
        };
        let der = jwk.to_spki_der("k").expect("spki");
        let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).expect("spki");
        assert_eq!(
            spki.algorithm.oids().expect("oids"),
            (oid::EC, Some(oid::P256))
        );
        let point = spki.subject_public_key.as_bytes().expect("whole bytes");
        assert_eq!(point.len(), 65);
        assert_eq!((point[0], point[1], point[2]), (4, 0, 1));
    }

    #[test]
    fn symmetric_and_unknown_keys_are_errors_naming_the_key() {
        let oct = JsonWebKey {
            kty: "oct".into(),
            ..Default::default()
        };
        let e = oct.to_pem("aes").expect_err("oct");
        assert!(e.to_string().contains("'aes'"), "{e}");
        let bad_curve = JsonWebKey {
            kty: "EC".into(),
            crv: Some("P-999".into()),
            x: Some(vec![1]),
            y: Some(vec![1]),
            ..Default::default()
        };
        assert!(bad_curve.to_pem("k").is_err());
    }
}
