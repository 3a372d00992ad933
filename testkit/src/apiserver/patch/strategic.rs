//! Strategic merge patch, the apply half of `k8s.io/apimachinery/pkg/util/strategicpatch`
//! with the options the API server uses (`MergeParallelList`, `IgnoreUnmatchedNulls`).
//!
//! The order rules are the real ones and are surprising: after a merge, the items the patch
//! mentions keep the patch's (or `$setElementOrder`'s) order, the items only the server had
//! keep theirs, and the two are interleaved by the server's order, so an item the server did
//! not have goes *before* the remaining server-only items.

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{Kind, ListType};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

type Result<T, E = PatchError> = std::result::Result<T, E>;

/// Applies a strategic merge patch (`application/strategic-merge-patch+json`) to an object of
/// a built-in kind, using the merge keys and strategies of its Go type.
///
/// On error `target` is unchanged.
///
/// # Errors
///
/// [`PatchError::Unsupported`] for kinds without a Go type (custom resources: the real server
/// answers 415), and [`PatchError::InvalidStrategicPatch`] for a malformed patch: not an
/// object, a merge-list item without its merge key, an unknown `$patch` directive (including
/// `$patch: merge`, which the real server rejects too), a field missing from `$retainKeys`, a
/// `$setElementOrder` list that contradicts the patch, lists of lists or of mixed types.
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<()> {
    let schema = Kind::of(api_version, kind);
    if !schema.is_builtin() {
        return Err(PatchError::Unsupported {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
    }
    let Value::Object(patch) = patch else {
        return Err(invalid("the patch is not a JSON object".to_owned()));
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let merged = Merger { schema }.merge_map(original, patch.clone(), &mut Vec::new())?;
    *target = Value::Object(merged);
    Ok(())
}

fn invalid(reason: String) -> PatchError {
    PatchError::InvalidStrategicPatch { reason }
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    invalid(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}

struct Merger {
    schema: Kind,
}

/// The JSON type of a value, as Go's `reflect.TypeOf` sees decoded JSON (all numbers alike).
fn json_type(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Go's `==` on decoded JSON scalars: numbers compare as float64.
fn scalar_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (a, b) => a == b,
    }
}

fn key_of<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.as_object().and_then(|m| m.get(key))
}

fn is_delete_item(item: &Value) -> bool {
    key_of(item, DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

impl Merger {
    fn list_strategy(&self, path: &[String]) -> (bool, &'static str) {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.schema.list_type(&path) {
            ListType::Map { smp_key, .. } => (true, smp_key),
            ListType::Set => (true, ""),
            ListType::Atomic => (false, ""),
        }
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    Ok(patch)
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(invalid(format!(
                    "unknown patch type: {directive} in map: {}",
                    Value::Object(patch.clone())
                ))),
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_set_element_order(&mut original, &mut patch, path)?;

        for (patch_key, patch_value) in patch {
            let (key, is_delete_list) = match patch_key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                Some(rest) => match rest.strip_prefix('/') {
                    Some(key) => (key.to_owned(), true),
                    None => {
                        return Err(invalid(
                            "invalid patch format of $deleteFromPrimitiveList".to_owned(),
                        ));
                    }
                },
                None => (patch_key, false),
            };
            if patch_value.is_null() {
                original.remove(&key);
                continue;
            }
            let Some(current) = original.get(&key) else {
                if !is_delete_list {
                    take_patch_value(&mut original, key, patch_value);
                }
                continue;
            };
            if json_type(current) != json_type(&patch_value) {
                if !is_delete_list {
                    take_patch_value(&mut original, key, patch_value);
                }
                continue;
            }
            let current = original.remove(&key).unwrap_or(Value::Null);
            path.push(key.clone());
            let merged = match (current, patch_value) {
                (Value::Object(current), Value::Object(patch_value)) => self
                    .merge_map(current, patch_value, path)
                    .map(Value::Object),
                (Value::Array(current), Value::Array(patch_value)) => self
                    .merge_list(current, patch_value, path, is_delete_list)
                    .map(Value::Array),
                (_, patch_value) => Ok(remove_directives(patch_value).unwrap_or(Value::Null)),
            };
            path.pop();
            original.insert(key, merged?);
        }
        Ok(original)
    }

    /// `mergeSliceHandler`: lists with patch strategy `merge` merge, all others are replaced
    /// by the patch as sent.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &[String],
        is_delete_list: bool,
    ) -> Result<Vec<Value>> {
        let (merge, merge_key) = self.list_strategy(path);
        if !merge {
            return Ok(patch);
        }
        self.merge_slice(original, patch, merge_key, path, is_delete_list)
    }

    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
        path: &[String],
        is_delete_list: bool,
    ) -> Result<Vec<Value>> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let is_map =
            slice_element_type(&original, &patch)? == json_type(&Value::Object(Map::new()));
        if !is_map {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|d| scalar_eq(Some(v), Some(d))))
                    .collect());
            }
            let mut both = original.clone();
            both.extend(patch.iter().cloned());
            let merged = deduplicate_scalars(both);
            let (patch_items, server_only) = partition_primitives(merged, &patch);
            return normalize_element_order(patch_items, server_only, &patch, &original, "", false);
        }
        if merge_key.is_empty() {
            return Err(invalid(format!(
                "cannot merge lists without merge key for {}",
                path.join(".")
            )));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            self.merge_slice_without_special_elements(original.clone(), &patch, merge_key, path)?;
        let (patch_items, server_only) = partition_maps(merged, &patch, merge_key)?;
        normalize_element_order(patch_items, server_only, &patch, &original, merge_key, true)
    }

    fn merge_slice_without_special_elements(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        merge_key: &str,
        path: &[String],
    ) -> Result<Vec<Value>> {
        for item in patch {
            let Some(value) = key_of(item, merge_key) else {
                return Err(no_merge_key(item, merge_key));
            };
            match find_by_key(&original, merge_key, value)? {
                Some(i) => {
                    let current = match std::mem::take(&mut original[i]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    let patch_item = item.as_object().cloned().unwrap_or_default();
                    let mut path = path.to_vec();
                    original[i] = Value::Object(self.merge_map(current, patch_item, &mut path)?);
                }
                None => original.push(item.clone()),
            }
        }
        Ok(original)
    }

    /// `mergePatchIntoOriginal`: merges each list that has a `$setElementOrder/<list>`
    /// directive and orders it by the directive.
    fn merge_set_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in keys {
            let order = match patch.remove(&directive) {
                Some(Value::Array(order)) => order,
                _ => {
                    return Err(invalid(
                        "invalid patch format of $setElementOrder list".to_owned(),
                    ));
                }
            };
            let Some(list_key) = directive
                .strip_prefix(SET_ELEMENT_ORDER)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(str::to_owned)
            else {
                return Err(invalid(
                    "invalid patch format of $setElementOrder list".to_owned(),
                ));
            };
            let original_list = match original.get(&list_key) {
                None => None,
                Some(Value::Array(list)) => Some(list.clone()),
                Some(other) => {
                    return Err(invalid(format!(
                        "expected a list at {list_key}, got {other}"
                    )));
                }
            };
            let patch_list = match patch.get(&list_key) {
                None => None,
                Some(Value::Array(list)) => Some(list.clone()),
                Some(other) => {
                    return Err(invalid(format!(
                        "expected a list at {list_key}, got {other}"
                    )));
                }
            };
            path.push(list_key.clone());
            let (_, merge_key) = self.list_strategy(path);
            let result = (|| {
                validate_patch_with_set_order_list(
                    patch_list.as_deref().unwrap_or_default(),
                    &order,
                    merge_key,
                )?;
                let merged = match (&original_list, &patch_list) {
                    (Some(original_list), None) => original_list.clone(),
                    (None, Some(patch_list)) => {
                        match remove_directives(Value::Array(patch_list.clone())) {
                            Some(Value::Array(list)) => list,
                            _ => Vec::new(),
                        }
                    }
                    (Some(original_list), Some(patch_list)) => {
                        self.merge_list(original_list.clone(), patch_list.clone(), path, false)?
                    }
                    (None, None) => return Ok(None),
                };
                let (patch_items, server_only) = if merge_key.is_empty() {
                    partition_primitives(merged, &order)
                } else {
                    partition_maps(merged, &order, merge_key)?
                };
                let server_order = original_list.clone().unwrap_or_default();
                let is_map =
                    slice_element_type(&server_order, patch_list.as_deref().unwrap_or_default())?
                        == json_type(&Value::Object(Map::new()));
                normalize_element_order(
                    patch_items,
                    server_only,
                    &order,
                    &server_order,
                    merge_key,
                    is_map,
                )
                .map(Some)
            })();
            path.pop();
            if let Some(list) = result? {
                original.insert(list_key.clone(), Value::Array(list));
                patch.remove(&list_key);
            }
        }
        Ok(())
    }
}

/// A key the original does not have (or has with another type): take the patch value without
/// its `null`s and without items carrying a `$patch` directive.
fn take_patch_value(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(value) => {
            original.insert(key, value);
        }
        None => {
            original.remove(&key);
        }
    }
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops every object carrying a `$patch` directive; `None` when `value` itself carries one.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || invalid("invalid patch format of retainKeys".to_owned());
    let Value::Array(retain) = retain else {
        return Err(bad());
    };
    let retained = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(bad());
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

fn slice_element_type(a: &[Value], b: &[Value]) -> Result<u8> {
    let mut seen = None;
    for v in a.iter().chain(b) {
        let t = json_type(v);
        match seen {
            None if t == json_type(&Value::Array(Vec::new())) => {
                return Err(invalid("lists of lists are not supported".to_owned()));
            }
            None => seen = Some(t),
            Some(prev) if prev != t => {
                return Err(invalid("list element types are not identical".to_owned()));
            }
            Some(_) => {}
        }
    }
    seen.ok_or_else(|| invalid("no elements in any of the given slices".to_owned()))
}

/// Go's in-place `deduplicateScalars` (it moves the last element into each duplicate's slot;
/// the order is normalised afterwards).
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut length = s.len().saturating_sub(1);
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if scalar_eq(Some(&s[i]), Some(&s[j])) {
                s[j] = s[length].clone();
                s.truncate(length);
                length -= 1;
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(invalid(format!("value for key {i} is not a map")));
        };
        if map
            .get(key)
            .is_some_and(|v| scalar_eq(Some(v), Some(value)))
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Some(directive) = key_of(&item, DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(value) = key_of(&item, merge_key) else {
                    return Err(no_merge_key(&item, merge_key));
                };
                while let Some(i) = find_by_key(&original, merge_key, value)? {
                    original.remove(i);
                }
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(invalid(
                    "merging lists cannot yet be specified in the patch".to_owned(),
                ));
            }
            _ => {
                return Err(invalid(format!(
                    "unknown patch type: {directive} in map: {item}"
                )));
            }
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| by.iter().any(|b| scalar_eq(Some(v), Some(b))))
}

fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let Some(value) = key_of(&item, merge_key) else {
            return Err(no_merge_key(&item, merge_key));
        };
        if find_by_key(by, merge_key, value)?.is_some() {
            in_patch.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((in_patch, server_only))
}

fn validate_patch_with_set_order_list(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut kept = Vec::new();
        for item in patch {
            if !item.is_object() {
                return Err(invalid(format!(
                    "expected a map in the patch list, got {item}"
                )));
            }
            if !is_delete_item(item) {
                kept.push(item);
            }
        }
        kept
    };
    let (mut p, mut o) = (0, 0);
    while p < non_delete.len() && o < order.len() {
        if key_of(non_delete[p], DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        let equal = if merge_key.is_empty() {
            scalar_eq(Some(non_delete[p]), Some(&order[o]))
        } else {
            let left = key_of(non_delete[p], merge_key)
                .ok_or_else(|| no_merge_key(non_delete[p], merge_key))?;
            let right =
                key_of(&order[o], merge_key).ok_or_else(|| no_merge_key(&order[o], merge_key))?;
            scalar_eq(Some(left), Some(right))
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < non_delete.len() && o >= order.len() {
        return Err(invalid(format!(
            "the order in patch list {} doesn't match $setElementOrder list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

/// The position of `item` in `list`, comparing merge-key values for maps and values otherwise.
fn index(list: &[Value], item: &Value, merge_key: &str, is_map: bool) -> Option<usize> {
    let val = |v: &'_ Value| -> Option<Value> {
        if is_map {
            key_of(v, merge_key).cloned()
        } else {
            Some(v.clone())
        }
    };
    let wanted = val(item);
    list.iter()
        .position(|v| scalar_eq(val(v).as_ref(), wanted.as_ref()))
}

/// `normalizeSliceOrder`: a stable sort of `to_sort` by position in `order` (items to delete
/// last), with Go's comparator, which calls an item missing from `order` "less".
fn normalize_slice_order(
    mut to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let mut to_delete = Vec::new();
    if is_map {
        for item in to_sort.iter().chain(order) {
            if key_of(item, merge_key).is_none() {
                return Err(no_merge_key(item, merge_key));
            }
        }
        let (deletes, keep): (Vec<Value>, Vec<Value>) =
            to_sort.into_iter().partition(is_delete_item);
        to_sort = keep;
        to_delete = deletes;
    }
    let less = |a: &Value, b: &Value| match (
        index(order, a, merge_key, is_map),
        index(order, b, merge_key, is_map),
    ) {
        (Some(ia), Some(ib)) => ia < ib,
        _ => true,
    };
    // Insertion sort, as Go's sort.SliceStable does for short slices.
    for i in 1..to_sort.len() {
        let mut j = i;
        while j > 0 && less(&to_sort[j], &to_sort[j - 1]) {
            to_sort.swap(j, j - 1);
            j -= 1;
        }
    }
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, is_map)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, is_map)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        is_map,
    ))
}

/// `mergeSortedSlice`: interleaves server-only items (`left`) into patch items (`right`) by
/// the server's order; an item the server did not have wins every comparison.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index(server_order, l, merge_key, is_map), index(server_order, r, merge_key, is_map)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests;
