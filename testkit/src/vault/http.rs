//! Key Vault's data-plane REST surface: routing, challenge authentication, token checks,
//! authorization and error bodies, as Key Vault answers them.
//!
//! Order of checks, as Key Vault applies them: vault by `Host`; `api-version` present (400);
//! bearer token present (401 challenge), valid (signature, `aud`, tenant, lifetime: 401 with
//! Key Vault's `AKV…` messages); route (404/405); permission of the caller (403 before the
//! object is looked up, so a caller without access cannot probe names); the object (404,
//! 403 `SecretDisabled`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, Method, StatusCode};
use serde_json::{Value, json};

use super::access::{self, Operation};
use super::store::{
    AuthorizationModel, ObjectKind, SecretVersion, Vault, find, push_version, valid_object_name,
};
use crate::faults::{Outcome, lock};
use crate::server::{FakeRequest, Reply, Service};
use crate::token::{Claims, TokenIssuer};
use std::sync::Arc;

/// Key Vault's page size limit for list operations.
pub const MAX_RESULTS: usize = 25;

/// The shared state behind the Key Vault fake's HTTP surface.
pub(crate) struct KeyVaultService {
    pub vaults: Mutex<BTreeMap<String, Vault>>,
    pub issuer: Arc<TokenIssuer>,
}

fn error_body(code: &str, message: &str, inner: Option<&str>) -> Value {
    let mut e = json!({ "error": { "code": code, "message": message } });
    if let Some(inner) = inner {
        e["error"]["innererror"] = json!({ "code": inner });
    }
    e
}

fn reply(status: StatusCode, body: &Value, outcome: Outcome) -> Reply {
    Reply::json(status, body, outcome)
        .with_header(http::header::CACHE_CONTROL, "no-cache")
        .with_header(http::header::PRAGMA, "no-cache")
        .with_header(http::header::EXPIRES, "-1")
        .with_header(
            HeaderName::from_static("x-ms-keyvault-service-version"),
            "1.9.2673.1",
        )
        .with_header(HeaderName::from_static("x-content-type-options"), "nosniff")
}

fn bad_parameter(message: &str) -> Reply {
    reply(
        StatusCode::BAD_REQUEST,
        &error_body("BadParameter", message, None),
        Outcome::BadRequest,
    )
}

/// Parsed route.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    List(ObjectKind),
    Versions(ObjectKind, &'a str),
    Get(ObjectKind, &'a str, Option<&'a str>),
    Policy(&'a str),
    SetSecret(&'a str),
}

fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, StatusCode> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let kind = match segs.first().copied() {
        Some("secrets") => ObjectKind::Secret,
        Some("certificates") => ObjectKind::Certificate,
        Some("keys") => ObjectKind::Key,
        _ => return Err(StatusCode::NOT_FOUND),
    };
    // `/secrets/name/` (the SDK's trailing slash) is the same as `/secrets/name`.
    let rest: Vec<&str> = match segs[1..] {
        [ref head @ .., ""] => head.to_vec(),
        ref all => all.to_vec(),
    };
    let r = match (method, kind, rest.as_slice()) {
        (&Method::GET, k, []) => Route::List(k),
        (&Method::GET, k, [name, "versions"]) => Route::Versions(k, name),
        (&Method::GET, ObjectKind::Certificate, [name, "policy"]) => Route::Policy(name),
        (&Method::GET, k, [name]) => Route::Get(k, name, None),
        (&Method::GET, k, [name, version]) => Route::Get(k, name, Some(version)),
        (&Method::PUT, ObjectKind::Secret, [name]) => Route::SetSecret(name),
        (_, _, [] | [_] | [_, _]) => return Err(StatusCode::METHOD_NOT_ALLOWED),
        _ => return Err(StatusCode::NOT_FOUND),
    };
    Ok(r)
}

impl Service for KeyVaultService {
    fn handle(&self, req: &FakeRequest) -> Reply {
        let mut vaults = lock(&self.vaults);
        let Some(vault) = vaults.get_mut(&req.host) else {
            // Real DNS would not resolve an unknown vault; a client can only get here through a
            // resolve override that names a host the test did not create.
            return reply(
                StatusCode::NOT_FOUND,
                &error_body(
                    "VaultNotFound",
                    &format!("testkit: no vault is served at host {}", req.host),
                    None,
                ),
                Outcome::BadRequest,
            );
        };
        let location = vault.location.clone();
        let with_region =
            |r: Reply| r.with_header(HeaderName::from_static("x-ms-keyvault-region"), &location);
        if req.query_param("api-version").is_none_or(str::is_empty) {
            return bad_parameter(
                "The request URI contains an invalid or missing api-version parameter.",
            );
        }
        let claims = match self.authenticate(vault, req) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let oid = claims.oid.clone();
        let route = match route(&req.method, &req.path) {
            Ok(r) => r,
            Err(status) => {
                let (code, msg) = if status == StatusCode::NOT_FOUND {
                    ("NotFound", "The requested resource was not found.")
                } else {
                    (
                        "MethodNotAllowed",
                        "The requested method is not allowed for this resource.",
                    )
                };
                return reply(status, &error_body(code, msg, None), Outcome::Authorized)
                    .by(Some(oid));
            }
        };
        let now = self.issuer.clock().unix_seconds();
        let r = serve(vault, req, &claims, route, now);
        with_region(r).by(Some(oid))
    }

    fn fault_reply(&self, _req: &FakeRequest, status: u16, retry_after: Option<u64>) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match status.as_u16() {
            429 => error_body(
                "Throttled",
                "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
                None,
            ),
            503 => error_body(
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry.",
                None,
            ),
            500 => error_body("InternalServerError", "An unexpected error occurred.", None),
            _ => error_body(
                status.canonical_reason().unwrap_or("Error"),
                "Injected by testkit.",
                None,
            ),
        };
        let r = reply(status, &body, Outcome::Faulted);
        match retry_after {
            Some(s) => r.with_header(http::header::RETRY_AFTER, &s.to_string()),
            None => r,
        }
    }
}

impl KeyVaultService {
    /// Challenge and token validation. Returns the caller's claims.
    fn authenticate(&self, vault: &Vault, req: &FakeRequest) -> Result<Claims, Reply> {
        let challenge = format!(
            "Bearer authorization=\"https://{}/{}\", resource=\"{}\"",
            vault.cloud.authority_host, vault.tenant_id, vault.cloud.vault_audience
        );
        let unauthorized = |message: String, outcome: Outcome| {
            reply(
                StatusCode::UNAUTHORIZED,
                &error_body("Unauthorized", &message, None),
                outcome,
            )
            .with_header(http::header::WWW_AUTHENTICATE, &challenge)
        };
        let Some(token) = req.bearer() else {
            return Err(unauthorized(
                "AKV10000: Request is missing a Bearer or PoP token.".into(),
                Outcome::Challenge,
            ));
        };
        let claims = self.issuer.verify(token).map_err(|e| {
            // Wording is testkit's: Key Vault's exact texts for these are not documented.
            unauthorized(
                format!("AKV10016: Invalid token: {e}."),
                Outcome::TokenRejected,
            )
        })?;
        if claims.aud != vault.cloud.vault_audience {
            return Err(unauthorized(
                format!(
                    "AKV10022: Invalid audience. Expected {}, found: {}.",
                    vault.cloud.vault_audience, claims.aud
                ),
                Outcome::TokenRejected,
            ));
        }
        let expected_iss = vault.cloud.token_issuer(&vault.tenant_id);
        if !claims.tid.eq_ignore_ascii_case(&vault.tenant_id) || claims.iss != expected_iss {
            return Err(unauthorized(
                format!(
                    "AKV10032: Invalid issuer. Expected one of {expected_iss}, found {}.",
                    claims.iss
                ),
                Outcome::TokenRejected,
            ));
        }
        let now = self.issuer.clock().unix_seconds();
        if claims.exp <= now {
            return Err(unauthorized(
                "[TokenExpired] Error validating token: 'S2S12086'.".into(),
                Outcome::TokenRejected,
            ));
        }
        // Entra and Key Vault allow five minutes of clock skew.
        if claims.nbf > now + 300 {
            return Err(unauthorized(
                "[TokenNotYetValid] Error validating token: the token is not yet valid.".into(),
                Outcome::TokenRejected,
            ));
        }
        Ok(claims)
    }
}

fn forbidden(
    vault: &Vault,
    claims: &Claims,
    kind: ObjectKind,
    name: Option<&str>,
    op: Operation,
) -> Reply {
    let caller = format!(
        "appid={};oid={};iss={}",
        claims.appid, claims.oid, claims.iss
    );
    let body = match vault.authorization {
        AuthorizationModel::AccessPolicies => error_body(
            "Forbidden",
            &format!(
                "The user, group or application '{caller}' does not have {} permission on key vault '{};location={}'. \
                 For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                access::policy_words(kind, op),
                vault.name,
                vault.location
            ),
            Some("AccessDenied"),
        ),
        AuthorizationModel::Rbac => {
            let resource = match name {
                Some(n) => format!("/{}/{}", kind.collection(), n.to_ascii_lowercase()),
                None => String::new(),
            };
            error_body(
                "Forbidden",
                &format!(
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role \
                     definitions were changed recently, please observe propagation time.\r\nCaller: {caller}\r\nAction: '{}'\r\n\
                     Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/testkit/providers/\
                     microsoft.keyvault/vaults/{}{resource}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n\
                     DecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {};location={}\r\n",
                    access::rbac_action(kind, op),
                    vault.name.to_ascii_lowercase(),
                    vault.name,
                    vault.location
                ),
                Some("ForbiddenByRbac"),
            )
        }
    };
    reply(StatusCode::FORBIDDEN, &body, Outcome::Authorized)
}

fn not_found(kind: ObjectKind, name: &str, version: Option<&str>) -> Reply {
    let id = match version {
        Some(v) => format!("{name}/{v}"),
        None => name.to_owned(),
    };
    let code = match kind {
        ObjectKind::Secret => "SecretNotFound",
        ObjectKind::Certificate => "CertificateNotFound",
        ObjectKind::Key => "KeyNotFound",
    };
    let noun = kind.noun();
    let article = if noun == "key" {
        "A key"
    } else {
        &format!("A {noun}")
    };
    let message = format!(
        "{article} with (name/id) {id} was not found in this key vault. If you recently deleted this {noun} you may be \
         able to recover it using the correct recovery command. For help resolving this issue, please see \
         https://go.microsoft.com/fwlink/?linkid=2125182"
    );
    reply(
        StatusCode::NOT_FOUND,
        &error_body(code, &message, None),
        Outcome::Authorized,
    )
}

fn ok(body: &Value) -> Reply {
    reply(StatusCode::OK, body, Outcome::Authorized)
}

fn serve(
    vault: &mut Vault,
    req: &FakeRequest,
    claims: &Claims,
    route: Route<'_>,
    now: u64,
) -> Reply {
    let (kind, name, op) = match &route {
        Route::List(k) => (*k, None, Operation::List),
        Route::Versions(k, n) => (*k, Some(*n), Operation::List),
        Route::Get(k, n, _) => (*k, Some(*n), Operation::Get),
        Route::Policy(n) => (ObjectKind::Certificate, Some(*n), Operation::Get),
        Route::SetSecret(n) => (ObjectKind::Secret, Some(*n), Operation::Set),
    };
    if let Some(n) = name
        && !valid_object_name(n)
    {
        return bad_parameter(&format!(
            "The request URI contains an invalid name: {n}. Object names may contain only 0-9, a-z, A-Z and -, up to \
             127 characters."
        ));
    }
    if !access::allowed(&vault.grants, &claims.oid, kind, name, op) {
        return forbidden(vault, claims, kind, name, op);
    }
    match route {
        Route::Get(kind, name, version) => get(vault, kind, name, version),
        Route::Policy(name) => {
            match find(&vault.certificates, name).and_then(|o| o.versions.last().map(|v| (o, v))) {
                Some((o, v)) => ok(&vault.policy_json(&o.name, v)),
                None => not_found(ObjectKind::Certificate, name, None),
            }
        }
        Route::List(kind) => list(vault, req, kind, None),
        Route::Versions(kind, name) => list(vault, req, kind, Some(name)),
        Route::SetSecret(name) => set_secret(vault, req, name, now),
    }
}

fn get(vault: &Vault, kind: ObjectKind, name: &str, version: Option<&str>) -> Reply {
    fn pick<'a, T>(
        versions: &'a [T],
        version: Option<&str>,
        id: impl Fn(&T) -> &str,
    ) -> Option<&'a T> {
        match version {
            None => versions.last(),
            Some(v) => versions.iter().find(|x| id(x).eq_ignore_ascii_case(v)),
        }
    }
    match kind {
        ObjectKind::Secret => {
            let Some(o) = find(&vault.secrets, name) else {
                return not_found(kind, name, version);
            };
            let Some(v) = pick(&o.versions, version, |v: &SecretVersion| &v.version) else {
                return not_found(kind, name, version);
            };
            if !v.attributes.enabled {
                return reply(
                    StatusCode::FORBIDDEN,
                    &error_body(
                        "Forbidden",
                        "Operation get is not allowed on a disabled secret.",
                        Some("SecretDisabled"),
                    ),
                    Outcome::Authorized,
                );
            }
            ok(&vault.secret_bundle(&o.name, v))
        }
        ObjectKind::Certificate => {
            let Some(o) = find(&vault.certificates, name) else {
                return not_found(kind, name, version);
            };
            match pick(&o.versions, version, |v| &v.version) {
                Some(v) => ok(&vault.certificate_bundle(&o.name, v)),
                None => not_found(kind, name, version),
            }
        }
        ObjectKind::Key => {
            let Some(o) = find(&vault.keys, name) else {
                return not_found(kind, name, version);
            };
            match pick(&o.versions, version, |v| &v.version) {
                Some(v) => ok(&vault.key_bundle(&o.name, v)),
                None => not_found(kind, name, version),
            }
        }
    }
}

/// The `$skiptoken` Key Vault hands out: opaque base64url JSON; ours carries an offset.
fn skiptoken(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(
        json!({ "NextMarker": format!("2!{offset}!testkit"), "TargetLocation": 0 }).to_string(),
    )
}

fn parse_skiptoken(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["NextMarker"].as_str()?.split('!').nth(1)?.parse().ok()
}

fn list(vault: &Vault, req: &FakeRequest, kind: ObjectKind, name: Option<&str>) -> Reply {
    let page_size = match req.query_param("maxresults") {
        None => MAX_RESULTS,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return bad_parameter(&format!(
                    "The value '{s}' of parameter maxresults is invalid: it must be between 1 and {MAX_RESULTS}."
                ));
            }
        },
    };
    let offset = match req.query_param("$skiptoken") {
        None => 0,
        Some(t) => match parse_skiptoken(t) {
            Some(o) => o,
            None => return bad_parameter("The value of parameter $skiptoken is invalid."),
        },
    };
    // Every item of the collection (latest version of each object), or every version of one.
    let items: Vec<Value> = match (kind, name) {
        (ObjectKind::Secret, None) => vault
            .secrets
            .values()
            .filter_map(|o| {
                o.versions
                    .last()
                    .map(|v| vault.secret_item(&o.name, v, false))
            })
            .collect(),
        (ObjectKind::Certificate, None) => vault
            .certificates
            .values()
            .filter_map(|o| {
                o.versions
                    .last()
                    .map(|v| vault.certificate_item(&o.name, v, false))
            })
            .collect(),
        (ObjectKind::Key, None) => vault
            .keys
            .values()
            .filter_map(|o| o.versions.last().map(|v| vault.key_item(&o.name, v, false)))
            .collect(),
        (ObjectKind::Secret, Some(n)) => match find(&vault.secrets, n) {
            Some(o) => o
                .versions
                .iter()
                .map(|v| vault.secret_item(&o.name, v, true))
                .collect(),
            None => return not_found(kind, n, None),
        },
        (ObjectKind::Certificate, Some(n)) => match find(&vault.certificates, n) {
            Some(o) => o
                .versions
                .iter()
                .map(|v| vault.certificate_item(&o.name, v, true))
                .collect(),
            None => return not_found(kind, n, None),
        },
        (ObjectKind::Key, Some(n)) => match find(&vault.keys, n) {
            Some(o) => o
                .versions
                .iter()
                .map(|v| vault.key_item(&o.name, v, true))
                .collect(),
            None => return not_found(kind, n, None),
        },
    };
    let page: Vec<Value> = items.iter().skip(offset).take(page_size).cloned().collect();
    let next = offset + page.len();
    let next_link = if next < items.len() {
        let api_version = req.query_param("api-version").unwrap_or_default();
        // Key Vault writes the port explicitly in nextLink.
        json!(format!(
            "https://{}:443{}?api-version={}&$skiptoken={}&maxresults={}",
            vault.host(),
            req.path.trim_end_matches('/'),
            api_version,
            skiptoken(next),
            page_size
        ))
    } else {
        Value::Null
    };
    ok(&json!({ "value": page, "nextLink": next_link }))
}

fn set_secret(vault: &mut Vault, req: &FakeRequest, name: &str, now: u64) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return bad_parameter("The request body is not valid JSON.");
    };
    let Some(value) = body["value"].as_str() else {
        return bad_parameter("Property 'value' is required and must be a string.");
    };
    if find(&vault.certificates, name).is_some() {
        // A certificate's backing secret can only change through the certificate.
        return reply(
            StatusCode::CONFLICT,
            &error_body(
                "Conflict",
                &format!(
                    "Secret {name} is currently being managed by a certificate and cannot be modified."
                ),
                None,
            ),
            Outcome::Authorized,
        );
    }
    let mut attributes = super::store::Attributes::new(now);
    attributes.enabled = body["attributes"]["enabled"].as_bool().unwrap_or(true);
    attributes.not_before = body["attributes"]["nbf"].as_u64();
    attributes.expires = body["attributes"]["exp"].as_u64();
    let tags = body["tags"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let version = SecretVersion {
        version: crate::ids::random_hex_id(),
        value: value.to_owned(),
        content_type: body["contentType"].as_str().map(str::to_owned),
        attributes,
        tags,
        managed: false,
    };
    let bundle_name = find(&vault.secrets, name)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| name.to_owned());
    let bundle = vault.secret_bundle(&bundle_name, &version);
    push_version(&mut vault.secrets, name, version);
    ok(&bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_sdk_paths() {
        let g = Method::GET;
        assert_eq!(
            route(&g, "/secrets/a/"),
            Ok(Route::Get(ObjectKind::Secret, "a", None))
        );
        assert_eq!(
            route(&g, "/secrets/a"),
            Ok(Route::Get(ObjectKind::Secret, "a", None))
        );
        assert_eq!(
            route(&g, "/secrets/a/v1"),
            Ok(Route::Get(ObjectKind::Secret, "a", Some("v1")))
        );
        assert_eq!(route(&g, "/secrets"), Ok(Route::List(ObjectKind::Secret)));
        assert_eq!(
            route(&g, "/keys/k/versions"),
            Ok(Route::Versions(ObjectKind::Key, "k"))
        );
        assert_eq!(route(&g, "/certificates/c/policy"), Ok(Route::Policy("c")));
        assert_eq!(route(&Method::PUT, "/secrets/a"), Ok(Route::SetSecret("a")));
        assert_eq!(
            route(&Method::PUT, "/keys/a"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(route(&g, "/storage/x"), Err(StatusCode::NOT_FOUND));
        assert_eq!(route(&g, "/secrets/a/b/c"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn skiptokens_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_skiptoken(&skiptoken(50)), Some(50));
        assert_eq!(parse_skiptoken("not-a-token"), None);
    }
}
