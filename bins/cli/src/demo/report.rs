//! What the demo shows after its steps, read from the API server and the fakes' request logs
//! (which hold methods, paths, outcomes and user agents; never tokens or values).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use serde_json::Value;
use testkit::faults::{Outcome, RequestRecord};

use crate::controller::USER_AGENT;
use crate::fakes::Cluster;
use crate::show;

/// Request-log positions (lengths) of the three fakes at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mark {
    kv: usize,
    entra: usize,
    api: usize,
    /// Authorized (billable) Key Vault requests so far.
    pub kv_authorized: usize,
}

impl Mark {
    /// The positions now.
    pub fn of(c: &Cluster) -> Self {
        Self {
            kv: c.azure.kv.log().counts().total,
            entra: c.azure.entra.log().counts().total,
            api: c.api.log().counts().total,
            kv_authorized: c.azure.kv.log().counts().authorized,
        }
    }
}

fn between(records: Vec<RequestRecord>, from: usize, to: usize) -> Vec<RequestRecord> {
    records
        .into_iter()
        .skip(from)
        .take(to.saturating_sub(from))
        .collect()
}

/// Authorized Key Vault requests by object (`secrets/db-password`), from log position `from`.
pub fn kv_reads_by_object(c: &Cluster, from: usize) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in c.azure.kv.log().records().into_iter().skip(from) {
        if r.outcome != Outcome::Authorized {
            continue;
        }
        let mut segments = r.path.split('/').filter(|s| !s.is_empty());
        if let (Some(kind), Some(name)) = (segments.next(), segments.next()) {
            *by.entry(format!("{kind}/{}", name.to_ascii_lowercase()))
                .or_insert(0) += 1;
        }
    }
    by
}

/// Waits (on the request log, no polling) until every object in `objects` has been read more
/// often than in `base`.
pub async fn wait_kv_reads(
    c: &Cluster,
    objects: &BTreeSet<String>,
    base: &BTreeMap<String, usize>,
) {
    loop {
        let now = kv_reads_by_object(c, 0);
        let done = objects
            .iter()
            .all(|o| now.get(o).copied().unwrap_or(0) > base.get(o).copied().unwrap_or(0));
        if done {
            return;
        }
        let seen = c.azure.kv.log().counts().total;
        c.azure.kv.log().wait_for(seen + 1).await;
    }
}

/// The controller's write requests (POST, PUT, PATCH, DELETE) between two marks.
pub fn controller_writes(c: &Cluster, from: Mark, to: Mark) -> Vec<RequestRecord> {
    between(c.api.log().records(), from.api, to.api)
        .into_iter()
        .filter(|r| {
            matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                && r.user_agent.as_deref() == Some(USER_AGENT)
        })
        .collect()
}

/// The resource of an API path: `secrets`, `azurekeyvaultsecrets/status`, `events`…
fn resource(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if segments.len() > i + 2 => &segments[i + 2..],
        _ => match segments.first() {
            Some(&"api") => segments.get(2..).unwrap_or_default(),
            _ => segments.get(3..).unwrap_or_default(),
        },
    };
    match rest {
        [plural, _, sub, ..] => format!("{plural}/{sub}"),
        [plural, ..] => (*plural).to_owned(),
        [] => path.to_owned(),
    }
}

/// `3 PATCH secrets, 1 POST events`, counted by method and resource.
pub fn by_resource(records: &[RequestRecord]) -> String {
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records {
        *by.entry((resource(&r.path), r.method.clone())).or_default() += 1;
    }
    if by.is_empty() {
        return "none".into();
    }
    by.iter()
        .map(|((res, method), n)| format!("{n} {method} {res}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every Secret and ConfigMap the controller manages, as JSON, sorted by kind and name.
///
/// # Errors
///
/// The API server cannot be listed.
pub async fn outputs(c: &Cluster) -> anyhow::Result<Vec<Value>> {
    let lp = ListParams::default().labels(&format!(
        "{}={}",
        k8s_sync::render::MANAGED_LABEL,
        k8s_sync::render::MANAGED_VALUE
    ));
    let mut out = Vec::new();
    for s in Api::<Secret>::all(c.client.clone()).list(&lp).await? {
        let mut v = serde_json::to_value(s)?;
        v["kind"] = "Secret".into();
        out.push(v);
    }
    for m in Api::<ConfigMap>::all(c.client.clone()).list(&lp).await? {
        let mut v = serde_json::to_value(m)?;
        v["kind"] = "ConfigMap".into();
        out.push(v);
    }
    out.sort_by_key(|v| {
        (
            v["kind"].as_str().map(str::to_owned),
            v["metadata"]["namespace"].as_str().map(str::to_owned),
            v["metadata"]["name"].as_str().map(str::to_owned),
        )
    });
    Ok(out)
}

/// Every AKVS with its `Ready` condition, object version and outputs, as a table.
///
/// # Errors
///
/// The API server cannot be listed.
pub async fn akvs_table(c: &Cluster) -> anyhow::Result<String> {
    let list = Api::<AzureKeyVaultSecret>::all(c.client.clone())
        .list(&ListParams::default())
        .await?;
    let mut rows = vec![[
        "NAMESPACE/NAME".to_owned(),
        "VAULT OBJECT".to_owned(),
        "READY".to_owned(),
        "REASON".to_owned(),
        "VERSION".to_owned(),
        "OUTPUTS".to_owned(),
    ]];
    let mut messages = Vec::new();
    for a in &list {
        let status = a.status.clone().unwrap_or_default();
        let ready = status.ready();
        let outputs = [
            status
                .secret_name
                .as_ref()
                .filter(|n| !n.is_empty())
                .map(|n| format!("Secret {n}")),
            status
                .config_map_name
                .as_ref()
                .filter(|n| !n.is_empty())
                .map(|n| format!("ConfigMap {n}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let name = format!("{}/{}", a.namespace().unwrap_or_default(), a.name_any());
        rows.push([
            name.clone(),
            format!(
                "{}/{} ({})",
                a.spec.vault.name,
                a.spec.vault.object.name,
                a.spec.vault.object.type_.as_str()
            ),
            ready.map_or("-".into(), |c| c.status.to_string()),
            ready.map_or("-".into(), |c| c.reason.clone()),
            status
                .object_version
                .as_deref()
                .map_or("-".into(), |v| super::short_version(v).to_owned()),
            outputs,
        ]);
        if let Some(c) = ready.filter(|c| !c.is_ready() && !c.message.is_empty()) {
            messages.push(format!("  {name}: {}", c.message));
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        out.push_str("  ");
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    }
    if !messages.is_empty() {
        out.push_str("  Not ready:\n");
        for m in messages {
            out.push_str(&format!("  {m}\n"));
        }
    }
    Ok(out)
}

/// Key Vault, Entra and controller API calls per phase, then Key Vault reads by object.
pub fn calls(c: &Cluster, phases: &[(&'static str, Mark)]) -> String {
    let end = Mark::of(c);
    let (kv, api) = (c.azure.kv.log().records(), c.api.log().records());
    let mut out = String::new();
    let bounds = phases
        .iter()
        .enumerate()
        .map(|(i, (name, from))| (*name, *from, phases.get(i + 1).map_or(end, |p| p.1)));
    for (name, from, to) in bounds {
        let kv_phase = between(kv.clone(), from.kv, to.kv);
        let authorized = kv_phase
            .iter()
            .filter(|r| r.outcome == Outcome::Authorized)
            .count();
        let challenges = kv_phase
            .iter()
            .filter(|r| r.outcome == Outcome::Challenge)
            .count();
        let tokens = to.entra.saturating_sub(from.entra);
        let api_phase: Vec<RequestRecord> = between(api.clone(), from.api, to.api)
            .into_iter()
            .filter(|r| r.user_agent.as_deref() == Some(USER_AGENT))
            .collect();
        let writes: Vec<RequestRecord> = api_phase
            .iter()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .cloned()
            .collect();
        out.push_str(&format!(
            "  {name}:\n    Key Vault: {} (billable), {}; Entra ID: {}\n    \
             API server, by the controller: {}; writes: {}\n",
            show::count(authorized, "authorized request"),
            show::count(challenges, "challenge"),
            show::count(tokens, "token request"),
            show::count(api_phase.len(), "request"),
            by_resource(&writes)
        ));
    }
    let by_object = kv_reads_by_object(c, 0);
    out.push_str(&format!(
        "  Key Vault reads by object, whole run: {}\n",
        by_object
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_from_paths() {
        assert_eq!(resource("/api/v1/namespaces/n/secrets/s"), "secrets");
        assert_eq!(
            resource("/apis/spv.no/v2beta1/namespaces/n/azurekeyvaultsecrets/a/status"),
            "azurekeyvaultsecrets/status"
        );
        assert_eq!(
            resource("/apis/events.k8s.io/v1/namespaces/n/events"),
            "events"
        );
        assert_eq!(resource("/api/v1/namespaces/n"), "namespaces");
        assert_eq!(
            resource("/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
            "customresourcedefinitions"
        );
    }
}
