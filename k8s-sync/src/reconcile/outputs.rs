//! Reading, writing and releasing the Secrets and ConfigMaps an AKVS owns.
//!
//! Releasing an output: when no other AKVS owns it, it is deleted (uid precondition);
//! otherwise an apply with only its identity gives up this AKVS's keys, labels, annotations
//! and ownerReference, which the API server then removes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tracing::info;

use crate::context::Context;
use crate::crd::v2beta1::AzureKeyVaultSecret;
use crate::error::{Error, Result};
use crate::render::{self, Desired, Existing, OutputKind};

/// The existing output: from the index of managed objects, else from the API server (an
/// object without the managed label is not in the index).
pub(super) async fn existing(
    ctx: &Context,
    kind: OutputKind,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<Existing>>> {
    ctx.output_index(kind).wait_until_ready().await;
    if let Some(cached) = ctx.cached(kind, namespace, name) {
        return Ok(Some(cached));
    }
    let get_err = |source| Error::GetOutput {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    Ok(match kind {
        OutputKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(get_err)?
            .map(|s| Arc::new(Existing::from_secret(&s))),
        OutputKind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(get_err)?
            .map(|c| Arc::new(Existing::from_config_map(&c))),
    })
}

pub(super) async fn apply(ctx: &Context, desired: &Desired, manager: &str) -> Result<()> {
    let ns = &desired.namespace;
    let name = &desired.output.name;
    let body = render::apply_body(desired);
    let params = PatchParams::apply(manager).force();
    let kind = desired.output.kind.as_str();
    ctx.metrics.write(kind);
    let res = match desired.output.kind {
        OutputKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), ns)
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(drop),
        OutputKind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(drop),
    };
    res.map_err(|source| Error::ApplyOutput {
        kind: desired.output.kind,
        namespace: ns.clone(),
        name: name.clone(),
        source,
    })?;
    info!(namespace = %ns, name = %name, kind, "output applied");
    Ok(())
}

pub(super) async fn delete_output(
    ctx: &Context,
    kind: OutputKind,
    namespace: &str,
    name: &str,
    e: &Existing,
) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: e.uid.clone(),
            resource_version: e.resource_version.clone(),
        }),
        ..Default::default()
    };
    ctx.metrics.write(kind.as_str());
    let res = match kind {
        OutputKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
            .delete(name, &params)
            .await
            .map(drop),
        OutputKind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
            .delete(name, &params)
            .await
            .map(drop),
    };
    match res {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteOutput {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Gives up one output: deletes it when this AKVS is its only owner, else removes this AKVS's
/// keys, labels, annotations and ownerReference with an identity-only apply. Foreign objects
/// and objects this AKVS does not own are left alone.
pub(super) async fn release(
    ctx: &Context,
    kind: OutputKind,
    namespace: &str,
    name: &str,
    uid: &str,
    manager: &str,
) -> Result<()> {
    let Some(e) = existing(ctx, kind, namespace, name).await? else {
        return Ok(());
    };
    let ours = e.owned_by(uid) || !e.owned(manager, "data").is_empty();
    if !ours || !e.is_ours(uid) {
        return Ok(());
    }
    if e.other_owners(uid).is_empty() {
        delete_output(ctx, kind, namespace, name, &e).await?;
        info!(namespace = %namespace, name = %name, kind = kind.as_str(), "output deleted");
        return Ok(());
    }
    let body = render::release_body(kind, namespace, name, &e);
    let params = PatchParams::apply(manager).force();
    ctx.metrics.write(kind.as_str());
    let res = match kind {
        OutputKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(drop),
        OutputKind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(drop),
    };
    match res {
        Ok(()) => {
            info!(namespace = %namespace, name = %name, kind = kind.as_str(), "keys released");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::ApplyOutput {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Releases every output this AKVS owns: those in the indexes with its ownerReference, and
/// the ones its status names.
pub(super) async fn release_all(
    akvs: &AzureKeyVaultSecret,
    ctx: &Context,
    uid: &str,
    manager: &str,
) -> Result<()> {
    let ns = akvs.namespace().unwrap_or_default();
    let mut targets = owned_in_indexes(ctx, &ns, uid);
    let status = akvs.status.clone().unwrap_or_default();
    for (kind, n) in [
        (OutputKind::Secret, status.secret_name),
        (OutputKind::ConfigMap, status.config_map_name),
    ] {
        if let Some(n) = n.filter(|n| !n.is_empty()) {
            targets.push((kind, n));
        }
    }
    for o in render::outputs(&akvs.spec) {
        targets.push((o.kind, o.name));
    }
    targets.sort();
    targets.dedup();
    for (kind, n) in targets {
        release(ctx, kind, &ns, &n, uid, manager).await?;
    }
    Ok(())
}

/// Outputs in the indexes of managed objects that carry an ownerReference to `uid`.
pub(super) fn owned_in_indexes(
    ctx: &Context,
    namespace: &str,
    uid: &str,
) -> Vec<(OutputKind, String)> {
    [OutputKind::Secret, OutputKind::ConfigMap]
        .into_iter()
        .flat_map(|kind| {
            ctx.output_index(kind)
                .owned_by(namespace, uid)
                .into_iter()
                .map(move |n| (kind, n))
        })
        .collect()
}
