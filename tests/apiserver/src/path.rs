//! URL paths of the Kubernetes API, parsed into what a request is about.
//!
//! In: the request path and the served resource table. Out: a `Route`: a discovery
//! document or a `Target` (resource type, version, namespace, name, subresource).

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;
use crate::store::{ObjectKey, Store};

/// The object or collection a resource request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resource type.
    pub resource: ResourceType,
    /// Version in the URL.
    pub version: String,
    /// Namespace in the URL, if any.
    pub namespace: Option<String>,
    /// Object name, absent for collections.
    pub name: Option<String>,
    /// Subresource such as `status`, `eviction` or `binding`.
    pub subresource: Option<String>,
}

impl Target {
    /// Store key of the named object; 405 on a collection path.
    pub fn key(&self) -> Result<ObjectKey> {
        let name = self.name.clone().ok_or_else(|| {
            ApiError::MethodNotAllowed("the server does not allow this method on a collection".to_owned())
        })?;
        Ok(self.key_for(&name))
    }

    /// Store key of the object called `name` in this target's namespace.
    pub fn key_for(&self, name: &str) -> ObjectKey {
        ObjectKey {
            resource: self.resource.key(),
            namespace: self.namespace.clone().unwrap_or_default(),
            name: name.to_owned(),
        }
    }

    /// Whether the request addresses the `/status` subresource.
    pub fn is_status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }

    /// `apiVersion` of objects served at this URL.
    pub fn api_version(&self) -> String {
        self.resource.api_version(&self.version)
    }
}

/// What a request path points at.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList {
        /// API group.
        group: String,
        /// API version.
        version: String,
    },
    /// `/version`.
    Version,
    /// A resource request.
    Resource(Box<Target>),
}

/// Parse `path` against the resources `store` serves.
pub fn parse(path: &str, store: &Store) -> Result<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Ok(Route::Version),
        ["api"] => Ok(Route::CoreVersions),
        ["apis"] => Ok(Route::Groups),
        ["api", version] => Ok(resource_list("", version)),
        ["apis", group, version] => Ok(resource_list(group, version)),
        ["api", version, rest @ ..] => resource("", version, rest, store).map(|t| Route::Resource(Box::new(t))),
        ["apis", group, version, rest @ ..] => {
            resource(group, version, rest, store).map(|t| Route::Resource(Box::new(t)))
        }
        _ => Err(not_found_path(path)),
    }
}

fn resource_list(group: &str, version: &str) -> Route {
    Route::ResourceList {
        group: group.to_owned(),
        version: version.to_owned(),
    }
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        subject: Default::default(),
    }
}

fn resource(group: &str, version: &str, rest: &[&str], store: &Store) -> Result<Target> {
    let lookup = |plural: &str| {
        store
            .resource(group, version, plural)
            .cloned()
            .ok_or_else(|| not_found_path(&format!("{group}/{version}/{plural}")))
    };
    let namespaced_plural = match rest {
        ["namespaces", _, plural, ..] => store.resource(group, version, plural).filter(|r| r.namespaced),
        _ => None,
    };
    let (namespace, tail) = match (rest, namespaced_plural) {
        (["namespaces", ns, tail @ ..], Some(_)) => (Some((*ns).to_owned()), tail),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match tail {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(not_found_path(&rest.join("/"))),
    };
    let resource = lookup(plural)?;
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found_path(&rest.join("/")));
    }
    if let Some(sub) = subresource {
        let known = (sub == "status" && resource.status_subresource) || resource.subresources.iter().any(|s| s == sub);
        if !known {
            return Err(not_found_path(&rest.join("/")));
        }
    }
    Ok(Target {
        resource,
        version: version.to_owned(),
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}
