//! The OAuth 2.0 token endpoint exchange our hand-written providers speak: Entra ID's token
//! endpoint (username/password) and IMDS / NMI (managed identity).
//!
//! * [`exchange`]: one request; its status, `Retry-After` and body, or which step failed.
//! * [`TokenBody`]: a success body; `expires_in` / `expires_on` may be JSON numbers or strings
//!   (IMDS sends strings).
//! * [`ErrorBody`]: an error body's `error` / `error_description`.
//! * [`parse_token_response`]: an Entra answer as a token or an [`Error::Identity`] carrying
//!   the `AADSTS` code and the HTTP status.

use std::time::Duration;

use azure_core::credentials::AccessToken;
use azure_core::time::OffsetDateTime;
use serde::Deserialize;

use crate::error::{Error, Result, aadsts_code, aadsts_hint};

/// Lifetime assumed when Entra's success body has no `expires_in`.
const DEFAULT_EXPIRES_IN_SECS: i64 = 3599;

/// A token endpoint's answer, whatever its status.
pub(crate) struct Answer {
    /// HTTP status.
    pub(crate) status: u16,
    /// `Retry-After` in seconds, when present.
    pub(crate) retry_after: Option<Duration>,
    /// The body (a token on success: never log it).
    pub(crate) text: String,
}

/// Which step of [`exchange`] failed.
pub(crate) enum Failure {
    /// No answer (connect, TLS, timeout).
    Send(reqwest::Error),
    /// The answer's body could not be read.
    Read(reqwest::Error),
}

impl Failure {
    /// The transport error, whichever step failed.
    pub(crate) fn into_source(self) -> reqwest::Error {
        match self {
            Failure::Send(e) | Failure::Read(e) => e,
        }
    }
}

/// Sends `request` and reads the whole answer.
pub(crate) async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
    let resp = request.send().await.map_err(Failure::Send)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.map_err(Failure::Read)?;
    Ok(Answer {
        status,
        retry_after,
        text,
    })
}

/// A success body (Entra v1/v2, IMDS). No `Debug`: it holds the token.
#[derive(Deserialize)]
pub(crate) struct TokenBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

impl TokenBody {
    /// `None` when `text` is not a token response.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Seconds of validity left, as the endpoint counted them.
    pub(crate) fn expires_in(&self) -> Option<i64> {
        self.expires_in.as_ref().and_then(number)
    }

    /// Expiry as Unix seconds.
    pub(crate) fn expires_on(&self) -> Option<i64> {
        self.expires_on.as_ref().and_then(number)
    }

    /// The token, expiring at `expires`.
    pub(crate) fn into_token(self, expires: OffsetDateTime) -> AccessToken {
        AccessToken::new(self.access_token, expires)
    }
}

/// Now plus `secs`.
pub(crate) fn in_seconds(secs: i64) -> OffsetDateTime {
    // Clamp absurd lifetimes from a misbehaving endpoint instead of overflowing: a day is
    // more than any Entra or IMDS token lives, and the cache refreshes long before.
    let secs = secs.clamp(0, 24 * 3600);
    let now = OffsetDateTime::now_utc();
    now.checked_add(azure_core::time::Duration::seconds(secs))
        .unwrap_or(now)
}

#[cfg(test)]
mod lifetime_tests {
    use super::*;

    #[test]
    fn absurd_lifetimes_are_clamped_instead_of_overflowing() {
        let now = OffsetDateTime::now_utc();
        let far = in_seconds(i64::MAX);
        assert!(far > now && far <= now + azure_core::time::Duration::seconds(24 * 3600 + 5));
        assert!(in_seconds(-5) <= OffsetDateTime::now_utc());
    }
}

/// A JSON number, or a string holding one.
fn number(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// An error body (Entra, IMDS, NMI's JSON answers).
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    /// OAuth error code (`invalid_grant`, `invalid_request`, …).
    #[serde(default)]
    pub(crate) error: String,
    /// Human-readable description (Entra's starts with `AADSTSnnnn:`).
    #[serde(default)]
    pub(crate) error_description: String,
}

impl ErrorBody {
    /// `None` when `text` is not a JSON error body.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Parses an Entra token endpoint answer (v2 or v1 shape).
pub(crate) fn parse_token_response(
    provider: &'static str,
    host: &str,
    status: u16,
    text: &str,
) -> Result<AccessToken> {
    if status == 200 {
        let body = TokenBody::parse(text).ok_or_else(|| Error::Response {
            operation: "token request",
            host: host.to_owned(),
            reason: "the success body is not a token response".into(),
        })?;
        let secs = body.expires_in().unwrap_or(DEFAULT_EXPIRES_IN_SECS);
        return Ok(body.into_token(in_seconds(secs)));
    }
    let parsed = ErrorBody::parse(text);
    let description = parsed
        .as_ref()
        .map(|b| b.error_description.as_str())
        .unwrap_or_default();
    let aadsts = aadsts_code(description);
    let first_line = description.split(['\r', '\n']).next().unwrap_or_default();
    let hint = match aadsts {
        Some(code) => format!("{}; Entra said: {first_line}", aadsts_hint(code)),
        None => match &parsed {
            Some(b) if !b.error.is_empty() => format!("error `{}`", b.error),
            _ => "the token endpoint's answer is not an Entra error body".to_owned(),
        },
    };
    Err(Error::Identity {
        provider,
        aadsts,
        status: Some(status),
        hint,
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "p";

    #[test]
    fn entra_error_bodies_with_crlf_escapes_yield_code_status_and_first_line() {
        let body = r#"{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials due to invalid username or password.\r\nTrace ID: a\r\nCorrelation ID: b\r\nTimestamp: c","error_codes":[50126]}"#;
        let err = parse_token_response(PROVIDER, "login", 400, body).expect_err("refused");
        assert_eq!(err.aadsts(), Some(50_126));
        let text = err.to_string();
        assert!(
            text.contains("AADSTS50126") && text.contains("HTTP 400"),
            "{text}"
        );
        assert!(!text.contains("Trace ID"), "{text}");
    }

    #[test]
    fn success_bodies_accept_numbers_or_strings() {
        for body in [
            r#"{"access_token":"x","expires_in":3599}"#,
            r#"{"access_token":"x","expires_in":"3599"}"#,
        ] {
            let t = parse_token_response(PROVIDER, "h", 200, body).expect("token");
            assert!(t.expires_on > OffsetDateTime::now_utc());
        }
    }
}
