//! Adapters from the patch and field-management logic ([`super::patch`]) to API errors.

use serde_json::Value;

use super::patch;
use super::status::ApiError;

/// JSON merge patch.
pub fn merge_patch(target: &mut Value, p: &Value) {
    patch::merge_patch(target, p);
}

/// JSON patch; failures are 422 like the real server's.
pub fn json_patch(target: &mut Value, p: &Value) -> Result<(), ApiError> {
    patch::json_patch(target, p).map_err(|e| ApiError {
        code: e.status_code(),
        reason: if e.status_code() == 400 {
            "BadRequest"
        } else {
            "Invalid"
        },
        message: format!("the server rejected our request due to an error in our request: {e}"),
        details: None,
    })
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge_patch(
    target: &mut Value,
    p: &Value,
    api_version: &str,
    kind: &str,
) -> Result<(), ApiError> {
    patch::strategic_merge_patch(target, p, api_version, kind).map_err(|e| {
        ApiError::bad_request(format!("unable to apply the strategic merge patch: {e}"))
    })
}

/// Server-side apply: the new object, or 409 with `FieldManagerConflict` causes.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    patch::apply(live, applied, manager, force, now)
        .map_err(|e| ApiError::from_status_body(patch::conflict_status(&e)))
}

/// Ownership bookkeeping for create/update/patch writes.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    _status: bool,
) {
    patch::record_update(old, new, manager, now);
}
