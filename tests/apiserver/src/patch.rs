//! Patch bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! (see `strategic`) and server-side apply configurations.
//!
//! In: the content type and body of a PATCH request and the current object. Out: the
//! patched object, which `writes` then stores like an update.

use serde_json::{Map, Value};

use crate::error::{ApiError, Result};
use crate::strategic;

/// The patch flavours kube's `Patch` enum sends, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchKind {
    /// The patch kind for a `Content-Type` header value.
    pub fn from_content_type(content_type: &str) -> Result<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json (got \"{other}\")"
            ))),
        }
    }
}

/// Parse a JSON request body.
pub fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("unable to decode request body: {e}")))
}

/// Parse an apply configuration, JSON or YAML.
pub fn parse_apply(body: &[u8]) -> Result<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    serde_norway::from_slice(body).map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))
}

/// `current` with a non-apply patch applied.
pub fn apply_patch(kind: PatchKind, current: &Value, body: &[u8]) -> Result<Value> {
    let mut patched = current.clone();
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("unable to decode JSON patch: {e}")))?;
            let patch = missing_is_null(&patched, patch);
            json_patch::patch(&mut patched, &patch).map_err(|e| ApiError::Invalid {
                message: format!("the server rejected our request due to an error in our request: {e}"),
                subject: Default::default(),
                causes: Vec::new(),
            })?;
        }
        PatchKind::Merge => {
            let patch = object_patch(body)?;
            json_patch::merge(&mut patched, &patch);
        }
        PatchKind::Strategic => {
            let patch = object_patch(body)?;
            patched = strategic::merge(current, &patch);
        }
        PatchKind::Apply => {
            return Err(ApiError::Internal("apply is not a plain patch".to_owned()));
        }
    }
    Ok(patched)
}

/// The API server's JSON patch library lets `test` with value null pass on a missing path
/// (kube-runtime's finalizer helper relies on it); `json_patch` fails it, so drop such tests.
fn missing_is_null(document: &Value, patch: json_patch::Patch) -> json_patch::Patch {
    let ops = patch
        .0
        .into_iter()
        .filter(|op| match op {
            json_patch::PatchOperation::Test(test) => {
                !(test.value.is_null() && document.pointer(test.path.as_str()).is_none())
            }
            _ => true,
        })
        .collect();
    json_patch::Patch(ops)
}

fn object_patch(body: &[u8]) -> Result<Value> {
    let patch = parse_json(body)?;
    if !patch.is_object() {
        return Err(ApiError::BadRequest("a merge patch must be a JSON object".to_owned()));
    }
    Ok(patch)
}

/// Merge an apply configuration into `current`: maps merge key by key, lists and scalars are
/// replaced, nulls remove.
pub fn merge_applied(current: &Value, applied: &Value) -> Value {
    let mut merged = current.clone();
    json_patch::merge(&mut merged, applied);
    merged
}

/// Only the `status` of `object` (plus identity), for applies to `/status`.
pub fn only_status(object: &Value) -> Value {
    let mut out = Map::new();
    for key in ["apiVersion", "kind", "status"] {
        if let Some(v) = object.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// `object` without `status`, for applies to the main resource.
pub fn without_status(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_ignores_unknown_directives() {
        let current = json!({"spec": {"a": 1, "b": [1, 2]}});
        let out = apply_patch(
            PatchKind::Strategic,
            &current,
            br#"{"spec": {"a": null, "b": [3], "$patch": "x"}}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"b": [3]}}));
    }

    #[test]
    fn apply_body_may_be_yaml() {
        assert_eq!(parse_apply(b"spec:\n  a: 1\n").unwrap(), json!({"spec": {"a": 1}}));
    }

    #[test]
    fn test_null_passes_on_missing_path() {
        let ops = br#"[{"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]"#;
        let out = apply_patch(PatchKind::Json, &json!({"metadata": {}}), ops).unwrap();
        assert_eq!(out, json!({"metadata": {"finalizers": ["f"]}}));
    }

    #[test]
    fn failed_json_patch_test_is_invalid() {
        let err = apply_patch(
            PatchKind::Json,
            &json!({"a": 1}),
            br#"[{"op": "test", "path": "/a", "value": 2}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
    }
}
