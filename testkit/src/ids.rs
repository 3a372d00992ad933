//! Random and derived identifiers: GUIDs (Entra trace ids, Kubernetes UIDs), Key Vault version
//! ids, API server bearer tokens and `generateName` suffixes all start here.

use ring::rand::SecureRandom as _;

/// `N` bytes from the system RNG; `None` when it fails.
pub(crate) fn try_random_bytes<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).ok()?;
    Some(b)
}

/// `N` bytes from the system RNG. The system RNG does not fail on supported platforms; if it
/// did, the zeros left would still make well-formed ids.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    try_random_bytes().unwrap_or([0u8; N])
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` in GUID layout: `8-4-4-4-12` lower-case hex digits.
pub(crate) fn guid(bytes: [u8; 16]) -> String {
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random version 4 GUID (RFC 9562 variant), for trace, correlation and object ids.
pub(crate) fn random_guid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    guid(b)
}

/// A fresh 32-hex-digit id, like Key Vault's object versions.
pub(crate) fn random_hex_id() -> String {
    hex(&random_bytes::<16>())
}

/// Five characters from the alphabet the API server's `generateName` uses.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_guids_are_version_4() {
        let g = random_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
        assert_eq!(&g[14..15], "4");
        assert!(matches!(&g[19..20], "8" | "9" | "a" | "b"), "{g}");
        assert_ne!(g, random_guid());
    }

    #[test]
    fn generated_name_suffixes_use_the_api_servers_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn guids_and_hex_ids_are_lower_case_hex() {
        assert_eq!(guid([0xAB; 16]), "abababab-abab-abab-abab-abababababab");
        let id = random_hex_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
