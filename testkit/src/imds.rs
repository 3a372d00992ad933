//! The IMDS managed identity endpoint fake, plain HTTP like the real
//! `http://169.254.169.254/metadata/identity/oauth2/token`, and aad-pod-identity's NMI in front
//! of it.
//!
//! Clients that hard-code the IMDS address reach the fake through a redirecting transport (see
//! `testkit/tests/it/support.rs`); clients with a configurable endpoint are given
//! [`ImdsFake::endpoint`].
//!
//! **IMDS mode** ([`ImdsMode::Vm`]): `GET /metadata/identity/oauth2/token?api-version=…&resource=…`
//! with `Metadata: true`, for the VM's system-assigned identity or a user-assigned one chosen by
//! `client_id`, `object_id` or `msi_res_id`. The success body carries every number as a string
//! (`expires_in`, `expires_on`, `ext_expires_in`, `not_before`), as IMDS formats it. Errors are
//! IMDS's JSON: 400 `Required metadata header not specified`, `Required query variable
//! 'resource' is missing`, `Identity not found`, 400 `invalid_resource` (`AADSTS500011`) for an
//! unknown resource.
//!
//! **NMI mode** ([`ImdsMode::Nmi`], aad-pod-identity 1.8 "standard" mode): the caller is
//! identified by its peer IP (tests bind `127.0.0.x` with reqwest's `local_address`; every
//! `127.0.0.0/8` address reaches the fake's `127.0.0.1` listener on Linux). A pod registered
//! with [`PodSpec`] and identities gets, from its first request on the testkit clock and for
//! [`NmiOptions::assignment_delay`], NMI's answer while MIC assigns the identity (404
//! `text/plain`: `getting assigned identities for pod <ns>/<name> in CREATED state failed after
//! 16 attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity assignment
//! errors`, or 503 + `Retry-After: 20` as with NMI's `--set-retry-after-header`, or any
//! configured status), then tokens in NMI's body shape. A pod without identities (no
//! `AzureIdentityBinding`) gets that error forever ([`NmiOptions::unbound_status`]: 404 as NMI
//! 1.8 sends, 403 as NMI ≤ 1.6 did). An IP that is no pod gets NMI's 500. Unlike NMI, the fake
//! answers at once instead of holding the request for up to 80 s while it retries; add a
//! latency fault to model that.
//!
//! Transient 429/500/503 come from [`crate::faults`], with IMDS's (or NMI's) bodies.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::imds::{IdentitySpec, ImdsFake};
//! use testkit::token::Principal;
//!
//! testkit::install_crypto_provider();
//! let imds = ImdsFake::start(Default::default()).await?;
//! let vm = Principal::new("vm");
//! imds.assign(IdentitySpec::system(&vm));
//! let body: serde_json::Value = reqwest::Client::new()
//!     .get(format!("{}?api-version=2018-02-01&resource=https://vault.azure.net", imds.endpoint()))
//!     .header("Metadata", "true")
//!     .send().await?.json().await?;
//! assert_eq!(body["client_id"], vm.app_id.as_str());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use serde_json::json;

use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::faults::{Faults, Outcome, RequestLog, lock};
use crate::server::{Endpoint, FakeRequest, Reply, Service, issuer_or_new};
use crate::token::{IssuerKeyError, Principal, TokenIssuer};

/// The path of the token endpoint.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// Lifetime of managed identity tokens unless [`ImdsOptions::token_lifetime`] says otherwise
/// (IMDS hands out tokens valid for about 24 hours).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_399);

/// Errors starting the IMDS fake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImdsError {
    /// The token issuer's key is broken.
    #[error("the token issuer could not be made")]
    Issuer(#[source] IssuerKeyError),
    /// Binding the listener failed.
    #[error("binding the listener failed")]
    Bind(#[source] std::io::Error),
}

/// What answers on the IMDS address.
#[derive(Clone, Debug, Default)]
pub enum ImdsMode {
    /// The VM's IMDS: identities assigned to the VM, any caller.
    #[default]
    Vm,
    /// aad-pod-identity's NMI intercepting IMDS: identities per pod, found by peer IP.
    Nmi(NmiOptions),
}

/// NMI behaviour.
#[derive(Clone, Debug)]
pub struct NmiOptions {
    /// How long after a pod's first token request MIC takes to assign its identity (default
    /// 40 s, within the 10–60 s seen on VMs and VMSS).
    pub assignment_delay: Duration,
    /// Status while the identity is being assigned: 404 (NMI's default) or 503 (answered with
    /// `Retry-After: 20`, as NMI's `--set-retry-after-header` does), or any other.
    pub pending_status: u16,
    /// Status for a pod that no identity is ever bound to: 404 (NMI 1.8) or 403 (NMI ≤ 1.6).
    pub unbound_status: u16,
}

impl Default for NmiOptions {
    fn default() -> Self {
        Self {
            assignment_delay: Duration::from_secs(40),
            pending_status: 404,
            unbound_status: 404,
        }
    }
}

/// How to start an [`ImdsFake`].
#[derive(Clone, Debug, Default)]
pub struct ImdsOptions {
    /// Clock for token lifetimes and NMI windows (default: system clock).
    pub clock: Option<Clock>,
    /// Token issuer shared with the Key Vault fake (default: a new one on `clock`).
    pub issuer: Option<Arc<TokenIssuer>>,
    /// The cloud whose token issuer (`iss`) the tokens name (default: public).
    pub cloud: Option<Cloud>,
    /// IMDS or NMI (default IMDS).
    pub mode: ImdsMode,
    /// Lifetime of issued tokens (default [`DEFAULT_TOKEN_LIFETIME`]).
    pub token_lifetime: Option<Duration>,
}

/// System- or user-assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityKind {
    /// The VM's own identity.
    SystemAssigned,
    /// A user-assigned identity resource.
    UserAssigned,
}

/// A managed identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentitySpec {
    /// The service principal behind it (client id = `app_id`, object id = `object_id`).
    pub principal: Principal,
    /// System or user assigned.
    pub kind: IdentityKind,
    /// ARM resource id (what `msi_res_id` names).
    pub resource_id: String,
}

impl IdentitySpec {
    /// The VM's system-assigned identity.
    pub fn system(principal: &Principal) -> Self {
        Self {
            principal: principal.clone(),
            kind: IdentityKind::SystemAssigned,
            resource_id: format!(
                "/subscriptions/{}/resourceGroups/testkit/providers/Microsoft.Compute/virtualMachines/{}",
                crate::token::derived_guid("subscription", "testkit"),
                principal.name
            ),
        }
    }

    /// A user-assigned identity named after the principal.
    pub fn user_assigned(principal: &Principal) -> Self {
        Self {
            principal: principal.clone(),
            kind: IdentityKind::UserAssigned,
            resource_id: format!(
                "/subscriptions/{}/resourcegroups/testkit/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                crate::token::derived_guid("subscription", "testkit"),
                principal.name
            ),
        }
    }

    /// With another ARM resource id.
    #[must_use]
    pub fn resource_id(mut self, id: &str) -> Self {
        self.resource_id = id.to_owned();
        self
    }
}

/// A pod as NMI sees it: namespace, name, IP and the identities bound to it.
#[derive(Clone, Debug)]
pub struct PodSpec {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Pod IP (the peer address of its requests).
    pub ip: IpAddr,
    /// Identities bound by `AzureIdentityBinding`s (empty: never bound).
    pub identities: Vec<IdentitySpec>,
    /// Overrides [`NmiOptions::assignment_delay`] for this pod.
    pub assignment_delay: Option<Duration>,
}

impl PodSpec {
    /// Pod `namespace/name` at `ip` with no identity bound yet.
    pub fn new(namespace: &str, name: &str, ip: IpAddr) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ip,
            identities: Vec::new(),
            assignment_delay: None,
        }
    }

    /// Binds an identity (a user-assigned identity, as aad-pod-identity uses).
    #[must_use]
    pub fn identity(mut self, identity: IdentitySpec) -> Self {
        self.identities.push(identity);
        self
    }

    /// Another assignment delay for this pod.
    #[must_use]
    pub fn assignment_delay(mut self, d: Duration) -> Self {
        self.assignment_delay = Some(d);
        self
    }
}

struct PodState {
    spec: PodSpec,
    first_request: Option<u64>,
}

struct ImdsService {
    issuer: Arc<TokenIssuer>,
    cloud: Cloud,
    mode: ImdsMode,
    lifetime: Duration,
    clock: Clock,
    vm_identities: Mutex<Vec<IdentitySpec>>,
    pods: Mutex<BTreeMap<IpAddr, PodState>>,
    resources: Mutex<Vec<String>>,
}

/// A running IMDS (or NMI) fake. Dropping it stops the server.
pub struct ImdsFake {
    service: Arc<ImdsService>,
    endpoint: Endpoint<()>,
}

impl fmt::Debug for ImdsFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsFake")
            .field("addr", &self.addr())
            .field("mode", &self.service.mode)
            .finish_non_exhaustive()
    }
}

impl ImdsFake {
    /// Starts the fake on an ephemeral loopback port (plain HTTP).
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound or the token issuer cannot be made.
    pub async fn start(opts: ImdsOptions) -> Result<Self, ImdsError> {
        let clock = opts.clock.unwrap_or_default();
        let issuer = issuer_or_new(opts.issuer, &clock).map_err(ImdsError::Issuer)?;
        let service = Arc::new(ImdsService {
            issuer,
            cloud: opts.cloud.unwrap_or(Cloud::PUBLIC),
            mode: opts.mode,
            lifetime: opts.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME),
            clock: clock.clone(),
            vm_identities: Mutex::new(Vec::new()),
            pods: Mutex::new(BTreeMap::new()),
            resources: Mutex::new(
                Cloud::ALL
                    .iter()
                    .map(|c| c.vault_audience.to_owned())
                    .collect(),
            ),
        });
        let endpoint = Endpoint::plain(service.clone(), clock)
            .await
            .map_err(ImdsError::Bind)?;
        Ok(Self { service, endpoint })
    }

    /// The loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// The token endpoint URL (`http://127.0.0.1:<port>/metadata/identity/oauth2/token`), for
    /// clients with a configurable IMDS endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr())
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        self.endpoint.clock()
    }

    /// IMDS or NMI, as started.
    pub fn mode(&self) -> &ImdsMode {
        &self.service.mode
    }

    /// The token issuer.
    pub fn issuer(&self) -> &Arc<TokenIssuer> {
        &self.service.issuer
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// Every request answered; issued tokens carry the identity's object id as principal.
    pub fn log(&self) -> &RequestLog {
        self.endpoint.log()
    }

    /// Assigns an identity to the VM (IMDS mode).
    pub fn assign(&self, identity: IdentitySpec) {
        lock(&self.service.vm_identities).push(identity);
    }

    /// Removes every identity of `principal` from the VM.
    pub fn unassign(&self, principal: &Principal) {
        lock(&self.service.vm_identities).retain(|i| i.principal != *principal);
    }

    /// Registers (or replaces) a pod (NMI mode). Its assignment window starts at its first
    /// token request.
    pub fn add_pod(&self, pod: PodSpec) {
        lock(&self.service.pods).insert(
            pod.ip,
            PodState {
                spec: pod,
                first_request: None,
            },
        );
    }

    /// Makes `resource` known (every cloud's Key Vault audience is known from the start).
    pub fn add_resource(&self, resource: &str) {
        lock(&self.service.resources).push(resource.trim_end_matches('/').to_owned());
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(&self) {
        self.endpoint.shutdown();
    }
}

fn imds_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": error, "error_description": description }),
        Outcome::BadRequest,
    )
    .with_header(HeaderName::from_static("server"), "IMDS/150.870.65.1854")
}

/// NMI writes errors with Go's `http.Error`: text, a newline, `nosniff`.
fn nmi_error(status: StatusCode, text: &str) -> Reply {
    let mut r = Reply::json(status, &json!(null), Outcome::Anonymous);
    r.headers.clear();
    r.body = format!("{text}\n").into();
    r.with_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .with_header(HeaderName::from_static("x-content-type-options"), "nosniff")
}

/// NMI's `utils.RedactClientID`: the first and last four characters survive.
fn redact(client_id: &str) -> String {
    let chars: Vec<char> = client_id.chars().collect();
    if chars.len() < 8 {
        return client_id.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}##### REDACTED #####{tail}")
}

/// The identity selector of a request.
enum Selector<'a> {
    Default,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

impl Selector<'_> {
    fn matches(&self, id: &IdentitySpec) -> bool {
        match self {
            Selector::Default => id.kind == IdentityKind::SystemAssigned,
            Selector::ClientId(c) => id.principal.app_id.eq_ignore_ascii_case(c),
            Selector::ObjectId(o) => id.principal.object_id.eq_ignore_ascii_case(o),
            Selector::ResourceId(r) => id.resource_id.eq_ignore_ascii_case(r),
        }
    }
}

impl Service for ImdsService {
    fn handle(&self, req: &FakeRequest) -> Reply {
        // IMDS matches "/metadata" case-insensitively.
        if !req.path.eq_ignore_ascii_case(TOKEN_PATH)
            && !req.path.eq_ignore_ascii_case(&format!("{TOKEN_PATH}/"))
        {
            return imds_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "The requested resource was not found.",
            );
        }
        if req.method != Method::GET && req.method != Method::POST {
            return imds_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "The requested method is not allowed.",
            );
        }
        if !req
            .header("metadata")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required metadata header not specified",
            );
        }
        let param = |n: &str| req.query_param(n).filter(|v| !v.is_empty());
        let nmi = match &self.mode {
            ImdsMode::Vm => None,
            ImdsMode::Nmi(o) => Some(o),
        };
        if nmi.is_none() && param("api-version").is_none() {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required query variable 'api-version' is missing",
            );
        }
        let Some(resource) = param("resource") else {
            return match nmi {
                Some(_) => nmi_error(
                    StatusCode::BAD_REQUEST,
                    "parameter resource cannot be empty",
                ),
                None => imds_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required query variable 'resource' is missing",
                ),
            };
        };
        let selectors: Vec<Selector<'_>> = [
            param("client_id").map(Selector::ClientId),
            param("object_id")
                .or_else(|| param("principal_id"))
                .map(Selector::ObjectId),
            param("msi_res_id")
                .or_else(|| param("mi_res_id"))
                .map(Selector::ResourceId),
        ]
        .into_iter()
        .flatten()
        .collect();
        let selector = match selectors.len() {
            0 => Selector::Default,
            1 => selectors.into_iter().next().unwrap_or(Selector::Default),
            _ => {
                return imds_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Only one of client_id, object_id or msi_res_id may be specified",
                );
            }
        };
        let identity = match nmi {
            None => self.vm_identity(&selector),
            Some(o) => self.pod_identity(req, o, &selector),
        };
        let identity = match identity {
            Ok(i) => i,
            Err(r) => return r,
        };
        if !lock(&self.resources)
            .iter()
            .any(|r| r == resource.trim_end_matches('/'))
        {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                &format!(
                    "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                    identity.principal.tenant_id
                ),
            );
        }
        self.token(&identity, resource, nmi.is_some())
    }

    fn fault_reply(&self, _req: &FakeRequest, status: u16, retry_after: Option<u64>) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = match (&self.mode, status.as_u16()) {
            (ImdsMode::Nmi(_), _) => nmi_error(
                status,
                "failed to get service principal token, error: adal: Refresh request failed. Status Code = '500'.",
            ),
            (ImdsMode::Vm, 429) => imds_error(
                status,
                "too_many_requests",
                "Too many requests. The IMDS rate limit is 20 requests per second.",
            ),
            (ImdsMode::Vm, _) => imds_error(
                status,
                "unknown",
                "Failed to retrieve token from the Active directory. For details see logs in C:\\User1\\Logs\\IMDS.log",
            ),
        };
        r.outcome = Outcome::Faulted;
        match retry_after {
            Some(s) => r.with_header(http::header::RETRY_AFTER, &s.to_string()),
            None => r,
        }
    }
}

impl ImdsService {
    fn vm_identity(&self, selector: &Selector<'_>) -> Result<IdentitySpec, Reply> {
        let ids = lock(&self.vm_identities);
        if let Some(found) = ids.iter().find(|i| selector.matches(i)) {
            return Ok(found.clone());
        }
        if matches!(selector, Selector::Default) {
            // No system identity: IMDS uses the only user-assigned one, if there is one.
            let users: Vec<_> = ids
                .iter()
                .filter(|i| i.kind == IdentityKind::UserAssigned)
                .collect();
            match users.as_slice() {
                [only] => return Ok((*only).clone()),
                [_, _, ..] => {
                    return Err(imds_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
                    ));
                }
                [] => {}
            }
        }
        Err(imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        ))
    }

    fn pod_identity(
        &self,
        req: &FakeRequest,
        opts: &NmiOptions,
        selector: &Selector<'_>,
    ) -> Result<IdentitySpec, Reply> {
        let now = self.clock.unix_seconds();
        let ip = req.peer.ip();
        let mut pods = lock(&self.pods);
        let Some(pod) = pods.get_mut(&ip) else {
            return Err(nmi_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("match failed, ip:{ip} matching pods:[]"),
            ));
        };
        let first = *pod.first_request.get_or_insert(now);
        let spec = &pod.spec;
        let (ns, name) = (&spec.namespace, &spec.name);
        let created_failed = format!(
            "getting assigned identities for pod {ns}/{name} in CREATED state failed after 16 attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity assignment errors"
        );
        if spec.identities.is_empty() {
            let status = StatusCode::from_u16(opts.unbound_status).unwrap_or(StatusCode::NOT_FOUND);
            return Err(nmi_error(status, &created_failed));
        }
        let delay = spec.assignment_delay.unwrap_or(opts.assignment_delay);
        if now < first + delay.as_secs() {
            let status = StatusCode::from_u16(opts.pending_status).unwrap_or(StatusCode::NOT_FOUND);
            let r = nmi_error(status, &created_failed);
            return Err(if status == StatusCode::SERVICE_UNAVAILABLE {
                r.with_header(http::header::RETRY_AFTER, "20")
            } else {
                r
            });
        }
        let found = match selector {
            Selector::Default => spec.identities.first(),
            // Without a selector NMI takes the first identity bound to the pod.
            other => spec.identities.iter().find(|i| other.matches(i)),
        };
        found.cloned().ok_or_else(|| {
            let client_id = req.query_param("client_id").unwrap_or_default();
            nmi_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no azure identity found for request clientID {}",
                    redact(client_id)
                ),
            )
        })
    }

    fn token(&self, identity: &IdentitySpec, resource: &str, nmi: bool) -> Reply {
        let audience = resource.trim_end_matches('/');
        let claims =
            self.issuer
                .claims_for(&identity.principal, &self.cloud, audience, self.lifetime);
        let token = self.issuer.mint(&claims);
        let expires_in = self.lifetime.as_secs().to_string();
        let body = if nmi {
            // NMI re-marshals adal's token: no client_id or ext_expires_in, an empty refresh token.
            json!({
                "access_token": token.as_str(),
                "refresh_token": "",
                "expires_in": expires_in,
                "expires_on": claims.exp.to_string(),
                "not_before": claims.nbf.to_string(),
                "resource": resource,
                "token_type": "Bearer",
            })
        } else {
            json!({
                "access_token": token.as_str(),
                "client_id": identity.principal.app_id,
                "expires_in": expires_in,
                "expires_on": claims.exp.to_string(),
                "ext_expires_in": expires_in,
                "not_before": claims.nbf.to_string(),
                "resource": resource,
                "token_type": "Bearer",
            })
        };
        Reply::json(StatusCode::OK, &body, Outcome::Anonymous)
            .by(Some(identity.principal.object_id.clone()))
    }
}

#[cfg(test)]
mod tests;
