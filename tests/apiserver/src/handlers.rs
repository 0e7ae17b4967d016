//! HTTP entry point: one axum fallback handler that logs the request, parses path and query,
//! dispatches by verb, and renders objects, lists, watch streams or `Status` errors.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::discovery;
use crate::error::{ApiError, Result};
use crate::eviction;
use crate::patch::{self, PatchKind};
use crate::path::{self, Route, Target};
use crate::render::Rendering;
use crate::selectors::{FieldSelector, LabelSelector, field_supported};
use crate::server::{RequestRecord, Shared};
use crate::store::Store;
use crate::watch::{self, WatchRequest};
use crate::writes::{self, WriteParams};

type Query = HashMap<String, String>;

/// Serve any API request.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let rendering = Rendering::from_accept(&accept);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.record(RequestRecord {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        content_type: content_type.clone(),
        accept,
    });
    if !shared.available.load(Ordering::SeqCst) {
        return ApiError::ServiceUnavailable("the test API server is set unavailable".to_owned()).into_response();
    }
    let request = Request {
        method,
        path: uri.path().to_owned(),
        query,
        content_type,
        body,
        rendering,
    };
    match dispatch(&shared, request) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

struct Request {
    method: Method,
    path: String,
    query: Query,
    content_type: String,
    body: Bytes,
    rendering: Rendering,
}

fn lock(shared: &Shared) -> Result<MutexGuard<'_, Store>> {
    shared
        .store
        .lock()
        .map_err(|_| ApiError::Internal("the store lock is poisoned".to_owned()))
}

fn dispatch(shared: &Shared, request: Request) -> Result<Response> {
    let route = path::parse(&request.path, &*lock(shared)?)?;
    let target = match route {
        Route::CoreVersions => return Ok(json_response(StatusCode::OK, discovery::core_versions())),
        Route::Version => return Ok(json_response(StatusCode::OK, discovery::version())),
        Route::Groups => {
            return Ok(json_response(
                StatusCode::OK,
                discovery::groups(lock(shared)?.resources()),
            ));
        }
        Route::ResourceList { group, version } => {
            let list = discovery::resource_list(lock(shared)?.resources(), &group, &version)?;
            return Ok(json_response(StatusCode::OK, list));
        }
        Route::Resource(target) => *target,
    };
    let collection = target.name.is_none();
    match (request.method.clone(), collection) {
        (Method::GET, true) if flag(&request.query, "watch") => watch(shared, &target, &request),
        (Method::GET, true) => list(shared, &target, &request),
        (Method::GET, false) => get(shared, &target, &request),
        (Method::POST, true) => create(shared, &target, &request),
        (Method::POST, false) => post_subresource(shared, &target, &request),
        (Method::PUT, false) => update(shared, &target, &request),
        (Method::PATCH, false) => patch(shared, &target, &request),
        (Method::DELETE, false) => delete(shared, &target, &request),
        (Method::DELETE, true) => delete_collection(shared, &target, &request),
        (method, _) => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow the method {method} on {}",
            request.path
        ))),
    }
}

fn flag(query: &Query, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true" || v == "1")
}

fn json_response(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

fn object_response(code: StatusCode, object: &Value, target: &Target, request: &Request) -> Response {
    json_response(code, request.rendering.object(object, target))
}

fn params(query: &Query, default_manager: &str) -> WriteParams {
    WriteParams {
        manager: query
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| default_manager.to_owned()),
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        force: flag(query, "force"),
    }
}

fn selectors(target: &Target, query: &Query) -> Result<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())?;
    let rt = &target.resource;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").map(String::as_str).unwrap_or_default(),
        |p| field_supported(&rt.group, &rt.plural, p),
    )?;
    Ok((labels, fields))
}

fn reject_subresource(target: &Target) -> Result<()> {
    match target.subresource.as_deref() {
        None | Some("status") => Ok(()),
        Some(sub) => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on {}/{sub}",
            target.resource.plural
        ))),
    }
}

fn get(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    reject_subresource(target)?;
    let key = target.key()?;
    let store = lock(shared)?;
    let entry = store
        .get(&key)
        .ok_or_else(|| ApiError::not_found(&target.resource.group, &target.resource.plural, &key.name))?;
    Ok(object_response(StatusCode::OK, &entry.object, target, request))
}

fn list(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    let (labels, fields) = selectors(target, &request.query)?;
    let store = lock(shared)?;
    let items: Vec<Value> = store
        .list(&target.resource.key(), target.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .map(|o| request.rendering.object(o, target))
        .collect();
    let body = request.rendering.list(items, target, store.current_rv());
    Ok(json_response(StatusCode::OK, body))
}

fn watch(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    let query = &request.query;
    let (labels, fields) = selectors(target, query)?;
    let resource_version = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .map(|t| {
            t.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {t}")))
        })
        .transpose()?
        .unwrap_or(1800);
    let request = WatchRequest {
        target: target.clone(),
        labels,
        fields,
        resource_version,
        bookmarks: flag(query, "allowWatchBookmarks"),
        send_initial_events: flag(query, "sendInitialEvents"),
        timeout: Duration::from_secs(timeout),
        bookmark_interval: shared.options.bookmark_interval,
        rendering: request.rendering,
    };
    let stream = {
        let store = lock(shared)?;
        watch::start(&store, request, shared.epoch.subscribe())
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(response)
}

fn create(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    let body = patch::parse_json(&request.body)?;
    let params = params(&request.query, "create");
    let object = writes::create(&mut *lock(shared)?, target, body, &params)?;
    Ok(object_response(StatusCode::CREATED, &object, target, request))
}

fn post_subresource(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    let body = patch::parse_json(&request.body)?;
    let params = params(&request.query, "eviction");
    let mut store = lock(shared)?;
    let status = match target.subresource.as_deref() {
        Some("eviction") => eviction::evict(&mut store, target, &body, &params)?,
        Some("binding") => eviction::bind(&mut store, target, &body)?,
        _ => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow POST on {}",
                request.path
            )));
        }
    };
    Ok(json_response(StatusCode::CREATED, status))
}

fn update(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    reject_subresource(target)?;
    let body = patch::parse_json(&request.body)?;
    let params = params(&request.query, "update");
    let object = writes::update(&mut *lock(shared)?, target, body, &params)?;
    Ok(object_response(StatusCode::OK, &object, target, request))
}

fn patch(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    reject_subresource(target)?;
    let kind = PatchKind::from_content_type(&request.content_type)?;
    let params = params(&request.query, "patch");
    if kind == PatchKind::Apply && !request.query.contains_key("fieldManager") {
        return Err(ApiError::BadRequest(
            "PATCH /apply requires a non-empty fieldManager".to_owned(),
        ));
    }
    let written = writes::patch(&mut *lock(shared)?, target, kind, &request.body, &params)?;
    let code = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(code, &written.object, target, request))
}

fn delete_options(body: &Bytes) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    patch::parse_json(body)
}

fn delete(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    if target.subresource.is_some() {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow DELETE on a subresource".to_owned(),
        ));
    }
    let options = delete_options(&request.body)?;
    let mut params = params(&request.query, "delete");
    params.dry_run |= options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    let object = writes::delete(&mut *lock(shared)?, target, &options, &params)?;
    Ok(object_response(StatusCode::OK, &object, target, request))
}

fn delete_collection(shared: &Shared, target: &Target, request: &Request) -> Result<Response> {
    let (labels, fields) = selectors(target, &request.query)?;
    let params = params(&request.query, "delete");
    let mut store = lock(shared)?;
    let deleted = writes::delete_collection(&mut store, target, &labels, &fields, &params)?;
    let items: Vec<Value> = deleted.iter().map(|o| request.rendering.object(o, target)).collect();
    let body = request.rendering.list(items, target, store.current_rv());
    Ok(json_response(StatusCode::OK, body))
}
