//! Typed errors of the credential providers.
//!
//! Messages say what to fix and never contain secrets, tokens, keys or request bodies. Identity
//! failures carry the `AADSTS` code extracted from the message text as well as the HTTP status,
//! because azure_identity 1.0 cannot parse real Entra error bodies (the status is lost and the
//! code survives only in the text).

use std::path::PathBuf;
use std::time::Duration;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring a provider or obtaining a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or malformed.
    #[error("invalid configuration {field}: {reason}")]
    InvalidConfig {
        /// The option or variable at fault.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `AUTH_TYPE` names no supported mode.
    #[error(
        "AUTH_TYPE `{value}` is not supported: use azureCloudConfig (default), environment or environment-azidentity"
    )]
    UnknownAuthType {
        /// The value given.
        value: String,
    },
    /// A cloud name is unknown.
    #[error(
        "unknown Azure cloud `{name}`: use AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud or AzureGermanCloud"
    )]
    UnknownCloud {
        /// The name given.
        name: String,
    },
    /// A file could not be read.
    #[error("reading {what} {path} failed")]
    ReadFile {
        /// What the file is (`cloud config`, `federated token file`, …).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The cloud config file is not JSON/YAML of the expected shape (the parser's text is
    /// withheld: it may quote the secret).
    #[error(
        "cloud config {path} could not be parsed as JSON/YAML (the parser's detail is withheld because it may quote secrets){location}"
    )]
    ParseCloudConfig {
        /// Its path.
        path: PathBuf,
        /// ` at line L column C` when known.
        location: String,
    },
    /// The cloud config names no usable credential.
    #[error(
        "no credentials provided for AAD application {client_id}: set aadClientSecret, aadClientCertPath and aadClientCertPassword, or useManagedIdentityExtension in the cloud config"
    )]
    NoCredentials {
        /// `aadClientId` of the file.
        client_id: String,
    },
    /// The client certificate could not be used.
    #[error("client certificate {source_name}: {reason}")]
    Certificate {
        /// Where it came from (path or `inline`).
        source_name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Entra ID (or the SDK credential talking to it) refused the token request.
    #[error("{provider}: Entra ID refused the token request{code}{status}: {hint}", code = aadsts_suffix(*.aadsts), status = status_suffix(*.status))]
    Identity {
        /// Which provider.
        provider: &'static str,
        /// `AADSTSnnnn` code found in the message, if any.
        aadsts: Option<u32>,
        /// HTTP status, when known.
        status: Option<u16>,
        /// What to fix.
        hint: String,
        /// The SDK's error (its text is Entra's description, never a secret).
        #[source]
        source: Option<Box<azure_core::Error>>,
    },
    /// The IMDS / NMI endpoint did not hand out a token within the retry budget.
    #[error(
        "managed identity: no token from {endpoint} after {attempts} attempts over {elapsed:?} (last answer: {last}); if aad-pod-identity is installed, set the chart value addAzurePodIdentityException=true (or bind an AzureIdentity to this pod), or use workload identity (AUTH_TYPE=environment-azidentity)"
    )]
    ManagedIdentityUnavailable {
        /// The IMDS endpoint.
        endpoint: String,
        /// Requests sent.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last status / transport error, summarised.
        last: String,
    },
    /// IMDS refused the request in a way retrying cannot fix (400: identity not assigned, bad resource).
    #[error(
        "managed identity: {endpoint} refused the token request (HTTP {status}): {detail}; check the user-assigned identity id and that it is assigned to this VM/VMSS"
    )]
    ManagedIdentityRefused {
        /// The IMDS endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// IMDS's error description.
        detail: String,
    },
    /// An HTTP request failed before any answer.
    #[error("{operation}: request to {host} failed")]
    Http {
        /// What was being done.
        operation: &'static str,
        /// The host called.
        host: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// TLS verification failed: reported at once, never retried.
    #[error(
        "TLS handshake with {host} failed: {detail}; trusted roots: {roots} (set SSL_CERT_FILE/SSL_CERT_DIR or the extra roots option to the CA that issued the server certificate)"
    )]
    Tls {
        /// The host called.
        host: String,
        /// rustls' reason.
        detail: String,
        /// Which roots were in use.
        roots: String,
    },
    /// An answer could not be understood.
    #[error("{operation}: unexpected answer from {host}: {reason}")]
    Response {
        /// What was being done.
        operation: &'static str,
        /// The host called.
        host: String,
        /// What was wrong (never the body of a success answer).
        reason: String,
    },
    /// Every link of the default chain was skipped or failed.
    #[error("no credential in the chain could provide a token: {}", summary(.attempts))]
    ChainExhausted {
        /// `(link, why it was skipped or failed)` in chain order.
        attempts: Vec<(&'static str, String)>,
    },
    /// The auth service refused or failed.
    #[error("auth service {url}: HTTP {status}: {reason}")]
    AuthService {
        /// The URL called (no query secrets: the path carries namespace and pod).
        url: String,
        /// HTTP status.
        status: u16,
        /// What to fix.
        reason: String,
    },
    /// Key Vault refused a token (found in a Key Vault client's error).
    #[error("Key Vault refused the token ({code}): {hint}")]
    VaultRejectedToken {
        /// `AKV10022` (audience) or `AKV10032` (issuer/tenant).
        code: String,
        /// What to fix.
        hint: String,
    },
}

fn aadsts_suffix(code: Option<u32>) -> String {
    code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default()
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn summary(attempts: &[(&'static str, String)]) -> String {
    attempts
        .iter()
        .map(|(link, why)| format!("{link}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A short, bounded label for metrics (`error` label).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidConfig { .. } => "invalid_config",
            Error::UnknownAuthType { .. } => "unknown_auth_type",
            Error::UnknownCloud { .. } => "unknown_cloud",
            Error::ReadFile { .. } => "read_file",
            Error::ParseCloudConfig { .. } => "parse_cloud_config",
            Error::NoCredentials { .. } => "no_credentials",
            Error::Certificate { .. } => "certificate",
            Error::Identity { .. } => "identity",
            Error::ManagedIdentityUnavailable { .. } => "managed_identity_unavailable",
            Error::ManagedIdentityRefused { .. } => "managed_identity_refused",
            Error::Http { .. } => "http",
            Error::Tls { .. } => "tls",
            Error::Response { .. } => "response",
            Error::ChainExhausted { .. } => "chain_exhausted",
            Error::AuthService { .. } => "auth_service",
            Error::VaultRejectedToken { .. } => "vault_rejected_token",
        }
    }

    /// Whether trying again later may succeed without a configuration change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Identity { aadsts, status, .. } => {
                aadsts.is_some_and(is_transient_aadsts)
                    || status.is_some_and(|s| s == 429 || s >= 500)
            }
            Error::ManagedIdentityUnavailable { .. } => true,
            Error::Http { source, .. } => source.is_connect() || source.is_timeout(),
            Error::AuthService { status, .. } => *status == 429 || *status >= 500,
            Error::ChainExhausted { .. } => false,
            _ => false,
        }
    }

    /// How long to wait before retrying, when the service said so.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The `AADSTS` code, for identity failures.
    pub fn aadsts(&self) -> Option<u32> {
        match self {
            Error::Identity { aadsts, .. } => *aadsts,
            _ => None,
        }
    }

    /// Finds this crate's error in an `azure_core::Error` returned by a provider (walking the
    /// source chain), e.g. to read [`Error::kind`] after a Key Vault call failed.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(ours) = e.downcast_ref::<Error>() {
                return Some(ours);
            }
            if let Some(az) = e.downcast_ref::<azure_core::Error>()
                && let Some(ours) = az.downcast_ref::<Error>()
            {
                return Some(ours);
            }
            cur = e.source();
        }
        None
    }

    /// Classifies an SDK credential's failure: the `AADSTS` code from the whole message chain,
    /// the HTTP status if the SDK kept it, and a hint naming what to fix.
    pub fn from_identity(provider: &'static str, source: azure_core::Error) -> Error {
        if let Some(tls) = Error::find(&source)
            && matches!(tls, Error::Tls { .. })
        {
            // Keep the TLS explanation on top: it is the actionable part.
            let hint = tls.to_string();
            return Error::Identity {
                provider,
                aadsts: None,
                status: None,
                hint,
                source: Some(Box::new(source)),
            };
        }
        let text = chain_text(&source);
        let aadsts = aadsts_code(&text);
        let status = http_status(&source);
        let hint = aadsts
            .map(aadsts_hint)
            .map(str::to_owned)
            .unwrap_or_else(|| match status {
                Some(s) => format!("the token endpoint answered HTTP {s}"),
                None => "see the cause below".to_owned(),
            });
        Error::Identity {
            provider,
            aadsts,
            status,
            hint,
            source: Some(Box::new(source)),
        }
    }

    /// Recognises Key Vault's token refusals (`AKV10022` invalid audience, `AKV10032` invalid
    /// issuer) in a Key Vault client's error and explains them: typically a token from another
    /// cloud than the vault's.
    pub fn from_vault_error(err: &azure_core::Error) -> Option<Error> {
        let text = chain_text(err);
        let raw = err
            .http_status()
            .is_some_and(|s| u16::from(s) == 401)
            .then(|| raw_body(err))
            .flatten()
            .unwrap_or_default();
        let all = format!("{text} {raw}");
        let (code, what) = if all.contains("AKV10022") {
            ("AKV10022", "the token's audience is not this vault's cloud")
        } else if all.contains("AKV10032") {
            (
                "AKV10032",
                "the token was issued by another cloud's or tenant's Entra ID",
            )
        } else {
            return None;
        };
        Some(Error::VaultRejectedToken {
            code: code.to_owned(),
            hint: format!(
                "{what}: set the cloud (azure.json `cloud`, or AZURE_ENVIRONMENT) to the vault's cloud, e.g. AzureChinaCloud for *.vault.azure.cn, and the tenant to the vault's tenant"
            ),
        })
    }
}

fn raw_body(err: &azure_core::Error) -> Option<String> {
    match err.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            raw_response: Some(raw),
            ..
        } => Some(String::from_utf8_lossy(raw.body()).into_owned()),
        _ => None,
    }
}

/// The message of `err` and all its sources, joined with ` | `.
pub(crate) fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        text.push_str(" | ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    text
}

fn http_status(err: &azure_core::Error) -> Option<u16> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(az) = e.downcast_ref::<azure_core::Error>()
            && let Some(s) = az.http_status()
        {
            return Some(u16::from(s));
        }
        cur = e.source();
    }
    None
}

/// Extracts the first `AADSTS<digits>` code from a message.
///
/// ```
/// assert_eq!(akv_auth::aadsts_code("AADSTS7000215: Invalid client secret provided."), Some(7000215));
/// assert_eq!(akv_auth::aadsts_code("no code here"), None);
/// ```
pub fn aadsts_code(text: &str) -> Option<u32> {
    let mut rest = text;
    while let Some(i) = rest.find("AADSTS") {
        let after = &rest[i + 6..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = digits.parse() {
            return Some(code);
        }
        rest = after;
    }
    None
}

fn is_transient_aadsts(code: u32) -> bool {
    matches!(code, 90055 | 90033 | 50000 | 50196 | 90006)
}

/// What to fix for a known `AADSTS` code.
pub fn aadsts_hint(code: u32) -> &'static str {
    match code {
        7_000_215 => {
            "the client secret is wrong: use the secret's value (not its id) in AZURE_CLIENT_SECRET / aadClientSecret"
        }
        7_000_222 => "the client secret has expired: create a new one",
        7_000_218 => "no client secret or certificate was sent: configure one",
        700_016 => {
            "the client id is not registered in this tenant: check AZURE_CLIENT_ID / aadClientId, the tenant id and the cloud"
        }
        90_002 => {
            "the tenant was not found: check the tenant id and the cloud (AZURE_ENVIRONMENT / azure.json `cloud`)"
        }
        700_027 => {
            "the certificate is not registered on the app (or does not match its key): upload the certificate to the app registration"
        }
        700_024 => {
            "the client assertion is outside its validity window: check the clock of this node"
        }
        5_002_738 => "the client assertion is not RS256: use an RSA certificate",
        50_027 => "the client assertion is malformed",
        700_021 => "the client assertion's subject is not the client id",
        70_021 => {
            "no federated credential matches the service account token's subject: add a federated credential for system:serviceaccount:<namespace>:<name>"
        }
        700_211 => {
            "no federated credential matches the token's issuer: check the cluster's OIDC issuer URL on the federated credential"
        }
        700_212 => {
            "no federated credential matches the token's audience (expected api://AzureADTokenExchange)"
        }
        90_061 => "Entra ID could not reach the service account token issuer's OIDC document",
        50_126 => "invalid username or password (AZURE_USERNAME / AZURE_PASSWORD)",
        50_034 => "the user does not exist in this tenant (AZURE_USERNAME)",
        500_011 => {
            "the resource (Key Vault audience) is unknown in this tenant: the cloud is probably wrong (AZURE_ENVIRONMENT / azure.json `cloud`)"
        }
        1_002_012 | 70_011 => "the requested scope is invalid",
        90_055 | 90_033 | 50_000 => "Entra ID is throttling or unavailable: retry later",
        _ => "see the Entra ID error description in the cause",
    }
}

/// Wraps our error as the `azure_core::Error` a `TokenCredential` returns.
pub(crate) fn into_azure(e: Error) -> azure_core::Error {
    azure_core::Error::new(azure_core::error::ErrorKind::Credential, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aadsts_codes_are_found_anywhere_in_the_text() {
        let cases = [
            ("AADSTS7000215: Invalid client secret", Some(7_000_215)),
            (
                "ClientSecretCredential: ... AADSTS700016: app not found",
                Some(700_016),
            ),
            ("AADSTS without digits then AADSTS90002: x", Some(90_002)),
            ("nothing", None),
            ("AADSTS", None),
        ];
        for (text, want) in cases {
            assert_eq!(aadsts_code(text), want, "{text}");
        }
    }

    #[test]
    fn transient_identity_errors_are_retryable_and_config_errors_are_not() {
        let e = |code| Error::Identity {
            provider: "p",
            aadsts: Some(code),
            status: None,
            hint: aadsts_hint(code).into(),
            source: None,
        };
        assert!(e(90_055).is_retryable());
        assert!(!e(7_000_215).is_retryable());
        assert_eq!(e(7_000_215).kind(), "identity");
        assert!(e(7_000_215).to_string().contains("AADSTS7000215"));
        assert!(
            Error::ManagedIdentityUnavailable {
                endpoint: "x".into(),
                attempts: 1,
                elapsed: Duration::ZERO,
                last: "404".into()
            }
            .is_retryable()
        );
    }

    #[test]
    fn chain_exhausted_lists_every_link() {
        let e = Error::ChainExhausted {
            attempts: vec![
                ("environment", "AZURE_TENANT_ID not set".into()),
                ("managed identity", "no token".into()),
            ],
        };
        let text = e.to_string();
        assert!(
            text.contains("environment: AZURE_TENANT_ID not set; managed identity: no token"),
            "{text}"
        );
    }

    /// An independent statement of the rule: the first `AADSTS` followed by digits that fit
    /// a `u32`.
    fn first_code(text: &str) -> Option<u32> {
        text.match_indices("AADSTS").find_map(|(i, m)| {
            let digits = &text[i + m.len()..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse().ok()
        })
    }

    /// Text that holds no `AADSTS` marker (any printable characters, multi-byte ones included).
    fn noise() -> impl Strategy<Value = String> {
        "\\PC{0,30}".prop_filter("no marker", |s| !s.contains("AADSTS"))
    }

    proptest! {
        #[test]
        fn the_code_is_found_after_noise_and_markers_without_a_usable_number(
            before in noise(),
            decoy in proptest::option::of(proptest::sample::select(vec![
                "AADSTS", "AADSTS: ", "AADSTSx", "AADSTS99999999999 ",
            ])),
            between in noise().prop_filter("no digit right after a bare marker", |s| {
                !s.starts_with(|c: char| c.is_ascii_digit())
            }),
            code in any::<u32>(),
            after in "([^0-9]\\PC{0,20})?",
        ) {
            // No marker may form across the seam when there is no decoy in between.
            prop_assume!(!format!("{before}{between}").contains("AADSTS"));
            let text = format!("{before}{}{between}AADSTS{code}{after}", decoy.unwrap_or_default());
            prop_assert_eq!(aadsts_code(&text), Some(code), "{}", text);
        }

        #[test]
        fn text_without_the_marker_has_no_code(text in noise()) {
            prop_assert_eq!(aadsts_code(&text), None);
        }

        #[test]
        fn any_mix_of_markers_digits_and_text_follows_the_rule(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "AADSTS", "AADST", "S", "0", "7000215", "99999999999", ":", " ", "é", "x",
                ]),
                0..12,
            ),
        ) {
            let text = pieces.concat();
            prop_assert_eq!(aadsts_code(&text), first_code(&text), "{}", text);
        }
    }
}
