//! The few DER structures key conversion needs: a TLV reader and writer, enough for PKCS#8,
//! PKCS#1, SEC1 and SubjectPublicKeyInfo. Kept here (about 150 lines) instead of four
//! RustCrypto crates whose pre-release APIs move under p12-keystore.

/// DER tags used here.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed (explicit).
    pub const CTX0: u8 = 0xa0;
    /// `[1]` constructed (explicit).
    pub const CTX1: u8 = 0xa1;
}

/// OIDs as DER content bytes.
pub(crate) mod oid {
    /// rsaEncryption 1.2.840.113549.1.1.1
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// id-ecPublicKey 1.2.840.10045.2.1
    pub const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 1.2.840.10045.3.1.7
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1 1.3.132.0.34
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// secp521r1 1.3.132.0.35
    pub const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    /// secp256k1 1.3.132.0.10
    pub const P256K: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
}

/// One TLV element: its tag, its content and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`, returning it and the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER (tag)")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte DER tags are not supported");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER (length)")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("invalid DER length");
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    if rest.len() < len {
        return Err("truncated DER (content)");
    }
    let (content, after) = rest.split_at(len);
    let header_len = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header_len + len],
        },
        after,
    ))
}

/// Reads every element of a constructed content.
pub(crate) fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, &'static str> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read(content)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Reads exactly one element expected to have `tag`, with nothing after it.
pub(crate) fn read_only(input: &[u8], tag: u8) -> Result<Tlv<'_>, &'static str> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag || !rest.is_empty() {
        return Err("unexpected DER structure");
    }
    Ok(tlv)
}

/// Encodes `tag` + length + `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes (leading zeros stripped, a zero
/// byte added when the high bit is set).
pub(crate) fn uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let trimmed = &magnitude[skip..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &content)
}

/// An AlgorithmIdentifier: `oid` with `params` (already encoded) or NULL.
pub(crate) fn algorithm(alg: &[u8], params: Option<&[u8]>) -> Vec<u8> {
    let null = tlv(tag::NULL, &[]);
    sequence(&[&tlv(tag::OID, alg), params.unwrap_or(&null)])
}

/// A SubjectPublicKeyInfo.
pub(crate) fn spki(alg: &[u8], params: Option<&[u8]>, public_key: &[u8]) -> Vec<u8> {
    sequence(&[&algorithm(alg, params), &bit_string(public_key)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = tlv(tag::OCTET_STRING, &content);
            let (t, rest) = read(&enc).expect("read");
            assert!(rest.is_empty());
            assert_eq!(
                (t.tag, t.content.len(), t.raw.len()),
                (tag::OCTET_STRING, len, enc.len())
            );
        }
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(&[0, 0, 1]), vec![2, 1, 1]);
        assert_eq!(uint(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(uint(&[]), vec![2, 1, 0]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(read(&[0x30, 0x05, 1, 2]).is_err());
        assert!(read(&[]).is_err());
        assert!(read_only(&[0x02, 0x01, 0x01, 0x00], tag::INTEGER).is_err());
    }
}
