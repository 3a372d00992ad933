//! One reconcile of one `AzureKeyVaultSecret`, and [`error_policy`].
//!
//! ```text
//! deleting? ── finalizer ──▶ release owned outputs (no Key Vault read) ──▶ drop finalizer
//! outputs renamed/removed ──▶ release the old ones (status.secretName / configMapName)
//! no output ──▶ Ready=True NoOutput, no polling
//! fetch (read plane) ── refresh deferred (budget spent) ──▶ nothing written, requeue at its slot
//!                    ── error ──▶ Ready=False ErrAzureVault (+Event on change), outputs kept
//! format ── error ──▶ Ready=False InvalidSpec
//! per output: classify ─ Foreign/KeyConflict ──▶ Ready=False ErrResourceExists (+Event)
//!                      ─ TypeChanged (sole owner) ──▶ delete + apply (+Warning Event)
//!                      ─ UpToDate ──▶ nothing
//!                      ─ Apply ──▶ server-side apply as <prefix>/<name> (+Synced Event)
//! status ──▶ patched only when it differs; requeue after resync period + jitter
//! ```
//!
//! Submodules: [`outputs`] (read, apply, delete and release Secrets/ConfigMaps), [`status`]
//! (the next status and its write) and [`finalizer`].
//!
//! Releasing an output: when no other AKVS owns it, it is deleted (uid precondition);
//! otherwise an apply with only its identity gives up this AKVS's keys, labels, annotations
//! and ownerReference, which the API server then removes.

mod finalizer;
mod outputs;
mod status;

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::context::{Context, Seen};
use crate::crd::ReadyReason;
use crate::crd::v2beta1::AzureKeyVaultSecret;
use crate::error::{Error, Result};
use crate::events::{Event, EventType};
use crate::metrics::{OBJECT_AKVS, OBJECT_VAULT};
use crate::preview::{ReadFailure, ReadOptions, RenderedOutput, read_outputs};
use crate::render::{self, Desired, OutputKind, Plan, classify, field_manager};

use finalizer::{has_finalizer, patch_finalizers};
use outputs::{apply, delete_output, existing, owned_in_indexes, release, release_all};
use status::{Written, changed_condition, next_status, write_status};

/// Event reason: outputs written (upstream).
pub const REASON_SYNCED: &str = "Synced";
/// Event reason: Key Vault could not be read (upstream).
pub const REASON_ERR_AZURE_VAULT: &str = "ErrAzureVault";
/// Event reason: an output exists and is not ours (upstream).
pub const REASON_ERR_RESOURCE_EXISTS: &str = "ErrResourceExists";
/// Event reason: the spec cannot be rendered.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Event reason: the Secret type changed; the Secret was recreated.
pub const REASON_SECRET_TYPE_CHANGED: &str = "SecretTypeChanged";
/// Event reason: an output could not be written.
pub const REASON_ERR_OUTPUT_WRITE: &str = "ErrOutputWrite";

/// Upstream's `Synced` message for a change from Key Vault.
pub const MESSAGE_SYNCED: &str =
    "AzureKeyVaultSecret synced to Kubernetes Secret successfully with change from Azure Key Vault";

/// Reconciles one AKVS; see the [module docs](self).
///
/// # Errors
///
/// Key Vault, rendering, ownership and API errors; [`error_policy`] decides the retry.
pub async fn reconcile(akvs: Arc<AzureKeyVaultSecret>, ctx: Arc<Context>) -> Result<Action> {
    let _queued = ctx.metrics.in_queue();
    let start = Instant::now();
    let span = info_span!(
        "reconcile",
        namespace = %akvs.namespace().unwrap_or_default(),
        name = %akvs.name_any()
    );
    let res = reconcile_inner(&akvs, &ctx).instrument(span).await;
    let result = res.as_ref().map_or_else(Error::kind, |_| "ok");
    ctx.metrics
        .reconciled(result, start.elapsed().as_secs_f64());
    if res.is_ok() {
        ctx.succeeded(&akvs.namespace().unwrap_or_default(), &akvs.name_any());
    }
    res
}

/// Retries a failed reconcile: at `Retry-After` when Key Vault sent one, with exponential
/// backoff for retryable errors (for an output owned by someone else, at most until the next
/// resync), and at the next resync for the others.
pub fn error_policy(akvs: Arc<AzureKeyVaultSecret>, err: &Error, ctx: Arc<Context>) -> Action {
    let ns = akvs.namespace().unwrap_or_default();
    let name = akvs.name_any();
    let failures = ctx.failed(&ns, &name);
    let delay = retry_delay(err, failures, &ctx);
    warn!(
        namespace = %ns,
        name = %name,
        error = err as &dyn std::error::Error,
        kind = err.kind(),
        failures,
        retry_in = ?delay,
        "sync failed"
    );
    Action::requeue(delay)
}

/// The delay before retrying after `failures` consecutive failures ending in `err`.
fn retry_delay(err: &Error, failures: u32, ctx: &Context) -> std::time::Duration {
    match err.retry_after() {
        Some(d) => d,
        // Retrying costs only an API read: no later than the next resync (as upstream), since
        // the foreign object going away triggers nothing (it is not watched).
        None if err.is_ownership_conflict() => ctx.backoff(failures).min(ctx.next_refresh()),
        None if err.is_retryable() => ctx.backoff(failures),
        None => ctx.next_refresh(),
    }
}

async fn reconcile_inner(akvs: &AzureKeyVaultSecret, ctx: &Context) -> Result<Action> {
    let ns = akvs.namespace().unwrap_or_default();
    let name = akvs.name_any();
    let Some(uid) = akvs.uid() else {
        return Ok(Action::await_change());
    };
    let manager = field_manager(&ctx.cfg.field_manager_prefix, akvs);

    if akvs.meta().deletion_timestamp.is_some() {
        if has_finalizer(akvs) {
            ctx.metrics.sync("delete", OBJECT_AKVS);
            if let Err(e) = release_all(akvs, ctx, &uid, &manager).await {
                ctx.metrics.sync_failed("delete", OBJECT_AKVS);
                return Err(e);
            }
            patch_finalizers(akvs, ctx, false).await?;
            info!(namespace = %ns, name = %name, "outputs released");
        }
        ctx.forget(&ns, &name);
        return Ok(Action::await_change());
    }

    let seen = ctx.observe(&ns, &name, &uid, akvs.meta().generation);
    match seen {
        Seen::New => ctx.metrics.sync("add", OBJECT_AKVS),
        Seen::SpecChanged => ctx.metrics.sync("update", OBJECT_AKVS),
        Seen::Poll => ctx.metrics.sync("update", OBJECT_VAULT),
    }

    let outputs = render::outputs(&akvs.spec);
    // Our last write, when the watch cache has not caught up with it yet.
    let status = ctx
        .status_base(&ns, &name, &uid, akvs.status.as_ref())
        .unwrap_or_default();

    // Outputs this AKVS wrote before under another name, or no longer asks for: the ones its
    // status names and, after a spec change (the status may lag), every one in the indexes
    // that carries its ownerReference.
    let mut previous: Vec<(OutputKind, String)> = [
        (OutputKind::Secret, status.secret_name.clone()),
        (OutputKind::ConfigMap, status.config_map_name.clone()),
    ]
    .into_iter()
    .filter_map(|(k, n)| n.filter(|n| !n.is_empty()).map(|n| (k, n)))
    .collect();
    if seen == Seen::SpecChanged {
        previous.extend(owned_in_indexes(ctx, &ns, &uid));
    }
    previous.sort();
    previous.dedup();
    for (kind, old) in previous {
        if !outputs.iter().any(|o| o.kind == kind && o.name == old) {
            release(ctx, kind, &ns, &old, &uid, &manager).await?;
        }
    }

    if outputs.is_empty() {
        let next = next_status(
            akvs,
            &status,
            &[],
            false,
            None,
            (
                ReadyReason::NoOutput,
                "no Secret or ConfigMap output requested".into(),
            ),
        );
        write_status(akvs, ctx, &status, next).await?;
        return Ok(Action::await_change());
    }

    if !has_finalizer(akvs) && !ctx.added_finalizer(&ns, &name, &uid) {
        patch_finalizers(akvs, ctx, true).await?;
        ctx.added_finalizer_now(&ns, &name, &uid);
    }

    // Read Key Vault and render every output (nothing is written before all succeed).
    let read = ReadOptions {
        vault_dns_suffix: ctx.cfg.vault_dns_suffix.clone(),
        format: ctx.cfg.format,
    };
    let rendered = match read_outputs(akvs, ctx.key_vault.as_ref(), &read).await {
        Ok(r) => r,
        Err(ReadFailure { error, .. }) if error.deferred().is_some() => {
            // The budget is spent: the outputs and status stand; come back at our slot.
            let retry_in = error.deferred().unwrap_or_default();
            debug!(namespace = %ns, name = %name, ?retry_in, "refresh deferred by the read budget");
            return Ok(Action::requeue(retry_in));
        }
        Err(ReadFailure { reason, error: err }) => {
            if reason == ReadyReason::ErrAzureVault {
                ctx.metrics.sync_failed("sync", OBJECT_VAULT);
            }
            let message = error_message(&err);
            let next = next_status(akvs, &status, &[], false, None, (reason, message.clone()));
            if changed_condition(&status, &next) {
                let event_reason = match reason {
                    ReadyReason::ErrAzureVault => REASON_ERR_AZURE_VAULT,
                    _ => REASON_INVALID_SPEC,
                };
                let note = match reason {
                    ReadyReason::ErrAzureVault => format!(
                        "Failed to get secret for '{name}' from Azure Key Vault '{}': {message}",
                        akvs.spec.vault.name
                    ),
                    _ => message,
                };
                publish(ctx, akvs, EventType::Warning, event_reason, note).await;
            }
            write_status(akvs, ctx, &status, next).await?;
            return Err(err);
        }
    };

    let mut written = Vec::new();
    let mut wrote = false;
    let mut problem: Option<(ReadyReason, &'static str, Error)> = None;
    let mut version = None;
    for RenderedOutput {
        output,
        values,
        version: ver,
    } in rendered
    {
        version = Some(ver.clone());
        let existing = existing(ctx, output.kind, &ns, &output.name).await?;
        let (labels, annotations) = render::propagated(akvs, existing.as_deref(), &manager);
        let Some(owner) = render::owner_reference(akvs) else {
            return Ok(Action::await_change());
        };
        let keys: Vec<String> = values.keys().into_iter().map(str::to_owned).collect();
        let desired = Desired {
            output: output.clone(),
            namespace: ns.clone(),
            values,
            labels,
            annotations,
            owner,
        };
        let plan = classify(
            &desired,
            existing.as_deref(),
            &uid,
            &ctx.cfg.field_manager_prefix,
            &manager,
        );
        let kind = output.kind.as_str();
        let out_ref = |e: Error| {
            (
                ReadyReason::ErrResourceExists,
                REASON_ERR_RESOURCE_EXISTS,
                e,
            )
        };
        match plan {
            Plan::Foreign => {
                problem = Some(out_ref(Error::ResourceExists {
                    kind,
                    namespace: ns.clone(),
                    name: output.name.clone(),
                }));
                continue;
            }
            Plan::KeyConflict(keys) => {
                problem = Some(out_ref(Error::KeyConflict {
                    kind,
                    namespace: ns.clone(),
                    name: output.name.clone(),
                    keys,
                }));
                continue;
            }
            Plan::TypeChanged { from, shared: true } => {
                problem = Some((
                    ReadyReason::ErrOutputWrite,
                    REASON_ERR_OUTPUT_WRITE,
                    Error::SharedSecretType {
                        namespace: ns.clone(),
                        name: output.name.clone(),
                        from,
                    },
                ));
                continue;
            }
            Plan::TypeChanged {
                from,
                shared: false,
            } => {
                let e = existing
                    .as_deref()
                    .expect("invariant: TypeChanged needs an existing object");
                delete_output(ctx, output.kind, &ns, &output.name, e).await?;
                publish(
                    ctx,
                    akvs,
                    EventType::Warning,
                    REASON_SECRET_TYPE_CHANGED,
                    format!(
                        "Secret '{}' had type {from}; the type is immutable, so it was deleted and created again as {}",
                        output.name,
                        output.secret_type.as_deref().unwrap_or_default()
                    ),
                )
                .await;
                apply(ctx, &desired, &manager).await?;
                wrote = true;
            }
            Plan::UpToDate => {}
            Plan::Apply => {
                apply(ctx, &desired, &manager).await?;
                wrote = true;
            }
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        written.push(Written {
            kind: output.kind,
            name: output.name.clone(),
            hash: render::version_hash(&akvs.spec, &ver, &output, &key_refs),
        });
    }

    if wrote {
        info!(namespace = %ns, name = %name, version = version.as_deref().unwrap_or_default(), "outputs updated");
        publish(
            ctx,
            akvs,
            EventType::Normal,
            REASON_SYNCED,
            MESSAGE_SYNCED.to_owned(),
        )
        .await;
    }
    let ready = match &problem {
        Some((reason, _, e)) => (*reason, error_message(e)),
        None => (
            ReadyReason::Synced,
            format!(
                "outputs hold Key Vault version {}",
                version.as_deref().unwrap_or_default()
            ),
        ),
    };
    let next = next_status(akvs, &status, &written, wrote, version.as_deref(), ready);
    if let Some((_, event_reason, e)) = &problem
        && changed_condition(&status, &next)
    {
        let note = match e {
            Error::ResourceExists { name, .. } => format!(
                "Resource '{name}' already exists and is not managed by AzureKeyVaultSecret"
            ),
            other => error_message(other),
        };
        publish(ctx, akvs, EventType::Warning, event_reason, note).await;
    }
    write_status(akvs, ctx, &status, next).await?;
    match problem {
        Some((_, _, e)) => Err(e),
        None => Ok(Action::requeue(ctx.next_refresh())),
    }
}

/// The error and its first cause, never values (akv-client and kube errors carry none).
/// The error and its causes (`a: b: c`), as Events and conditions show it. Our errors never
/// carry values, tokens or keys, so the whole chain is safe to show; it is capped to fit an
/// Event note (1 KiB).
fn error_message(e: &Error) -> String {
    const MAX: usize = 1000;
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let part = c.to_string();
        // Wrappers often repeat their cause's text; show each text once.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

async fn publish(
    ctx: &Context,
    akvs: &AzureKeyVaultSecret,
    type_: EventType,
    reason: &str,
    note: String,
) {
    ctx.metrics.write("event");
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note,
        action: "Sync".to_owned(),
    };
    if let Err(e) = ctx.events.publish(&ev, &akvs.object_ref(&())).await {
        warn!(
            error = &e as &dyn std::error::Error,
            reason, "cannot publish Event"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::SyncConfig;
    use std::time::Duration;

    #[tokio::test]
    async fn ownership_conflicts_are_retried_by_the_next_resync_whatever_the_backoff() {
        let ctx = crate::context::test_context(SyncConfig {
            azure_resync_period: Duration::from_secs(30),
            error_backoff_base: Duration::from_secs(60),
            error_backoff_max: Duration::from_secs(600),
            ..SyncConfig::default()
        });
        let exists = Error::ResourceExists {
            kind: "Secret",
            namespace: "ns".into(),
            name: "s".into(),
        };
        let conflict = Error::KeyConflict {
            kind: "Secret",
            namespace: "ns".into(),
            name: "s".into(),
            keys: vec!["k".into()],
        };
        let max_refresh = Duration::from_secs(33); // 30 s + 10 % jitter
        for failures in [1, 5, 20] {
            assert!(retry_delay(&exists, failures, &ctx) <= max_refresh);
            assert!(retry_delay(&conflict, failures, &ctx) <= max_refresh);
        }
        // Other retryable errors keep their exponential backoff.
        let lease = Error::LeaseTimeout {
            operation: "renew",
            namespace: "ns".into(),
            name: "l".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(retry_delay(&lease, 3, &ctx) >= Duration::from_secs(240));
    }

    #[test]
    fn error_messages_show_the_whole_cause_chain_once() {
        let cause = akv_client::Error::UnknownTransform {
            name: "rot13".into(),
        };
        let shared = akv_client::Error::Shared {
            source: std::sync::Arc::new(cause),
        };
        let e = Error::FetchObject {
            namespace: "ns".into(),
            name: "a".into(),
            vault: "v".into(),
            object: "o".into(),
            source: Box::new(shared),
        };
        let text = error_message(&e);
        assert!(text.starts_with("cannot "), "{text}");
        assert!(
            text.contains("rot13"),
            "the root cause reaches the condition: {text}"
        );
        assert_eq!(text.matches("rot13").count(), 1, "{text}");
        assert!(text.chars().count() <= 1001);
    }
}
