//! The four ways a Kubernetes object is patched, and field ownership (`managedFields`), as pure
//! functions on objects stored as [`serde_json::Value`]. No I/O: the server calls these and
//! turns the errors into `Status` responses.
//!
//! ```text
//! PATCH body ──► merge_patch            (application/merge-patch+json, RFC 7386)
//!            ──► json_patch             (application/json-patch+json, RFC 6902, atomic)
//!            ──► strategic_merge_patch  (application/strategic-merge-patch+json, built-in kinds)
//!            ──► apply                  (application/apply-patch+yaml: server-side apply)
//!                  │ conflicts ──► conflict_status (the 409 body)
//! create/update/patch result ──► record_update (managedFields, operation "Update")
//! ```
//!
//! # Fidelity
//!
//! * Strategic merge follows `k8s.io/apimachinery/pkg/util/strategicpatch` (apply half),
//!   including its quirks: new list items are placed *before* the items the patch did not
//!   mention, new items are stored as sent, and `$patch: merge` on a map is an error. Merge keys
//!   and strategies are those of the Go types for the kinds in `schema` (Pod, Deployment and
//!   the other pod-template workloads, ServiceAccount, Service, Namespace, Secret, ConfigMap,
//!   Event, Lease, CustomResourceDefinition). Custom resources get
//!   [`PatchError::Unsupported`], as the real server answers 415. The integration tests
//!   compare the result with `kubectl patch --local --type strategic`.
//! * Server-side apply and `managedFields` follow `sigs.k8s.io/structured-merge-diff`: FieldsV1
//!   sets, conflicts against every other manager (appliers and updaters), `force` to take
//!   ownership, shared ownership of equal values, removal of fields a manager stops applying.
//!   Custom resources are treated as the real server treats a schema without list
//!   annotations: maps are granular, lists atomic.
//!
//! # Deliberately left out
//!
//! * The typed round trip the real server does after patching (dropping `null`s and unknown
//!   fields, defaulting): objects are stored as JSON, so a strategic patch that adds a new list
//!   item with `"value": null` stores that `null`, exactly as `kubectl patch --local` prints it.
//! * Conversion between API versions in `managedFields`, the 10-entry cap on `Update` managers
//!   (`ancient-changes`) and unions; `null` in an apply configuration is treated as absent.
//! * `Status` defaulting: a non-pointer Go struct that first appears in an update is marked
//!   as owned as a whole (`".": {}`) in the updater's FieldsV1, where the real server only
//!   marks maps and pointers; ownership of the leaves, and so every conflict, is the same.

use serde_json::Value;

mod fields;
mod managed;
mod schema;
mod strategic;

pub use managed::{
    ApplyError, Conflict, Operation, apply, conflict_status, record_subresource_update,
    record_update,
};
pub use strategic::strategic_merge_patch;

/// Why a merge, JSON or strategic merge patch could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The body of an `application/json-patch+json` request is not a list of operations.
    #[error("the JSON patch is not a list of RFC 6902 operations")]
    ParseJsonPatch {
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// An RFC 6902 operation failed (a `test` that did not match, a missing path, …).
    #[error("the JSON patch could not be applied; the object is unchanged")]
    ApplyJsonPatch {
        /// Which operation failed and why.
        #[source]
        source: json_patch::PatchError,
    },
    /// Strategic merge patch of a kind whose Go type we do not have (custom resources): the
    /// real server answers `415 Unsupported Media Type`. Use a merge patch or JSON patch.
    #[error(
        "strategic merge patch is not supported for {api_version}, Kind={kind}: use a JSON merge patch or a JSON patch"
    )]
    Unsupported {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The strategic merge patch is malformed (a merge list item without its merge key, an
    /// unknown `$patch` directive, a key outside `$retainKeys`, …).
    #[error("invalid strategic merge patch: {reason}")]
    InvalidStrategicPatch {
        /// What is wrong, in the words of the real server where it has some.
        reason: String,
    },
}

impl PatchError {
    /// A short, stable name for metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PatchError::ParseJsonPatch { .. } => "parse_json_patch",
            PatchError::ApplyJsonPatch { .. } => "apply_json_patch",
            PatchError::Unsupported { .. } => "unsupported_patch_type",
            PatchError::InvalidStrategicPatch { .. } => "invalid_strategic_patch",
        }
    }

    /// The HTTP status the real API server answers with: 415 for [`PatchError::Unsupported`],
    /// 400 for a body that does not parse, 422 for a patch that cannot be applied.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Unsupported { .. } => 415,
            PatchError::ParseJsonPatch { .. } => 400,
            PatchError::ApplyJsonPatch { .. } | PatchError::InvalidStrategicPatch { .. } => 422,
        }
    }
}

/// Applies an RFC 7386 JSON merge patch (`application/merge-patch+json`): objects merge key by
/// key, `null` deletes a key, anything else (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch (`application/json-patch+json`) atomically.
///
/// # Errors
///
/// [`PatchError::ParseJsonPatch`] when `patch` is not a list of operations and
/// [`PatchError::ApplyJsonPatch`] when an operation fails; in both cases `target` is unchanged.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|source| PatchError::ParseJsonPatch { source })?;
    let mut work = target.clone();
    json_patch::patch_unsafe(&mut work, &ops)
        .map_err(|source| PatchError::ApplyJsonPatch { source })?;
    *target = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_objects_deletes_nulls_and_replaces_lists() {
        let cases = [
            (
                json!({"data": {"a": "1", "b": "2"}}),
                json!({"data": {"b": null, "c": "3"}}),
                json!({"data": {"a": "1", "c": "3"}}),
            ),
            (
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["c"]}}),
                json!({"metadata": {"finalizers": ["c"]}}),
            ),
            (
                json!({"spec": {"x": {"y": 1}}}),
                json!({"spec": {"x": 2}}),
                json!({"spec": {"x": 2}}),
            ),
            (
                json!({"a": 1}),
                json!({"b": {"c": null, "d": 1}}),
                json!({"a": 1, "b": {"d": 1}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn json_patch_applies_every_operation_in_order() {
        let mut target = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"items": [1, 2]}});
        json_patch(
            &mut target,
            &json!([
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "add", "path": "/spec/items/-", "value": 3},
                {"op": "replace", "path": "/spec/items/0", "value": 0},
                {"op": "copy", "from": "/spec/items", "path": "/spec/copy"},
                {"op": "move", "from": "/spec/copy", "path": "/spec/moved"},
            ]),
        )
        .expect("patch applies");
        assert_eq!(
            target,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"items": [0, 2, 3], "moved": [0, 2, 3]}})
        );
    }

    #[test]
    fn json_patch_that_fails_midway_leaves_the_target_unchanged() {
        let original = json!({"data": {"a": "1"}});
        let mut target = original.clone();
        let err = json_patch(
            &mut target,
            &json!([
                {"op": "add", "path": "/data/b", "value": "2"},
                {"op": "test", "path": "/data/a", "value": "other"},
            ]),
        )
        .expect_err("the test operation fails");
        assert!(matches!(err, PatchError::ApplyJsonPatch { .. }));
        assert_eq!(err.status_code(), 422);
        assert_eq!(target, original);
    }

    #[test]
    fn json_patch_that_is_not_a_list_is_a_parse_error() {
        let mut target = json!({});
        let err = json_patch(&mut target, &json!({"op": "add"})).expect_err("not a list");
        assert_eq!(err.kind(), "parse_json_patch");
        assert_eq!(err.status_code(), 400);
    }
}
