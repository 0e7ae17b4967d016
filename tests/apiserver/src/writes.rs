//! Write semantics: create, update, patch, apply and delete, with the metadata rules of the
//! real API server (uid, timestamps, generation, resourceVersion preconditions, finalizers,
//! the status subresource) and custom-resource schema validation.
//!
//! In: a `Target`, a request body and `WriteParams`, with the store locked. Out: the object
//! as stored (or as it would be, on dry run); every committed change reaches watches.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause, Result};
use crate::fields::{self, ManagedFields};
use crate::patch::{self, PatchKind};
use crate::path::Target;
use crate::resources::{self, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Entry, ObjectKey, Store};

/// Query parameters shared by writes.
#[derive(Debug, Clone, Default)]
pub struct WriteParams {
    /// `fieldManager`, or a default derived from the verb.
    pub manager: String,
    /// `dryRun=All`: validate and answer, but store nothing.
    pub dry_run: bool,
    /// `force=true` on apply.
    pub force: bool,
}

/// Result of a write: the object and whether it was newly created (201).
#[derive(Debug)]
pub struct Written {
    /// Object as stored.
    pub object: Value,
    /// Whether the write created the object.
    pub created: bool,
}

/// Current time in the API server's timestamp format.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Create the object in `body` at the collection `target`.
pub fn create(store: &mut Store, target: &Target, body: Value, params: &WriteParams) -> Result<Value> {
    create_owned(store, target, body, params, None)
}

fn create_owned(
    store: &mut Store,
    target: &Target,
    body: Value,
    params: &WriteParams,
    applied: Option<&Value>,
) -> Result<Value> {
    let rt = &target.resource;
    let mut object = typed_object(body, target)?;
    let meta = metadata_mut(&mut object)?;
    set_namespace(meta, target)?;
    let name = choose_name(store, meta, rt)?;
    if rt.namespaced {
        require_namespace(store, target)?;
    }
    let key = target.key_for(&name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
    }
    let meta = metadata_mut(&mut object)?;
    for field in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "resourceVersion",
        "selfLink",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".to_owned(), json!(store.next_uid()));
    meta.insert("creationTimestamp".to_owned(), json!(now()));
    meta.insert("generation".to_owned(), json!(1));
    apply_create_defaults(rt, &mut object);
    if let Some(schema) = rt.schema(&target.version) {
        schema.prune_and_default(&mut object);
        check(rt, &name, schema.validate(&object, None))?;
    }
    if is_crd(rt) {
        install_crd(store, &mut object, params.dry_run)?;
    }
    let mut managed = ManagedFields::default();
    match applied {
        Some(config) => {
            managed.record_apply(&params.manager, config, params.force);
        }
        None => managed.record_update(&params.manager, &Value::Null, &object),
    }
    if params.dry_run {
        return Ok(object);
    }
    Ok(store.commit(key, object, managed))
}

/// Replace the named object with `body` (PUT), honouring `metadata.resourceVersion`.
pub fn update(store: &mut Store, target: &Target, body: Value, params: &WriteParams) -> Result<Value> {
    let key = target.key()?;
    let mut body = typed_object(body, target)?;
    check_body_name(&mut body, &key.name)?;
    let old = store.get(&key).cloned().ok_or_else(|| not_found(target, &key.name))?;
    check_rv(&body, &old.object, target, &key.name)?;
    let new = merge_into_old(target, &old.object, body);
    finish_update(store, target, &key, &old, new, Ownership::Update, params)
}

/// Apply a patch (any kind) to the named object.
pub fn patch(
    store: &mut Store,
    target: &Target,
    kind: PatchKind,
    body: &[u8],
    params: &WriteParams,
) -> Result<Written> {
    if kind == PatchKind::Apply {
        return apply(store, target, body, params);
    }
    if kind == PatchKind::Strategic && target.resource.custom {
        return Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                .to_owned(),
        ));
    }
    let key = target.key()?;
    let old = store.get(&key).cloned().ok_or_else(|| not_found(target, &key.name))?;
    let patched = patch::apply_patch(kind, &old.object, body).map_err(|e| name_invalid(e, target, &key.name))?;
    if !patched.is_object() {
        return Err(ApiError::BadRequest(
            "the patched object is not a JSON object".to_owned(),
        ));
    }
    check_rv(&patched, &old.object, target, &key.name)?;
    let new = merge_into_old(target, &old.object, patched);
    let object = finish_update(store, target, &key, &old, new, Ownership::Update, params)?;
    Ok(Written { object, created: false })
}

fn apply(store: &mut Store, target: &Target, body: &[u8], params: &WriteParams) -> Result<Written> {
    let key = target.key()?;
    if params.manager.is_empty() {
        return Err(ApiError::BadRequest(
            "PATCH /apply requires a non-empty fieldManager".to_owned(),
        ));
    }
    let mut config = patch::parse_apply(body)?;
    check_apply_config(&mut config, target, &key.name)?;
    let scoped = if target.is_status() {
        patch::only_status(&config)
    } else if target.resource.status_subresource {
        patch::without_status(&config)
    } else {
        config.clone()
    };
    let Some(old) = store.get(&key).cloned() else {
        if target.is_status() {
            return Err(not_found(target, &key.name));
        }
        let object = create_owned(store, target, config, params, Some(&scoped))?;
        return Ok(Written { object, created: true });
    };
    if !params.force {
        let conflicts = old.managed.conflicts(&params.manager, &scoped, &old.object);
        if !conflicts.is_empty() {
            return Err(apply_conflict(target, &key.name, &conflicts));
        }
    }
    let mut managed = old.managed.clone();
    let mut merged = patch::merge_applied(&old.object, &scoped);
    for dropped in managed.record_apply(&params.manager, &scoped, params.force) {
        fields::remove_path(&mut merged, &dropped);
    }
    let new = merge_into_old(target, &old.object, merged);
    let object = finish_update(store, target, &key, &old, new, Ownership::Applied(managed), params)?;
    Ok(Written { object, created: false })
}

fn check_apply_config(config: &mut Value, target: &Target, name: &str) -> Result<()> {
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "an apply configuration must be an object".to_owned(),
        ));
    }
    for field in ["apiVersion", "kind"] {
        if config.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApiError::BadRequest(format!(
                "{field} must be set in an apply configuration"
            )));
        }
    }
    check_body_name(config, name)?;
    let _ = typed_object(config.clone(), target)?;
    Ok(())
}

fn apply_conflict(target: &Target, name: &str, conflicts: &[fields::Conflict]) -> ApiError {
    let listed = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect::<Vec<_>>()
        .join(", ");
    let rt = &target.resource;
    let noun = if conflicts.len() == 1 { "conflict" } else { "conflicts" };
    ApiError::Conflict {
        message: format!("Apply failed with {} {noun}: {listed}", conflicts.len()),
        subject: crate::error::Subject {
            group: rt.group.clone(),
            kind: rt.plural.clone(),
            name: name.to_owned(),
        },
    }
}

/// Delete the named object: immediately, or by setting `deletionTimestamp` while finalizers
/// remain. `options` is the request's `DeleteOptions` body (may be null).
pub fn delete(store: &mut Store, target: &Target, options: &Value, params: &WriteParams) -> Result<Value> {
    let key = target.key()?;
    delete_key(store, target, &key, options, params)
}

fn delete_key(
    store: &mut Store,
    target: &Target,
    key: &ObjectKey,
    options: &Value,
    params: &WriteParams,
) -> Result<Value> {
    let old = store.get(key).cloned().ok_or_else(|| not_found(target, &key.name))?;
    check_preconditions(options, &old.object, target, &key.name)?;
    if params.dry_run {
        return Ok(old.object);
    }
    if !finalizers(&old.object).is_empty() {
        if old.object.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(old.object);
        }
        let mut marked = old.object.clone();
        let meta = metadata_mut(&mut marked)?;
        meta.insert("deletionTimestamp".to_owned(), json!(now()));
        meta.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
        return Ok(store.commit(key.clone(), marked, old.managed));
    }
    remove_now(store, key)
}

fn remove_now(store: &mut Store, key: &ObjectKey) -> Result<Value> {
    let removed = store
        .remove(key)
        .ok_or_else(|| ApiError::Internal(format!("{} vanished during delete", key.name)))?;
    cascade(store, key, &removed);
    Ok(removed)
}

/// Objects whose existence depends on the removed one: a CRD's custom objects, a namespace's
/// contents.
fn cascade(store: &mut Store, key: &ObjectKey, removed: &Value) {
    if key.resource == "apiextensions.k8s.io/customresourcedefinitions"
        && let Ok(rt) = resources::from_crd(removed)
    {
        remove_all(store, &rt.key(), None);
        store.unregister(&rt.group, &rt.plural);
    }
    if key.resource == "/namespaces" {
        let namespaced: Vec<String> = store
            .resources()
            .iter()
            .filter(|r| r.namespaced)
            .map(ResourceType::key)
            .collect();
        for resource in namespaced {
            remove_all(store, &resource, Some(&key.name));
        }
    }
}

fn remove_all(store: &mut Store, resource: &str, namespace: Option<&str>) {
    for k in store.keys(resource, namespace) {
        store.remove(&k);
    }
}

/// Delete every object of the collection `target` matching the selectors.
pub fn delete_collection(
    store: &mut Store,
    target: &Target,
    labels: &LabelSelector,
    fields: &FieldSelector,
    params: &WriteParams,
) -> Result<Vec<Value>> {
    let keys: Vec<ObjectKey> = store
        .keys(&target.resource.key(), target.namespace.as_deref())
        .into_iter()
        .filter(|k| {
            store
                .get(k)
                .is_some_and(|e| labels.matches_object(&e.object) && fields.matches(&e.object))
        })
        .collect();
    keys.iter()
        .map(|k| delete_key(store, target, k, &Value::Null, params))
        .collect()
}

/// Who owns the fields after an update.
enum Ownership {
    /// A plain write: the changed fields go to the request's field manager.
    Update,
    /// An apply that already recorded its ownership.
    Applied(ManagedFields),
}

/// Store `new` as the next state of the object at `key`, enforcing update rules.
fn finish_update(
    store: &mut Store,
    target: &Target,
    key: &ObjectKey,
    old_entry: &Entry,
    mut new: Value,
    ownership: Ownership,
    params: &WriteParams,
) -> Result<Value> {
    let old = &old_entry.object;
    let rt = &target.resource;
    if let Some(schema) = rt.schema(&target.version) {
        schema.prune_and_default(&mut new);
        check(rt, &key.name, schema.validate(&new, Some(old)))?;
    }
    let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
    if deleting && finalizers(&new).is_empty() {
        if params.dry_run {
            return Ok(new);
        }
        return remove_now(store, key);
    }
    if without_rv(&new) == without_rv(old) {
        return Ok(old.clone());
    }
    if spec_of(&new) != spec_of(old) {
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        metadata_mut(&mut new)?.insert("generation".to_owned(), json!(generation + 1));
    }
    if is_crd(rt) {
        install_crd(store, &mut new, params.dry_run)?;
    }
    let managed = match ownership {
        Ownership::Applied(managed) => managed,
        Ownership::Update => {
            let mut managed = old_entry.managed.clone();
            managed.record_update(&params.manager, old, &new);
            managed
        }
    };
    if params.dry_run {
        return Ok(new);
    }
    Ok(store.commit(key.clone(), new, managed))
}

/// The object a write of `body` produces from `old`: status and immutable metadata kept as
/// the subresource rules say.
fn merge_into_old(target: &Target, old: &Value, body: Value) -> Value {
    let mut new = if target.is_status() {
        let mut new = old.clone();
        set_or_remove(&mut new, "status", body.get("status").cloned());
        new
    } else {
        let mut new = body;
        if target.resource.status_subresource {
            set_or_remove(&mut new, "status", old.get("status").cloned());
        }
        new
    };
    keep_system_metadata(old, &mut new);
    new["apiVersion"] = json!(target.api_version());
    new["kind"] = json!(target.resource.kind);
    new
}

fn keep_system_metadata(old: &Value, new: &mut Value) {
    const KEPT: [&str; 7] = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    meta.remove("managedFields");
    for field in KEPT {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => {
                meta.insert(field.to_owned(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
}

fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    if let Some(map) = object.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(field.to_owned(), v);
            }
            None => {
                map.remove(field);
            }
        }
    }
}

fn without_rv(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    copy
}

fn spec_of(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(field);
        }
    }
    copy
}

fn finalizers(object: &Value) -> Vec<&Value> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn typed_object(body: Value, target: &Target) -> Result<Value> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".to_owned(),
        ));
    };
    let rt = &target.resource;
    if let Some(kind) = map.get("kind").and_then(Value::as_str)
        && kind != rt.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind \"{kind}\" of the body does not match the resource {} (kind {})",
            rt.plural, rt.kind
        )));
    }
    if let Some(api_version) = map.get("apiVersion").and_then(Value::as_str)
        && api_version != target.api_version()
    {
        return Err(ApiError::BadRequest(format!(
            "the apiVersion \"{api_version}\" of the body does not match the URL ({})",
            target.api_version()
        )));
    }
    map.insert("apiVersion".to_owned(), json!(target.api_version()));
    map.insert("kind".to_owned(), json!(rt.kind));
    Ok(Value::Object(map))
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::BadRequest("the object is not a JSON object".to_owned()));
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("metadata must be an object".to_owned()))
}

fn set_namespace(meta: &mut Map<String, Value>, target: &Target) -> Result<()> {
    if !target.resource.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let Some(url_ns) = target.namespace.as_deref() else {
        return Err(ApiError::BadRequest(format!(
            "{} is namespaced: POST to /namespaces/{{namespace}}/{}",
            target.resource.plural, target.resource.plural
        )));
    };
    if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
        && !body_ns.is_empty()
        && body_ns != url_ns
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request".to_owned(),
        ));
    }
    meta.insert("namespace".to_owned(), json!(url_ns));
    Ok(())
}

fn choose_name(store: &mut Store, meta: &mut Map<String, Value>, rt: &ResourceType) -> Result<String> {
    let given = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let name = match (given, generate) {
        (Some(name), _) => name,
        (None, Some(prefix)) => format!("{prefix}{}", store.next_suffix()),
        (None, None) => {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                "",
                vec![Cause::new(
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )],
            ));
        }
    };
    if let Some(problem) = dns_subdomain_problem(&name) {
        return Err(ApiError::invalid(
            &rt.group,
            &rt.kind,
            &name,
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: \"{name}\": {problem}"),
            )],
        ));
    }
    meta.insert("name".to_owned(), json!(name));
    Ok(name)
}

fn dns_subdomain_problem(name: &str) -> Option<&'static str> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        None
    } else {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character",
        )
    }
}

fn require_namespace(store: &Store, target: &Target) -> Result<()> {
    let ns = target.namespace.clone().unwrap_or_default();
    let key = ObjectKey {
        resource: "/namespaces".to_owned(),
        namespace: String::new(),
        name: ns.clone(),
    };
    if store.get(&key).is_none() {
        return Err(ApiError::not_found("", "namespaces", &ns));
    }
    Ok(())
}

fn apply_create_defaults(rt: &ResourceType, object: &mut Value) {
    if rt.custom
        && rt.status_subresource
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") if object.pointer("/status/phase").is_none() => {
            object["status"] = json!({"phase": "Pending"});
        }
        ("", "namespaces") if object.pointer("/status/phase").is_none() => {
            object["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

/// Register the resource a CRD describes and fill its status, or 422 if it is unusable.
fn install_crd(store: &mut Store, crd: &mut Value, dry_run: bool) -> Result<()> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let resource = resources::from_crd(crd).map_err(|e| {
        ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            vec![Cause::new("FieldValueInvalid", "spec", e.to_string())],
        )
    })?;
    let expected = format!("{}.{}", resource.plural, resource.group);
    if name != expected {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            )],
        ));
    }
    crd["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()}
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(Value::Null),
        "storedVersions": resource.versions.clone(),
    });
    if !dry_run {
        store.register(resource);
    }
    Ok(())
}

fn check(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Result<()> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
    }
}

fn check_body_name(body: &mut Value, name: &str) -> Result<()> {
    let meta = metadata_mut(body)?;
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != name => Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => {
            meta.insert("name".to_owned(), json!(name));
            Ok(())
        }
    }
}

fn check_rv(body: &Value, current: &Value, target: &Target, name: &str) -> Result<()> {
    let wanted = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let actual = current
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !wanted.is_empty() && wanted != actual {
        let rt = &target.resource;
        return Err(ApiError::conflict(
            &rt.group,
            &rt.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(())
}

fn check_preconditions(options: &Value, current: &Value, target: &Target, name: &str) -> Result<()> {
    let rt = &target.resource;
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let wanted = options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str);
        let actual = current
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(wanted) = wanted
            && wanted != actual
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!("Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"),
            ));
        }
    }
    Ok(())
}

fn not_found(target: &Target, name: &str) -> ApiError {
    ApiError::not_found(&target.resource.group, &target.resource.plural, name)
}

fn name_invalid(error: ApiError, target: &Target, name: &str) -> ApiError {
    match error {
        ApiError::Invalid { message, causes, .. } => ApiError::Invalid {
            message,
            subject: crate::error::Subject {
                group: target.resource.group.clone(),
                kind: target.resource.kind.clone(),
                name: name.to_owned(),
            },
            causes,
        },
        other => other,
    }
}
