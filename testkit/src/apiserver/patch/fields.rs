//! Field sets (`FieldsV1`) and the typed walks server-side apply needs over objects: the set
//! of fields an apply configuration names, the comparison of two objects, the merge of a
//! configuration into a live object, and the removal of fields.
//!
//! A set is a tree of path elements: `f:<field>`, `k:<keys as JSON>` for items of keyed
//! lists, `v:<value as JSON>` for items of sets. A node is a *member* when the path to it is
//! in the set; FieldsV1 writes a member leaf as `{}` and a member with children as `".": {}`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::schema::{Kind, ListType};

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    member: bool,
    children: BTreeMap<String, Fields>,
}

/// Fields the server manages itself, never owned by anyone.
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "selfLink",
    "generation",
    "managedFields",
    "resourceVersion",
    "clusterName",
];

impl Fields {
    fn leaf() -> Fields {
        Fields {
            member: true,
            children: BTreeMap::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(Fields::is_empty)
    }

    /// Reads FieldsV1 JSON.
    pub(crate) fn from_v1(v1: &Value) -> Fields {
        let mut out = Fields::default();
        if let Value::Object(map) = v1 {
            for (k, child) in map {
                if k == "." {
                    out.member = true;
                    continue;
                }
                let mut node = Fields::from_v1(child);
                if child.as_object().is_some_and(Map::is_empty) {
                    node.member = true;
                }
                out.children.insert(k.clone(), node);
            }
        }
        out
    }

    /// Writes FieldsV1 JSON.
    pub(crate) fn to_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (k, child) in &self.children {
            if !child.is_empty() {
                map.insert(k.clone(), child.to_v1());
            }
        }
        Value::Object(map)
    }

    fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(crate) fn union(&self, other: &Fields) -> Fields {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, child) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub(crate) fn difference(&self, other: &Fields) -> Fields {
        let mut out = Fields {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, child) in &self.children {
            let left = match other.children.get(k) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !left.is_empty() {
                out.children.insert(k.clone(), left);
            }
        }
        out
    }

    pub(crate) fn intersection(&self, other: &Fields) -> Fields {
        let mut out = Fields {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, child) in &self.children {
            if let Some(theirs) = other.children.get(k) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(k.clone(), both);
                }
            }
        }
        out
    }

    /// Every member path, in order.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, child) in &self.children {
            prefix.push(k.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Drops the fields the server manages itself (`apiVersion`, `kind`, `metadata.name`, …).
    pub(crate) fn strip_server_fields(mut self) -> Fields {
        self.children.remove("f:apiVersion");
        self.children.remove("f:kind");
        if let Some(meta) = self.children.get_mut("f:metadata") {
            meta.member = false;
            for f in STRIPPED_METADATA {
                meta.children.remove(&format!("f:{f}"));
            }
        }
        self.children.retain(|_, c| !c.is_empty());
        self
    }
}

/// A path as the real server prints it in conflicts: `.data.password`,
/// `.spec.containers[name="app"].image`, `.metadata.finalizers[="a"]`.
pub(crate) fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for pe in path {
        if let Some(name) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(keys) = pe.strip_prefix("k:") {
            let parsed: Option<Map<String, Value>> = serde_json::from_str(keys).ok();
            let inner: Vec<String> = parsed
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push('[');
            out.push_str(&inner.join(","));
            out.push(']');
        } else if let Some(value) = pe.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else if let Some(index) = pe.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        }
    }
    out
}

/// How a value at a given place combines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// An object whose fields are owned one by one.
    Map,
    /// A list of objects identified by key fields.
    Keyed(&'static [&'static str]),
    /// A list of scalars identified by value.
    Set,
    /// A scalar, an atomic list or an atomic map: owned and replaced as a whole.
    Leaf,
}

/// The typed walks for one kind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walker {
    pub(crate) schema: Kind,
}

impl Walker {
    fn shape(&self, names: &[String], value: &Value) -> Shape {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match value {
            Value::Object(_) if !self.schema.map_is_atomic(&names) => Shape::Map,
            Value::Array(_) => match self.schema.list_type(&names) {
                ListType::Map { ssa_keys, .. } => Shape::Keyed(ssa_keys),
                ListType::Set => Shape::Set,
                ListType::Atomic => Shape::Leaf,
            },
            _ => Shape::Leaf,
        }
    }

    /// The path element of each item of a keyed list or set.
    fn item_elements(shape: Shape, items: &[Value]) -> Vec<String> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match shape {
                Shape::Keyed(keys) => {
                    let picked: Map<String, Value> = keys
                        .iter()
                        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                        .collect();
                    if picked.is_empty() {
                        format!("i:{i}")
                    } else {
                        format!("k:{}", Value::Object(picked))
                    }
                }
                _ => format!("v:{item}"),
            })
            .collect()
    }

    /// The fields an apply configuration names (`ToFieldSet`): leaves, list items and set
    /// values; maps only through their fields.
    pub(crate) fn fields_of(&self, value: &Value) -> Fields {
        self.fields_of_node(&mut Vec::new(), value)
            .strip_server_fields()
    }

    fn fields_of_node(&self, names: &mut Vec<String>, value: &Value) -> Fields {
        let mut out = Fields::default();
        match (self.shape(names, value), value) {
            (Shape::Map, Value::Object(map)) => out = self.fields_of_map(names, map),
            (shape @ (Shape::Keyed(_) | Shape::Set), Value::Array(items)) => {
                for (pe, item) in Self::item_elements(shape, items).into_iter().zip(items) {
                    let mut child = if shape == Shape::Set {
                        Fields::default()
                    } else {
                        self.fields_of_item(names, item)
                    };
                    child.member = true;
                    out.children.insert(pe, child);
                }
            }
            _ => out.member = true,
        }
        out
    }

    /// The fields of a map's non-null members, `names` being the map's path.
    fn fields_of_map(&self, names: &mut Vec<String>, map: &Map<String, Value>) -> Fields {
        let mut out = Fields::default();
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            names.push(k.clone());
            let child = self.fields_of_node(names, v);
            names.pop();
            if !child.is_empty() {
                out.children.insert(format!("f:{k}"), child);
            }
        }
        out
    }

    fn fields_of_item(&self, names: &mut Vec<String>, item: &Value) -> Fields {
        match item {
            // Items of keyed lists are maps whatever the schema says about the list path.
            Value::Object(map) => self.fields_of_map(names, map),
            _ => Fields::leaf(),
        }
    }

    /// Compares two versions of an object: what was added, removed and modified. New maps and
    /// list items are added as a whole (`"."`) with everything under them.
    pub(crate) fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut cmp = Comparison::default();
        self.compare_node(
            &mut Vec::new(),
            &mut Vec::new(),
            Some(old),
            Some(new),
            &mut cmp,
        );
        Comparison {
            added: cmp.added.strip_server_fields(),
            removed: cmp.removed.strip_server_fields(),
            modified: cmp.modified.strip_server_fields(),
        }
    }

    fn compare_node(
        &self,
        names: &mut Vec<String>,
        pes: &mut Vec<String>,
        old: Option<&Value>,
        new: Option<&Value>,
        cmp: &mut Comparison,
    ) {
        let old = old.filter(|v| !v.is_null());
        let new = new.filter(|v| !v.is_null());
        let (old, new) = match (old, new) {
            (None, None) => return,
            (None, Some(new)) => return self.mark_all(names, pes, new, &mut cmp.added),
            (Some(old), None) => return self.mark_all(names, pes, old, &mut cmp.removed),
            (Some(old), Some(new)) => (old, new),
        };
        let shape = self.shape(names, new);
        if shape != self.shape(names, old) || shape == Shape::Leaf {
            if old != new {
                cmp.modified.insert(pes);
            }
            return;
        }
        match (old, new) {
            (Value::Object(o), Value::Object(n)) => self.compare_maps(names, pes, o, n, cmp),
            (Value::Array(o), Value::Array(n)) => {
                let o_pes = Self::item_elements(shape, o);
                let n_pes = Self::item_elements(shape, n);
                for (pe, item) in o_pes.iter().zip(o) {
                    if !n_pes.contains(pe) {
                        pes.push(pe.clone());
                        self.mark_item(names, pes, shape, item, &mut cmp.removed);
                        pes.pop();
                    }
                }
                for (pe, item) in n_pes.iter().zip(n) {
                    pes.push(pe.clone());
                    match o_pes.iter().position(|p| p == pe) {
                        None => self.mark_item(names, pes, shape, item, &mut cmp.added),
                        Some(i) if shape != Shape::Set => {
                            self.compare_item(names, pes, &o[i], item, cmp);
                        }
                        Some(_) => {}
                    }
                    pes.pop();
                }
            }
            _ => {}
        }
    }

    /// Compares two maps member by member (members of either).
    fn compare_maps(
        &self,
        names: &mut Vec<String>,
        pes: &mut Vec<String>,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        cmp: &mut Comparison,
    ) {
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for k in keys {
            names.push(k.clone());
            pes.push(format!("f:{k}"));
            self.compare_node(names, pes, old.get(k), new.get(k), cmp);
            pes.pop();
            names.pop();
        }
    }

    fn compare_item(
        &self,
        names: &mut Vec<String>,
        pes: &mut Vec<String>,
        old: &Value,
        new: &Value,
        cmp: &mut Comparison,
    ) {
        match (old, new) {
            (Value::Object(o), Value::Object(n)) => self.compare_maps(names, pes, o, n, cmp),
            (old, new) if old != new => cmp.modified.insert(pes),
            _ => {}
        }
    }

    fn mark_item(
        &self,
        names: &mut Vec<String>,
        pes: &[String],
        shape: Shape,
        item: &Value,
        set: &mut Fields,
    ) {
        set.insert(pes);
        if shape != Shape::Set
            && let Value::Object(map) = item
        {
            let mut pes = pes.to_vec();
            for (k, v) in map {
                names.push(k.clone());
                pes.push(format!("f:{k}"));
                self.mark_all(names, &mut pes, v, set);
                pes.pop();
                names.pop();
            }
        }
    }

    /// Adds `value` and everything under it to `set`. The top-level structs of built-in kinds
    /// always exist in the real server's empty object, so they are never members themselves.
    fn mark_all(
        &self,
        names: &mut Vec<String>,
        pes: &mut Vec<String>,
        value: &Value,
        set: &mut Fields,
    ) {
        if value.is_null() {
            return;
        }
        let always_there = match names.as_slice() {
            [only] => {
                only == "metadata"
                    || (self.schema.is_builtin() && (only == "spec" || only == "status"))
            }
            [] => true,
            _ => false,
        };
        let shape = self.shape(names, value);
        if !always_there || shape == Shape::Leaf {
            set.insert(pes);
        }
        match (shape, value) {
            (Shape::Map, Value::Object(map)) => {
                for (k, v) in map {
                    names.push(k.clone());
                    pes.push(format!("f:{k}"));
                    self.mark_all(names, pes, v, set);
                    pes.pop();
                    names.pop();
                }
            }
            (shape @ (Shape::Keyed(_) | Shape::Set), Value::Array(items)) => {
                for (pe, item) in Self::item_elements(shape, items).into_iter().zip(items) {
                    pes.push(pe);
                    self.mark_item(names, pes, shape, item, set);
                    pes.pop();
                }
            }
            _ => {}
        }
    }

    /// Merges an apply configuration into the live object: maps field by field, keyed lists
    /// and sets item by item (configuration order, live-only items kept in place), everything
    /// else replaced.
    pub(crate) fn merge(&self, live: Option<&Value>, config: &Value) -> Value {
        self.merge_node(&mut Vec::new(), live, config)
    }

    fn merge_node(&self, names: &mut Vec<String>, live: Option<&Value>, config: &Value) -> Value {
        let shape = self.shape(names, config);
        match (shape, live, config) {
            (Shape::Map, Some(Value::Object(live)), Value::Object(config)) => {
                let mut out = live.clone();
                for (k, v) in config {
                    names.push(k.clone());
                    let merged = self.merge_node(names, live.get(k), v);
                    names.pop();
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            (Shape::Keyed(_) | Shape::Set, Some(Value::Array(live)), Value::Array(config)) => {
                Value::Array(self.merge_list(names, shape, live, config))
            }
            _ => config.clone(),
        }
    }

    fn merge_item(
        &self,
        names: &mut Vec<String>,
        shape: Shape,
        live: Option<&Value>,
        config: &Value,
    ) -> Value {
        match (shape, live, config) {
            (Shape::Keyed(_), Some(Value::Object(live)), Value::Object(config)) => {
                let mut out = live.clone();
                for (k, v) in config {
                    names.push(k.clone());
                    let merged = self.merge_node(names, live.get(k), v);
                    names.pop();
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            _ => config.clone(),
        }
    }

    /// structured-merge-diff's list merge: shared items follow the configuration's order,
    /// live-only items stay where they were.
    fn merge_list(
        &self,
        names: &mut Vec<String>,
        shape: Shape,
        lhs: &[Value],
        rhs: &[Value],
    ) -> Vec<Value> {
        let lhs_pes = Self::item_elements(shape, lhs);
        let rhs_pes = Self::item_elements(shape, rhs);
        let in_lhs = |pe: &String| lhs_pes.iter().position(|p| p == pe);
        let in_rhs = |pe: &String| rhs_pes.contains(pe);
        let mut shared: VecDeque<&String> =
            rhs_pes.iter().filter(|pe| in_lhs(pe).is_some()).collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: BTreeSet<&String> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len() + rhs.len());
        let (mut li, mut ri) = (0, 0);
        while li < lhs.len() || ri < rhs.len() {
            if li < lhs.len() && ri < rhs.len() {
                let pe = &lhs_pes[li];
                if *pe == rhs_pes[ri] {
                    merged_rhs.insert(pe);
                    out.push(self.merge_item(names, shape, Some(&lhs[li]), &rhs[ri]));
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if in_rhs(pe) && next_shared.is_some_and(|s| s != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lhs.len() {
                let pe = &lhs_pes[li];
                if !in_rhs(pe) {
                    out.push(lhs[li].clone());
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                    continue;
                }
            }
            if ri < rhs.len() {
                let pe = &rhs_pes[ri];
                merged_rhs.insert(pe);
                let live = in_lhs(pe).map(|i| &lhs[i]);
                out.push(self.merge_item(names, shape, live, &rhs[ri]));
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        out
    }

    /// Removes the member paths of `fields` from `value`; maps and lists left empty by the
    /// removal go too (the typed objects omit them).
    pub(crate) fn remove(&self, value: &mut Value, fields: &Fields) {
        self.remove_node(&mut Vec::new(), value, fields);
    }

    fn remove_node(&self, names: &mut Vec<String>, value: &mut Value, fields: &Fields) {
        let shape = self.shape(names, value);
        match value {
            Value::Object(map) if shape == Shape::Map || names.is_empty() => {
                Self::remove_from_map(self, names, map, fields);
            }
            Value::Array(items) if matches!(shape, Shape::Keyed(_) | Shape::Set) => {
                let pes = Self::item_elements(shape, items);
                let mut kept = Vec::with_capacity(items.len());
                for (pe, mut item) in pes.into_iter().zip(std::mem::take(items)) {
                    match fields.children.get(&pe) {
                        Some(f) if f.member => {}
                        Some(f) => {
                            if let Value::Object(map) = &mut item {
                                Self::remove_from_map(self, names, map, f);
                            }
                            kept.push(item);
                        }
                        None => kept.push(item),
                    }
                }
                *items = kept;
            }
            _ => {}
        }
    }

    fn remove_from_map(
        &self,
        names: &mut Vec<String>,
        map: &mut Map<String, Value>,
        fields: &Fields,
    ) {
        for (pe, f) in &fields.children {
            let Some(k) = pe.strip_prefix("f:") else {
                continue;
            };
            if f.member {
                map.remove(k);
                continue;
            }
            let Some(child) = map.get_mut(k) else {
                continue;
            };
            let was_empty = is_empty_container(child);
            names.push(k.to_owned());
            self.remove_node(names, child, f);
            names.pop();
            if !was_empty && is_empty_container(child) {
                map.remove(k);
            }
        }
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: Fields,
    pub(crate) removed: Fields,
    pub(crate) modified: Fields,
}

#[cfg(test)]
mod tests;
