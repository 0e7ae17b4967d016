//! The durable instance table: a ConfigMap with one key per instance, changed with optimistic
//! concurrency (read, change, replace with the read `resourceVersion`, retry on 409).
//!
//! In: a change to apply to the records. Out: the records after the change, as stored.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use purser_cloudprovider::CloudError;

use crate::record::{Records, parse_records, records_data};

/// How often a change is retried when another writer got there first.
const MAX_ATTEMPTS: u32 = 20;

/// The instance ConfigMap.
#[derive(Clone)]
pub struct InstanceStore {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
}

impl std::fmt::Debug for InstanceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstanceStore({})", self.display())
    }
}

/// A Kubernetes API failure, with what was being done.
pub fn api_error(context: &str, e: kube::Error) -> CloudError {
    CloudError::Other(format!("kwok: {context}: {e}"))
}

/// True when the API server answered with this HTTP status code.
pub fn has_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl InstanceStore {
    /// The ConfigMap `namespace/name`.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        InstanceStore {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `namespace/name`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The records as stored now (none when the ConfigMap does not exist yet).
    pub async fn load(&self) -> Result<Records, CloudError> {
        let cm = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| api_error(&format!("get ConfigMap {}", self.display()), e))?;
        match cm {
            None => Ok(Records::new()),
            Some(cm) => parse_records(&self.display(), &cm.data.unwrap_or_default()),
        }
    }

    /// Apply `change` to the current records and store them; `change` may run more than once
    /// (once per conflict) and returns a value computed from the records it saw last.
    pub async fn update<T>(&self, mut change: impl FnMut(&mut Records) -> T) -> Result<T, CloudError> {
        for attempt in 0..MAX_ATTEMPTS {
            match self.try_update(&mut change).await? {
                Some(value) => return Ok(value),
                None => tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt + 1))).await,
            }
        }
        Err(CloudError::Other(format!(
            "kwok: ConfigMap {}: still conflicting after {MAX_ATTEMPTS} attempts",
            self.display()
        )))
    }

    /// One read-change-write; `None` when another writer won and the change must be retried.
    async fn try_update<T>(&self, change: &mut impl FnMut(&mut Records) -> T) -> Result<Option<T>, CloudError> {
        let context = format!("update ConfigMap {}", self.display());
        let current = self.api.get_opt(&self.name).await.map_err(|e| api_error(&context, e))?;
        let exists = current.is_some();
        let mut cm = current.unwrap_or_else(|| self.empty());
        let data = cm.data.take().unwrap_or_default();
        let mut records = parse_records(&self.display(), &data)?;
        let value = change(&mut records);
        let new_data = records_data(&records);
        if exists && new_data == data {
            return Ok(Some(value));
        }
        cm.data = Some(new_data);
        let result = if exists {
            self.api.replace(&self.name, &PostParams::default(), &cm).await
        } else {
            self.api.create(&PostParams::default(), &cm).await
        };
        match result {
            Ok(_) => Ok(Some(value)),
            Err(e) if has_code(&e, 409) => Ok(None),
            Err(e) => Err(api_error(&context, e)),
        }
    }

    /// A new, empty ConfigMap.
    fn empty(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "purser-kwok".to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}
