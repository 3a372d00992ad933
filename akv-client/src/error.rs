//! The crate's error type.
//!
//! Variants name the operation that failed and carry identifying context (vault, object, key
//! name, content type), never values. Causes go in `#[source]`.

use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong in akv-client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value was rejected by a constructor.
    #[error("invalid configuration of {field}: {reason}")]
    InvalidConfig {
        /// The option or field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Building an Azure SDK client (or its HTTP transport) failed.
    #[error("cannot build the Key Vault {kind} client for {vault}")]
    BuildClient {
        /// Vault URL.
        vault: String,
        /// Object kind of the client.
        kind: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// `akv-auth` could not build the HTTP client the SDK clients share.
    #[error("cannot build the HTTP transport for Key Vault")]
    BuildTransport {
        /// akv-auth's error (names the option at fault).
        #[source]
        source: akv_auth::Error,
    },

    /// Reading an object from Key Vault failed.
    #[error("cannot get {kind} '{object}' from Key Vault {vault}{}", status_text(*.status))]
    GetObject {
        /// Vault URL.
        vault: String,
        /// Object kind.
        kind: &'static str,
        /// Object name.
        object: String,
        /// HTTP status if Key Vault answered.
        status: Option<u16>,
        /// Key Vault's error code (`SecretNotFound`, `Forbidden`, `Throttled`…).
        code: Option<String>,
        /// `Retry-After` of a 429/503 answer.
        retry_after: Option<Duration>,
        /// The SDK's error (boxed: it is large).
        #[source]
        source: Box<azure_core::Error>,
    },

    /// Listing object metadata failed.
    #[error("cannot list {kind} objects of Key Vault {vault}{}", status_text(*.status))]
    ListObjects {
        /// Vault URL.
        vault: String,
        /// Object kind.
        kind: &'static str,
        /// HTTP status if Key Vault answered.
        status: Option<u16>,
        /// The SDK's error (boxed: it is large).
        #[source]
        source: Box<azure_core::Error>,
    },

    /// Key Vault answered without a field the object needs (`value`, `cer`, `key`…).
    #[error("{kind} '{object}' from Key Vault has no {field}")]
    MissingField {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        object: String,
        /// Missing field.
        field: &'static str,
    },

    /// The private key of a certificate was asked for, but the certificate's policy marks the
    /// key as not exportable.
    #[error(
        "cannot export the private key of certificate '{object}': its key is not exportable in Key Vault (policy key_props.exportable = false); use a secret type without a private key (e.g. a dataKey with the public certificate) or re-import the certificate as exportable"
    )]
    NotExportable {
        /// Certificate name.
        object: String,
    },

    /// The certificate (or PFX/PEM bundle) holds no private key.
    #[error("certificate has no private key")]
    NoPrivateKey,

    /// The certificate bundle holds no certificate.
    #[error("certificate has no public key: the bundle holds no certificate")]
    NoCertificate,

    /// A PFX (PKCS#12) file could not be read.
    #[error("cannot read the PFX (PKCS#12) file with an empty password: {reason}")]
    Pfx {
        /// What p12-keystore reported (no key material).
        reason: String,
    },

    /// A PEM bundle could not be read.
    #[error("cannot read the PEM bundle: {reason}")]
    Pem {
        /// What is wrong.
        reason: String,
    },

    /// A certificate could not be parsed as X.509 DER.
    #[error("cannot parse an X.509 certificate: {reason}")]
    Certificate {
        /// What is wrong.
        reason: String,
    },

    /// A private key could not be parsed or converted.
    #[error("cannot parse the private key: {reason}")]
    PrivateKey {
        /// What is wrong.
        reason: String,
    },

    /// A Key Vault key (JWK) could not be turned into a public key.
    #[error("cannot convert key '{object}' to PEM: {reason}")]
    Jwk {
        /// Key name.
        object: String,
        /// What is wrong.
        reason: String,
    },

    /// A value that must be standard base64 is not.
    #[error("cannot decode the value of '{object}' as standard base64")]
    Base64 {
        /// Object name (or transform).
        object: String,
        /// Decoder error.
        #[source]
        source: base64::DecodeError,
    },

    /// A value that must be UTF-8 text is not.
    #[error("the value of '{object}' is not UTF-8 text")]
    NotUtf8 {
        /// Object name.
        object: String,
    },

    /// An unknown transform name.
    #[error(
        "transform type '{name}' not currently supported (supported: trim, base64encode, base64decode)"
    )]
    UnknownTransform {
        /// The name as given.
        name: String,
    },

    /// An unknown object type in an AKVS.
    #[error(
        "unknown object type '{name}' (supported: secret, certificate, key, multi-key-value-secret)"
    )]
    UnknownObjectType {
        /// The name as given.
        name: String,
    },

    /// An unknown `chainOrder`.
    #[error("unknown chainOrder '{name}' (supported: ensureserverfirst)")]
    UnknownChainOrder {
        /// The name as given.
        name: String,
    },

    /// The output needs a `dataKey` and none was given.
    #[error("no datakey specified for output {target}")]
    NoDataKey {
        /// `secret` or `configmap`.
        target: &'static str,
    },

    /// The secret value does not split into `username:password`.
    #[error(
        "unable to handle azure key vault secret as basic auth - check that formatting is correct 'username:password'"
    )]
    BasicAuth,

    /// A `kubernetes.io/dockerconfigjson` value is not a JSON object of the expected shape.
    #[error("the value of '{object}' is not a valid .dockerconfigjson: {reason}")]
    DockerConfig {
        /// Object name.
        object: String,
        /// What is wrong (never the value).
        reason: String,
    },

    /// `multi-key-value-secret` without a content type.
    #[error("cannot use 'multi-key-value-secret' without also specifying content type")]
    MultiKeyNoContentType,

    /// `multi-key-value-secret` with a content type other than JSON or YAML.
    #[error(
        "content type '{content_type}' not supported (use application/x-json or application/x-yaml)"
    )]
    MultiKeyContentType {
        /// The content type as given.
        content_type: String,
    },

    /// The multi-key value is not a map.
    #[error("the value of multi-key-value-secret '{object}' is not a flat {format} map: {reason}")]
    MultiKeyParse {
        /// Object name.
        object: String,
        /// `JSON` or `YAML`.
        format: &'static str,
        /// Parser message (positions only; never values).
        reason: String,
    },

    /// A multi-key entry is not a string (or scalar, for YAML).
    #[error(
        "key '{key}' of multi-key-value-secret '{object}' holds a {found}, but only flat string values are supported"
    )]
    MultiKeyNested {
        /// Object name.
        object: String,
        /// The offending key.
        key: String,
        /// What was found (`map`, `list`, `number`…).
        found: &'static str,
    },

    /// An env placeholder asked for a key a multi-key secret does not have.
    #[error("key '{key}' not found in azure key vault secret '{object}' of type '{content_type}'")]
    MultiKeyMissing {
        /// The key asked for.
        key: String,
        /// Object name.
        object: String,
        /// Content type.
        content_type: String,
    },

    /// An env placeholder query that the object type does not support.
    #[error(
        "unable to handle azure key vault {object_type} with query '{query}' - query is not valid"
    )]
    InvalidQuery {
        /// AKVS object type.
        object_type: &'static str,
        /// The query.
        query: String,
    },

    /// The certificate backing secret has a content type we cannot read.
    #[error(
        "failed to get certificate from azure key vault - unknown content type '{content_type}'"
    )]
    UnknownCertificateContentType {
        /// The content type.
        content_type: String,
    },

    /// The object fetched is not of the kind the formatting needs (a programming error in the
    /// caller).
    #[error("expected a Key Vault {expected} for '{object}', got a {got}")]
    WrongMaterial {
        /// Object name.
        object: String,
        /// Kind expected.
        expected: &'static str,
        /// Kind given.
        got: &'static str,
    },

    /// A refresh was not sent because the vault's read budget is spent
    /// ([`crate::cache::OverBudget::Defer`]); the cached value stays the last good one.
    #[error("Key Vault read budget of {vault} is spent; refresh deferred by {retry_in:?}")]
    OverBudget {
        /// The vault URL.
        vault: String,
        /// When to try again.
        retry_in: Duration,
    },

    /// A shared (single-flight) fetch failed; every waiter gets the same cause.
    #[error("shared Key Vault read failed")]
    Shared {
        /// The leader's error.
        #[source]
        source: Arc<Error>,
    },
}

/// Whether the SDK error is akv-auth's TLS verification failure (reported at once).
fn is_tls(e: &azure_core::Error) -> bool {
    matches!(akv_auth::Error::find(e), Some(akv_auth::Error::Tls { .. }))
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bounded label for metrics (`error = e.kind()`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidConfig { .. } => "invalid_config",
            Error::BuildClient { .. } => "build_client",
            Error::BuildTransport { .. } => "build_transport",
            Error::GetObject {
                status: None,
                source,
                ..
            }
            | Error::ListObjects {
                status: None,
                source,
                ..
            } if is_tls(source) => "tls",
            Error::GetObject { status, .. } => match status {
                Some(403) => "forbidden",
                Some(404) => "not_found",
                Some(429) => "throttled",
                Some(401) => "unauthorized",
                Some(s) if *s >= 500 => "server_error",
                Some(_) => "get_object",
                None => "transport",
            },
            Error::ListObjects { .. } => "list_objects",
            Error::MissingField { .. } => "missing_field",
            Error::NotExportable { .. } => "not_exportable",
            Error::NoPrivateKey => "no_private_key",
            Error::NoCertificate => "no_certificate",
            Error::Pfx { .. } => "pfx",
            Error::Pem { .. } => "pem",
            Error::Certificate { .. } => "certificate",
            Error::PrivateKey { .. } => "private_key",
            Error::Jwk { .. } => "jwk",
            Error::Base64 { .. } => "base64",
            Error::NotUtf8 { .. } => "not_utf8",
            Error::UnknownTransform { .. } => "unknown_transform",
            Error::UnknownObjectType { .. } => "unknown_object_type",
            Error::UnknownChainOrder { .. } => "unknown_chain_order",
            Error::NoDataKey { .. } => "no_data_key",
            Error::BasicAuth => "basic_auth",
            Error::DockerConfig { .. } => "docker_config",
            Error::MultiKeyNoContentType => "multi_key_no_content_type",
            Error::MultiKeyContentType { .. } => "multi_key_content_type",
            Error::MultiKeyParse { .. } => "multi_key_parse",
            Error::MultiKeyNested { .. } => "multi_key_nested",
            Error::MultiKeyMissing { .. } => "multi_key_missing",
            Error::InvalidQuery { .. } => "invalid_query",
            Error::UnknownCertificateContentType { .. } => "unknown_content_type",
            Error::WrongMaterial { .. } => "wrong_material",
            Error::OverBudget { .. } => "over_budget",
            Error::Shared { source } => source.kind(),
        }
    }

    /// Whether trying again later may succeed: throttling, 5xx, 408, timeouts and I/O errors.
    /// Connection failures (TLS, DNS, refused) are not retried here: they are configuration
    /// problems far more often than blips, and are reported at once.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::GetObject { status, source, .. } | Error::ListObjects { status, source, .. } => {
                match status {
                    Some(s) => matches!(s, 408 | 429 | 500 | 502 | 503 | 504),
                    None => matches!(source.kind(), azure_core::error::ErrorKind::Io),
                }
            }
            Error::Shared { source } => source.is_retryable(),
            _ => false,
        }
    }

    /// How long Key Vault asked us to wait (`Retry-After` on 429/503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::GetObject { retry_after, .. } => *retry_after,
            Error::OverBudget { retry_in, .. } => Some(*retry_in),
            Error::Shared { source } => source.retry_after(),
            _ => None,
        }
    }

    /// When this is a refresh deferred by the read budget ([`Error::OverBudget`]): when to
    /// try again. Not a failure: the last good value stands.
    pub fn deferred(&self) -> Option<Duration> {
        match self {
            Error::OverBudget { retry_in, .. } => Some(*retry_in),
            Error::Shared { source } => source.deferred(),
            _ => None,
        }
    }

    /// The HTTP status Key Vault answered with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::GetObject { status, .. } | Error::ListObjects { status, .. } => *status,
            Error::Shared { source } => source.status(),
            _ => None,
        }
    }

    /// Key Vault's error code (`SecretNotFound`, `Forbidden`, …), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::GetObject { code, .. } => code.as_deref(),
            Error::Shared { source } => source.code(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_errors_delegate_kind_and_retry() {
        let inner = Error::GetObject {
            vault: "https://v.vault.azure.net/".into(),
            kind: "secret",
            object: "a".into(),
            status: Some(429),
            code: Some("Throttled".into()),
            retry_after: Some(Duration::from_secs(2)),
            source: Box::new(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "x",
            )),
        };
        let shared = Error::Shared {
            source: Arc::new(inner),
        };
        assert_eq!(shared.kind(), "throttled");
        assert!(shared.is_retryable());
        assert_eq!(shared.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(shared.code(), Some("Throttled"));
    }

    #[test]
    fn not_exportable_message_names_exportability() {
        let e = Error::NotExportable {
            object: "tls".into(),
        };
        assert!(e.to_string().contains("not exportable"), "{e}");
        assert!(!Error::NoPrivateKey.is_retryable());
    }
}
