//! The error every model reader returns: which object, which field, what was expected.

/// A problem with one input object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct ModelError {
    /// The object, e.g. `Pod default/web-1` or `NodePool gpu`.
    pub object: String,
    /// The field path, e.g. `spec.containers[0].resources.requests.cpu`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ModelError {
    /// Build an error.
    pub fn new(object: &str, field: &str, message: &str) -> Self {
        ModelError {
            object: object.to_string(),
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}
