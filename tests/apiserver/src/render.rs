//! How objects are shown: as stored (in the URL's API version), or as
//! `meta.k8s.io/v1 PartialObjectMetadata` when the client's `Accept` header asks for it, as
//! kube's `metadata_watcher` and `Api::get_metadata` / `list_metadata` do.

use serde_json::{Value, json};

use crate::path::Target;

/// The representation a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rendering {
    /// The whole object.
    #[default]
    Full,
    /// Only `metadata`, as `PartialObjectMetadata`.
    Metadata,
}

const META_API_VERSION: &str = "meta.k8s.io/v1";

impl Rendering {
    /// The rendering an `Accept` header value asks for.
    pub fn from_accept(accept: &str) -> Self {
        if accept.contains("as=PartialObjectMetadata") {
            Rendering::Metadata
        } else {
            Rendering::Full
        }
    }

    /// `object` as served at `target`.
    pub fn object(self, object: &Value, target: &Target) -> Value {
        match self {
            Rendering::Full => {
                let mut object = object.clone();
                object["apiVersion"] = json!(target.api_version());
                object
            }
            Rendering::Metadata => json!({
                "apiVersion": META_API_VERSION,
                "kind": "PartialObjectMetadata",
                "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
            }),
        }
    }

    /// A list of already rendered `items` at resourceVersion `rv`.
    pub fn list(self, items: Vec<Value>, target: &Target, rv: u64) -> Value {
        let (api_version, kind) = match self {
            Rendering::Full => (target.api_version(), format!("{}List", target.resource.kind)),
            Rendering::Metadata => (META_API_VERSION.to_owned(), "PartialObjectMetadataList".to_owned()),
        };
        json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        })
    }
}
