//! The status after a round ([`next_status`]) and its write, only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource as _, ResourceExt as _};
use serde_json::{Value, json};
use tracing::debug;

use crate::context::Context;
use crate::crd::v2beta1::{AzureKeyVaultSecret, AzureKeyVaultSecretStatus};
use crate::crd::{Condition, ConditionStatus, READY, ReadyReason};
use crate::error::{Error, Result};
use crate::render::{self, OutputKind};

/// Outcome of one output this round.
#[derive(Debug)]
pub(super) struct Written {
    pub(super) kind: OutputKind,
    pub(super) name: String,
    pub(super) hash: String,
}

/// Now, at the API server's precision for `Time` (whole seconds), so a status read back
/// compares equal to the one written.
fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// The status after this round. Fields of outputs not handled successfully keep their last
/// good values; the `Ready` condition keeps its transition time while its status holds.
pub(super) fn next_status(
    akvs: &AzureKeyVaultSecret,
    old: &AzureKeyVaultSecretStatus,
    written: &[Written],
    wrote: bool,
    version: Option<&str>,
    ready: (ReadyReason, String),
) -> AzureKeyVaultSecretStatus {
    let outputs = render::outputs(&akvs.spec);
    let generation = akvs.meta().generation;
    let mut s = old.clone();
    s.observed_generation = generation;
    let has = |k| outputs.iter().any(|o| o.kind == k);
    if !has(OutputKind::Secret) {
        s.secret_name = Some(String::new());
        s.secret_hash = Some(String::new());
    }
    if !has(OutputKind::ConfigMap) {
        s.config_map_name = None;
        s.config_map_hash = None;
    }
    for w in written {
        match w.kind {
            OutputKind::Secret => {
                s.secret_name = Some(w.name.clone());
                s.secret_hash = Some(w.hash.clone());
            }
            OutputKind::ConfigMap => {
                s.config_map_name = Some(w.name.clone());
                s.config_map_hash = Some(w.hash.clone());
            }
        }
    }
    if outputs.is_empty() {
        s.object_version = None;
    } else if !written.is_empty()
        && let Some(v) = version
    {
        s.object_version = Some(v.to_owned());
    }
    if wrote || (!written.is_empty() && s.last_azure_update.is_none()) {
        s.last_azure_update = Some(now());
    }
    let (reason, message) = ready;
    let mut cond = Condition::ready(reason, message, now(), generation);
    if let Some(prev) = old.ready()
        && prev.status == cond.status
    {
        cond.last_transition_time = prev.last_transition_time.clone();
    }
    s.conditions.retain(|c| c.type_ != READY);
    s.conditions.push(cond);
    s
}

pub(super) fn changed_condition(
    old: &AzureKeyVaultSecretStatus,
    new: &AzureKeyVaultSecretStatus,
) -> bool {
    let key = |s: &AzureKeyVaultSecretStatus| {
        s.ready()
            .map(|c| (c.status, c.reason.clone(), c.message.clone()))
    };
    key(old) != key(new)
}

pub(super) async fn write_status(
    akvs: &AzureKeyVaultSecret,
    ctx: &Context,
    old: &AzureKeyVaultSecretStatus,
    new: AzureKeyVaultSecretStatus,
) -> Result<()> {
    let ns = akvs.namespace().unwrap_or_default();
    let name = akvs.name_any();
    let uid = akvs.uid().unwrap_or_default();
    let written = ctx.written_status(&ns, &name, &uid).is_some();
    if (akvs.status.is_some() || written) && *old == new {
        return Ok(());
    }
    let mut value = serde_json::to_value(&new).unwrap_or(Value::Null);
    if let Some(o) = value.as_object_mut() {
        for field in [
            "configMapHash",
            "configMapName",
            "objectVersion",
            "lastAzureUpdate",
        ] {
            o.entry(field).or_insert(Value::Null);
        }
    }
    let api: Api<AzureKeyVaultSecret> = Api::namespaced(ctx.client.clone(), &ns);
    ctx.metrics.write("status");
    let ready = new.ready().map(|c| c.status == ConditionStatus::True);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": value})),
    )
    .await
    .map_err(|source| Error::PatchStatus {
        namespace: ns.clone(),
        name: name.clone(),
        source,
    })?;
    ctx.wrote_status(&ns, &name, &uid, &new);
    debug!(namespace = %ns, name = %name, ?ready, "status updated");
    Ok(())
}
