//! AWS API errors: which are retried (throttling, 5xx, timeouts), which mean "no capacity", and
//! how they reach the controller as [`CloudError`]s.
//!
//! In: SDK errors of every call. Out: an [`AwsError`] naming the operation, the AWS error code
//! and message; retries with exponential backoff and jitter through backon ([`call`]).

use std::future::Future;
use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use backon::{ExponentialBuilder, Retryable};
use purser_cloudprovider::CloudError;

/// EC2 error codes that mean "this offering has no capacity now".
pub const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "InsufficientCapacityOnHost",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "UnfulfillableCapacity",
    "Unsupported",
    "SpotMaxPriceTooLow",
    "InsufficientFreeAddressesInSubnet",
    "ReservationCapacityExceeded",
];

/// Error codes worth retrying: throttling and transient server errors.
pub const RETRYABLE_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
];

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct AwsError {
    /// The API operation, e.g. `CreateFleet`.
    pub operation: &'static str,
    /// AWS error code (`RequestLimitExceeded`), or `Transport` when no response came.
    pub code: String,
    /// The service's message.
    pub message: String,
}

impl AwsError {
    /// An error that did not come from AWS (bad settings, a missing field in a response).
    pub fn local(operation: &'static str, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            operation,
            code: code.into(),
            message: message.into(),
        }
    }

    /// True for "instance not found" errors.
    pub fn is_not_found(&self) -> bool {
        self.code.starts_with("InvalidInstanceID")
    }
}

impl From<AwsError> for CloudError {
    fn from(e: AwsError) -> Self {
        CloudError::Other(e.to_string())
    }
}

/// How calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retries: 6,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
    }
}

/// The AWS error code of an SDK error, `Transport` when no response came, or `HTTP <status>`.
pub fn code_of<E: ProvideErrorMetadata>(error: &SdkError<E>) -> String {
    if let Some(code) = error.code() {
        return code.to_string();
    }
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => "Transport".into(),
        SdkError::ResponseError(r) => format!("HTTP {}", r.raw().status().as_u16()),
        SdkError::ServiceError(s) => format!("HTTP {}", s.raw().status().as_u16()),
        _ => "Unknown".into(),
    }
}

/// True when the call may succeed if tried again.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    let status = match error {
        SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => return true,
        _ => None,
    };
    let code = code_of(error);
    RETRYABLE_CODES.contains(&code.as_str()) || matches!(status, Some(500 | 502 | 503 | 504))
}

fn convert<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    error: &SdkError<E>,
) -> AwsError {
    let message = error.message().map(str::to_string).unwrap_or_else(|| {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    });
    AwsError {
        operation,
        code: code_of(error),
        message,
    }
}

/// Run `f` (one AWS call), retrying throttling and transient errors with exponential backoff
/// and jitter.
pub async fn call<T, E, F, Fut>(operation: &'static str, policy: &RetryPolicy, f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    f.retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(is_retryable)
        .notify(|e, delay| {
            tracing::warn!(operation, code = %code_of(e), ?delay, "AWS call failed; retrying");
        })
        .await
        .map_err(|e| convert(operation, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retryable_and_a_bad_request_is_not() {
        use aws_sdk_ec2::error::ErrorMetadata;
        use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        let make = |code: &str, status: u16| {
            let meta = ErrorMetadata::builder().code(code).message("m").build();
            let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            SdkError::service_error(DescribeInstancesError::generic(meta), raw)
        };
        assert!(is_retryable(&make("RequestLimitExceeded", 400)));
        assert!(is_retryable(&make("Whatever", 503)));
        assert!(!is_retryable(&make("InvalidParameterValue", 400)));
        assert_eq!(
            code_of(&make("InvalidInstanceID.NotFound", 400)),
            "InvalidInstanceID.NotFound"
        );
    }
}
