//! The process-wide rustls crypto provider.

/// Installs rustls' ring provider as the process default. The workspace builds rustls, reqwest
/// and kube with ring and without a default provider, so every binary calls this first.
/// Installing twice is harmless: the second call keeps the provider already installed.
pub fn install_crypto_provider() {
    // `Err` only means a provider is already installed; that one stays.
    let _already = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_keeps_a_default_provider() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
