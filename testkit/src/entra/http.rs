//! The token endpoint's HTTP surface: routing, grants, client authentication and Entra's
//! error answers.
//!
//! Order of checks: authority host (404 for any other host); route (404); POST
//! (`AADSTS900561`); tenant (`AADSTS90002`); `grant_type`, `client_id` (`AADSTS900144`);
//! grant (`AADSTS70003`); scope or resource (`AADSTS900144`, `AADSTS1002012`, `AADSTS70011`,
//! `AADSTS500011`); client (`AADSTS700016`); client credential; for ROPC the user.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;

use super::jwt::{Jwt, ServiceAccountIssuer, rsa_key_and_validity};
use super::wire::{EntraFailure, headers, iso_timestamp, us_timestamp};
use super::{ClientSpec, Directory, Tenants, tenant_key};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::faults::{Outcome, lock};
use crate::ids::random_guid;
use crate::server::{FakeRequest, Reply, Service};
use crate::token::{Claims, TokenIssuer};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew Entra tolerates on `nbf`.
const SKEW: u64 = 300;

/// The shared state behind the Entra fake's HTTP surface.
pub(crate) struct EntraService {
    pub tenants: Mutex<Tenants>,
    pub issuer: Arc<TokenIssuer>,
    pub trusted: Mutex<Vec<Arc<ServiceAccountIssuer>>>,
    pub sa_issuer: Arc<ServiceAccountIssuer>,
    pub resources: Mutex<BTreeSet<String>>,
    pub lifetime: Duration,
    pub clock: Clock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The parsed request, as far as the grants need it.
struct TokenRequest<'a> {
    cloud: Cloud,
    host: &'a str,
    tenant: &'a str,
    version: Version,
    form: Vec<(String, String)>,
}

impl TokenRequest<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The endpoint URLs a client assertion may name as `aud`.
    fn assertion_audiences(&self) -> [String; 3] {
        let base = format!("https://{}/{}", self.host, self.tenant);
        [
            format!("{base}/oauth2/v2.0/token"),
            format!("{base}/oauth2/token"),
            format!("{base}/v2.0"),
        ]
    }
}

fn bad_request(code: u32, message: String) -> EntraFailure {
    EntraFailure::new(StatusCode::BAD_REQUEST, "invalid_request", code, message)
}

fn invalid_client(code: u32, message: String) -> EntraFailure {
    EntraFailure::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
}

fn missing(param: &str) -> EntraFailure {
    bad_request(
        900_144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

fn not_within_time_range(now: u64, nbf: u64, exp: u64) -> EntraFailure {
    invalid_client(
        700_024,
        format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            iso_timestamp(now),
            iso_timestamp(nbf),
            iso_timestamp(exp)
        ),
    )
}

fn graph_hint(client_id: &str) -> String {
    format!(
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}'"
    )
}

impl Service for EntraService {
    fn handle(&self, req: &FakeRequest) -> Reply {
        let now = self.clock.unix_seconds();
        let correlation = req.header("client-request-id").map(str::to_owned);
        match self.token(req, now) {
            Ok(reply) => reply,
            Err(Answer::Failure(f)) => f.reply(&req.host, now, correlation.as_deref()),
            Err(Answer::NotFound) => Reply::json(
                StatusCode::NOT_FOUND,
                &json!({ "error": "not_found", "error_description": "testkit: the Entra fake serves only the token endpoints" }),
                Outcome::BadRequest,
            ),
        }
    }

    fn fault_reply(&self, req: &FakeRequest, status: u16, retry_after: Option<u64>) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (error, code, message) = match status.as_u16() {
            429 => (
                "temporarily_unavailable",
                90_055,
                "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.",
            ),
            503 => (
                "temporarily_unavailable",
                90_033,
                "MsodsServiceUnavailable - The Microsoft Online Directory Service (MSODS) isn't available.",
            ),
            _ => (
                "server_error",
                50_000,
                "There was an error issuing a token or an issue with our sign-in service.",
            ),
        };
        let correlation = req.header("client-request-id");
        let r = EntraFailure::new(status, error, code, message.into()).reply(
            &req.host,
            self.clock.unix_seconds(),
            correlation,
        );
        match retry_after {
            Some(s) => r.with_header(http::header::RETRY_AFTER, &s.to_string()),
            None => r,
        }
    }
}

enum Answer {
    Failure(EntraFailure),
    NotFound,
}

impl From<EntraFailure> for Answer {
    fn from(f: EntraFailure) -> Self {
        Answer::Failure(f)
    }
}

/// What the token is for.
struct Grant {
    principal_oid: String,
    claims: Claims,
    resource: String,
}

impl EntraService {
    fn token(&self, req: &FakeRequest, now: u64) -> Result<Reply, Answer> {
        let cloud = Cloud::ALL
            .into_iter()
            .find(|c| c.authority_host == req.host)
            .ok_or(Answer::NotFound)?;
        let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let (tenant, version) = match segs.as_slice() {
            [t, "oauth2", "v2.0", "token"] => (*t, Version::V2),
            [t, "oauth2", "token"] => (*t, Version::V1),
            _ => return Err(Answer::NotFound),
        };
        if req.method != Method::POST {
            return Err(bad_request(
                900_561,
                format!(
                    "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                    req.method
                ),
            )
            .into());
        }
        let tr = TokenRequest {
            cloud,
            host: &req.host,
            tenant,
            version,
            form: form_urlencoded::parse(&req.body).into_owned().collect(),
        };
        let tenants = lock(&self.tenants);
        let dir = tenants.get(&tenant_key(&cloud, tenant)).ok_or_else(|| {
            EntraFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_tenant",
                90_002,
                format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
            )
        })?;
        let grant_type = tr
            .param("grant_type")
            .ok_or_else(|| missing("grant_type"))?;
        let client_id = tr.param("client_id").ok_or_else(|| missing("client_id"))?;
        if !matches!(grant_type, "client_credentials" | "password") {
            return Err(EntraFailure::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70_003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            )
            .into());
        }
        let resource = self.resource(&tr, grant_type == "client_credentials")?;
        let app = dir
            .apps
            .get(&client_id.to_ascii_lowercase())
            .ok_or_else(|| {
                EntraFailure::new(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700_016,
                    format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
                )
            })?;
        let grant = if grant_type == "client_credentials" {
            self.authenticate_client(&tr, app, now, true)?;
            let audience = resource.trim_end_matches('/');
            Grant {
                principal_oid: app.principal.object_id.clone(),
                claims: self
                    .issuer
                    .claims_for(&app.principal, &cloud, audience, self.lifetime),
                resource: resource.clone(),
            }
        } else {
            self.password_grant(&tr, dir, app, &resource, now)?
        };
        drop(tenants);
        Ok(self.success(&tr, grant, now, req.header("client-request-id")))
    }

    /// The resource of the request: `scope` (v2) or `resource` (v1), known to the fake.
    fn resource(&self, tr: &TokenRequest<'_>, client_credentials: bool) -> Result<String, Answer> {
        let resource = match tr.version {
            Version::V1 => tr
                .param("resource")
                .ok_or_else(|| missing("resource"))?
                .to_owned(),
            Version::V2 => {
                let scope = tr.param("scope").ok_or_else(|| missing("scope"))?;
                let wanted: Vec<&str> = scope
                    .split_whitespace()
                    .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access" | "email"))
                    .collect();
                let invalid_scope = |code: u32, message: String| {
                    EntraFailure::new(StatusCode::BAD_REQUEST, "invalid_scope", code, message)
                };
                match wanted.as_slice() {
                    [one] if one.ends_with("/.default") => {
                        one.trim_end_matches("/.default").to_owned()
                    }
                    [one] if client_credentials => {
                        return Err(invalid_scope(1_002_012, format!("The provided value for scope {one} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")).into());
                    }
                    [one] if one.contains("://") && one.rsplit_once('/').is_some() => one
                        .rsplit_once('/')
                        .map(|(r, _)| r.to_owned())
                        .unwrap_or_default(),
                    _ => {
                        return Err(invalid_scope(70_011, format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.")).into());
                    }
                }
            }
        };
        if !lock(&self.resources).contains(resource.trim_end_matches('/')) {
            return Err(EntraFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                500_011,
                format!("The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", tr.tenant),
            )
            .into());
        }
        Ok(resource)
    }

    /// Checks the client's credential. `required`: a confidential client must present one.
    fn authenticate_client(
        &self,
        tr: &TokenRequest<'_>,
        app: &ClientSpec,
        now: u64,
        required: bool,
    ) -> Result<(), EntraFailure> {
        let client_id = &app.principal.app_id;
        if let Some(assertion) = tr.param("client_assertion") {
            if tr.param("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(missing("client_assertion_type"));
            }
            return self.check_assertion(tr, app, assertion, now);
        }
        if let Some(secret) = tr.param("client_secret") {
            return if app.secrets.iter().any(|s| s.0 == secret) {
                Ok(())
            } else {
                Err(invalid_client(
                    7_000_215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ))
            };
        }
        if required {
            return Err(invalid_client(
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            ));
        }
        Ok(())
    }

    fn check_assertion(
        &self,
        tr: &TokenRequest<'_>,
        app: &ClientSpec,
        assertion: &str,
        now: u64,
    ) -> Result<(), EntraFailure> {
        let client_id = &app.principal.app_id;
        let jwt = Jwt::parse(assertion)
            .ok_or_else(|| invalid_client(50_027, "JWT token is invalid or malformed.".into()))?;
        let alg = jwt.alg();
        if alg != "RS256" {
            return Err(invalid_client(
                5_002_738,
                format!("Invalid JWT token. '{alg}' is not a supported signature algorithm."),
            ));
        }
        let iss = jwt.claim("iss").unwrap_or_default().to_owned();
        if !iss.eq_ignore_ascii_case(client_id) {
            return self.check_federated(app, &jwt, &iss, now);
        }
        // A certificate credential.
        let thumbprint = jwt.thumbprint();
        let key_not_found = |shown: &str| {
            invalid_client(
                700_027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', {}]",
                    graph_hint(client_id)
                ),
            )
        };
        let Some(thumbprint) = thumbprint else {
            return Err(key_not_found(""));
        };
        let cert = app
            .certificates
            .iter()
            .find(|c| thumbprint.names(c))
            .ok_or_else(|| key_not_found(&thumbprint.hex()))?;
        let (key, start, end) = rsa_key_and_validity(cert).unwrap_or_default();
        if key.is_empty() || !jwt.verify_rs256(&key) {
            return Err(invalid_client(
                700_027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - Key was found, but use of the key to verify the signature failed., Thumbprint of key used by client: '{}', Found key 'Start={}, End={}', {}]",
                    thumbprint.hex(),
                    us_timestamp(start),
                    us_timestamp(end),
                    graph_hint(client_id)
                ),
            ));
        }
        if !jwt
            .claim("sub")
            .is_some_and(|s| s.eq_ignore_ascii_case(client_id))
        {
            return Err(invalid_client(
                700_021,
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .".into(),
            ));
        }
        let audiences = tr.assertion_audiences();
        if !audiences.iter().any(|a| jwt.has_audience(a)) {
            return Err(invalid_client(
                50_013,
                format!(
                    "Assertion audience claim does not match the required value. The audience in the assertion was '{}' and the expected audience is '{}'.",
                    jwt.audience_text(),
                    audiences[0]
                ),
            ));
        }
        check_lifetime(&jwt, now)
    }

    fn check_federated(
        &self,
        app: &ClientSpec,
        jwt: &Jwt,
        iss: &str,
        now: u64,
    ) -> Result<(), EntraFailure> {
        const DOCS: &str =
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";
        let feds: Vec<_> = app.federations.iter().filter(|f| f.issuer == iss).collect();
        if feds.is_empty() {
            return Err(invalid_client(
                700_211,
                format!(
                    "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {DOCS}"
                ),
            ));
        }
        let trusted = lock(&self.trusted);
        let Some(issuer) = trusted.iter().find(|t| t.url() == iss) else {
            return Err(bad_request(
                90_061,
                "Request to External OIDC endpoint failed.".into(),
            ));
        };
        if !issuer.signed(jwt) {
            return Err(invalid_client(
                700_027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not found in the keys published by issuer '{iss}'.]"
                ),
            ));
        }
        drop(trusted);
        check_lifetime(jwt, now)?;
        let sub = jwt.claim("sub").unwrap_or_default();
        let by_subject: Vec<_> = feds.iter().filter(|f| f.subject == sub).collect();
        if by_subject.is_empty() {
            return Err(bad_request(
                70_021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. {DOCS}",
                    jwt.audience_text()
                ),
            ));
        }
        if !by_subject.iter().any(|f| jwt.has_audience(&f.audience)) {
            return Err(invalid_client(
                700_212,
                format!(
                    "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {DOCS}",
                    jwt.audience_text()
                ),
            ));
        }
        Ok(())
    }

    fn password_grant(
        &self,
        tr: &TokenRequest<'_>,
        dir: &Directory,
        app: &ClientSpec,
        resource: &str,
        now: u64,
    ) -> Result<Grant, EntraFailure> {
        self.authenticate_client(tr, app, now, !app.public_client)?;
        let username = tr.param("username").ok_or_else(|| missing("username"))?;
        let password = tr.param("password").ok_or_else(|| missing("password"))?;
        let invalid_grant = |code: u32, message: String| {
            EntraFailure::new(StatusCode::BAD_REQUEST, "invalid_grant", code, message)
        };
        let user = dir.users.get(&username.to_ascii_lowercase()).ok_or_else(|| {
            invalid_grant(
                50_034,
                format!("The user account {{EUII Hidden}} does not exist in the {} directory. To sign into this application, the account must be added to the directory.", tr.tenant),
            )
        })?;
        if user.password.0 != password {
            return Err(invalid_grant(
                50_126,
                "Error validating credentials due to invalid username or password.".into(),
            ));
        }
        let audience = resource.trim_end_matches('/');
        let mut claims = self
            .issuer
            .claims_for(&app.principal, &tr.cloud, audience, self.lifetime);
        claims.oid = user.object_id.clone();
        claims.sub = user.object_id.clone();
        claims.tid = user.tenant_id.clone();
        claims.iss = tr.cloud.token_issuer(&user.tenant_id);
        claims.idtyp = "user".into();
        Ok(Grant {
            principal_oid: user.object_id.clone(),
            claims,
            resource: resource.to_owned(),
        })
    }

    fn success(
        &self,
        tr: &TokenRequest<'_>,
        grant: Grant,
        now: u64,
        correlation: Option<&str>,
    ) -> Reply {
        let token = self.issuer.mint(&grant.claims);
        let expires_in = grant.claims.exp.saturating_sub(now);
        let body = match tr.version {
            Version::V2 => json!({
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": token.as_str(),
            }),
            Version::V1 => json!({
                "token_type": "Bearer",
                "expires_in": expires_in.to_string(),
                "ext_expires_in": expires_in.to_string(),
                "expires_on": grant.claims.exp.to_string(),
                "not_before": grant.claims.nbf.to_string(),
                "resource": grant.resource,
                "access_token": token.as_str(),
            }),
        };
        let correlation = correlation.map(str::to_owned).unwrap_or_else(random_guid);
        headers(
            Reply::json(StatusCode::OK, &body, Outcome::Anonymous),
            &random_guid(),
            &correlation,
        )
        .by(Some(grant.principal_oid))
    }
}

fn check_lifetime(jwt: &Jwt, now: u64) -> Result<(), EntraFailure> {
    let exp = jwt.seconds("exp").unwrap_or_default();
    let nbf = jwt.seconds("nbf").unwrap_or_default();
    if exp <= now || nbf > now + SKEW {
        return Err(not_within_time_range(now, nbf, exp));
    }
    Ok(())
}
