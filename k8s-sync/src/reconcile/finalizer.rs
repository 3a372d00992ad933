//! The finalizer [`FINALIZER`]: added before the first output is written, removed once every
//! output is released, so deleting an AKVS never leaves its keys behind.

use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::context::Context;
use crate::crd::v2beta1::AzureKeyVaultSecret;
use crate::error::{Error, Result};
use crate::render::FINALIZER;

pub(super) fn has_finalizer(akvs: &AzureKeyVaultSecret) -> bool {
    akvs.finalizers().iter().any(|f| f == FINALIZER)
}

pub(super) async fn patch_finalizers(
    akvs: &AzureKeyVaultSecret,
    ctx: &Context,
    add: bool,
) -> Result<()> {
    let ns = akvs.namespace().unwrap_or_default();
    let name = akvs.name_any();
    let mut list: Vec<String> = akvs
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if add {
        list.push(FINALIZER.to_owned());
    }
    let api: Api<AzureKeyVaultSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({"metadata": {
        "finalizers": list,
        "resourceVersion": akvs.resource_version(),
    }});
    ctx.metrics.write("finalizer");
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: nothing left to finalize.
        Err(kube::Error::Api(s)) if s.code == 404 && !add => Ok(()),
        Err(source) => Err(Error::PatchFinalizers {
            namespace: ns,
            name,
            source,
        }),
    }
}
