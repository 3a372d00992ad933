//! Entra's wire details: error bodies, trace headers and the timestamp formats of its messages.

use http::StatusCode;
use serde_json::json;

use crate::clock::civil_from_unix;
use crate::faults::Outcome;
use crate::ids::random_guid;
use crate::server::Reply;

/// `2024-10-02 22:05:03Z`: the `Timestamp:` line and `timestamp` field of Entra errors.
pub(crate) fn entra_timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// `2024-10-02T22:05:03.0000000Z`: times inside AADSTS700024's message.
pub(crate) fn iso_timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.0000000Z")
}

/// `10/02/2024 22:05:03`: certificate validity inside AADSTS700027's message.
pub(crate) fn us_timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{mo:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02}")
}

/// One Entra error: OAuth error, AADSTS code, message text and HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntraFailure {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub outcome: Outcome,
}

impl EntraFailure {
    pub fn new(status: StatusCode, error: &'static str, code: u32, message: String) -> Self {
        let outcome = if matches!(error, "invalid_client" | "invalid_grant") {
            Outcome::TokenRejected
        } else {
            Outcome::BadRequest
        };
        Self {
            status,
            error,
            code,
            message,
            outcome,
        }
    }

    /// The reply as Entra writes it: the description ends in `\r\n`-separated trace lines,
    /// which serde_json writes as the two-character escapes `\r\n` inside the JSON string.
    pub fn reply(&self, host: &str, now: u64, correlation_id: Option<&str>) -> Reply {
        let trace_id = random_guid();
        let correlation_id = correlation_id
            .map(str::to_owned)
            .unwrap_or_else(random_guid);
        let timestamp = entra_timestamp(now);
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://{host}/error?code={}", self.code),
        });
        headers(
            Reply::json(self.status, &body, self.outcome),
            &trace_id,
            &correlation_id,
        )
    }
}

/// The headers Entra sets on token endpoint answers.
pub(crate) fn headers(reply: Reply, trace_id: &str, correlation_id: &str) -> Reply {
    reply
        .with_header(http::header::CACHE_CONTROL, "no-store, no-cache")
        .with_header(http::header::PRAGMA, "no-cache")
        .with_header(http::header::EXPIRES, "-1")
        .with_header(
            http::HeaderName::from_static("x-content-type-options"),
            "nosniff",
        )
        .with_header(http::HeaderName::from_static("x-ms-request-id"), trace_id)
        .with_header(
            http::HeaderName::from_static("client-request-id"),
            correlation_id,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_like_entra() {
        // 2024-10-02T22:05:03Z
        let t = 1_727_906_703;
        assert_eq!(entra_timestamp(t), "2024-10-02 22:05:03Z");
        assert_eq!(iso_timestamp(t), "2024-10-02T22:05:03.0000000Z");
        assert_eq!(us_timestamp(t), "10/02/2024 22:05:03");
        assert_eq!(entra_timestamp(951_782_400), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn error_bodies_escape_the_trace_lines_as_entra_does() {
        let f = EntraFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            "Invalid client secret provided.".into(),
        );
        let r = f.reply("login.microsoftonline.com", 1_727_906_703, Some("c-id"));
        let text = std::str::from_utf8(&r.body).expect("utf-8");
        assert!(
            text.contains(r#"Invalid client secret provided.\r\nTrace ID: "#),
            "{text}"
        );
        assert!(text.contains(r#"\r\nCorrelation ID: c-id\r\nTimestamp: 2024-10-02 22:05:03Z""#));
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(v["error_codes"], json!([7_000_215]));
        assert_eq!(
            v["error_uri"],
            "https://login.microsoftonline.com/error?code=7000215"
        );
        assert_eq!(r.outcome, Outcome::TokenRejected);
    }
}
