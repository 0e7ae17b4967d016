//! API errors and their rendering as Kubernetes `Status` objects.
//!
//! Every handler returns `Result<_, ApiError>`; the error becomes an HTTP response whose body
//! is a `meta/v1 Status` with the same `reason` and `code` the real API server would send.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One field-level cause inside a `Status`'s `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable description of what was expected.
    pub message: String,
    /// Field path such as `spec.replicas`.
    pub field: String,
}

impl Cause {
    /// A cause naming `field` with a `reason` and `message`.
    pub fn new(reason: &str, field: &str, message: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_owned(),
            message: message.into(),
            field: field.to_owned(),
        }
    }
}

/// What the resource an error is about is called, for `details`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name, e.g. `pods`.
    pub kind: String,
    /// Object name.
    pub name: String,
}

/// An error answered to a client as a Kubernetes `Status`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the object or resource type does not exist.
    #[error("{message}")]
    NotFound {
        /// Status message.
        message: String,
        /// Object concerned.
        subject: Subject,
    },
    /// 409: an object of that name already exists.
    #[error("{message}")]
    AlreadyExists {
        /// Status message.
        message: String,
        /// Object concerned.
        subject: Subject,
    },
    /// 409: stale resourceVersion, failed precondition or apply conflict.
    #[error("{message}")]
    Conflict {
        /// Status message.
        message: String,
        /// Object concerned.
        subject: Subject,
    },
    /// 422: the object failed validation.
    #[error("{message}")]
    Invalid {
        /// Status message.
        message: String,
        /// Object concerned.
        subject: Subject,
        /// Field-level causes.
        causes: Vec<Cause>,
    },
    /// 410: the requested resourceVersion is older than the retained history.
    #[error("{0}")]
    Gone(String),
    /// 429: eviction refused by a PodDisruptionBudget.
    #[error("{message}")]
    TooManyRequests {
        /// Status message.
        message: String,
        /// Why, e.g. the budget that refused.
        causes: Vec<Cause>,
    },
    /// 405: verb not supported on that path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 400: malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// 415: unknown patch content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: the server was told to be unavailable.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 500: an invariant inside the test server broke.
    #[error("{0}")]
    Internal(String),
}

/// Short alias used across the crate.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// HTTP status code of this error.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::Gone(_) => 410,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::BadRequest(_) => 400,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// Kubernetes `reason` of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Gone(_) => "Expired",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// 404 for an object of `resource` (plural) in `group`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{name}\" not found", qualified(group, resource)),
            subject: Subject::of(group, resource, name),
        }
    }

    /// 409 AlreadyExists for an object of `resource` in `group`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{name}\" already exists", qualified(group, resource)),
            subject: Subject::of(group, resource, name),
        }
    }

    /// 409 Conflict with the reason text after "Operation cannot be fulfilled on ...".
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
            subject: Subject::of(group, resource, name),
        }
    }

    /// 422 Invalid naming the kind, object and each cause, like the real server's message.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join(", ");
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        ApiError::Invalid {
            message: format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
            subject: Subject::of(group, kind, name),
            causes,
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(details) = self.details() {
            status["details"] = details;
        }
        status
    }

    fn details(&self) -> Option<Value> {
        let (subject, causes) = match self {
            ApiError::NotFound { subject, .. }
            | ApiError::AlreadyExists { subject, .. }
            | ApiError::Conflict { subject, .. } => (Some(subject), &[][..]),
            ApiError::Invalid { subject, causes, .. } => (Some(subject), &causes[..]),
            ApiError::TooManyRequests { causes, .. } => (None, &causes[..]),
            _ => return None,
        };
        let mut details = json!({});
        if let Some(s) = subject {
            details["name"] = json!(s.name);
            details["group"] = json!(s.group);
            details["kind"] = json!(s.kind);
        }
        if !causes.is_empty() {
            details["causes"] = causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
        }
        Some(details)
    }
}

impl Subject {
    fn of(group: &str, kind: &str, name: &str) -> Self {
        Subject {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}
