//! The AWS NodeClass loop (`nodeclass.aws`): reads NodeClasses from the API server, resolves
//! their `spec.aws` against EC2 and writes `status.aws` and the `Ready` condition.
//!
//! In: NodeClass objects. Out: resolved classes for launches (cached in the provider) and a
//! status that lists the subnets, security groups and images in use, or `Ready=False` saying
//! which field is wrong or which selector matched nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use purser_cloudprovider::CloudError;
use serde_json::{Value, json};

use crate::AwsProvider;
use crate::nodeclass::AwsNodeClass;
use crate::resolve::{ResolveError, ResolvedClass};

/// Field manager of the status writes.
pub const MANAGER: &str = "purser-aws";

fn resource() -> ApiResource {
    ApiResource {
        group: "purser.dev".into(),
        version: "v1".into(),
        api_version: "purser.dev/v1".into(),
        kind: "NodeClass".into(),
        plural: "nodeclasses".into(),
    }
}

/// `spec.aws` and the merged tags of a NodeClass object, or what is wrong with it.
pub fn settings_of(object: &DynamicObject) -> Result<(AwsNodeClass, BTreeMap<String, String>), String> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let spec = &object.data["spec"];
    let aws = spec.get("aws").filter(|v| !v.is_null()).ok_or_else(|| {
        format!("NodeClass {name}: spec.aws is missing (the aws provider needs subnets, security groups and images)")
    })?;
    let aws: AwsNodeClass = serde_path_to_error::deserialize(aws.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "spec.aws".to_string()
        } else {
            format!("spec.aws.{path}")
        };
        format!("NodeClass {name}: {field}: {}", e.inner())
    })?;
    let tags: BTreeMap<String, String> = match spec.get("tags") {
        Some(t) if !t.is_null() => {
            serde_json::from_value(t.clone()).map_err(|e| format!("NodeClass {name}: spec.tags: {e}"))?
        }
        _ => BTreeMap::new(),
    };
    Ok((aws, tags))
}

/// Read NodeClass `name` and resolve it (for a launch that came before the loop saw it).
pub async fn load_and_resolve(provider: &AwsProvider, name: &str) -> Result<ResolvedClass, CloudError> {
    let Some(client) = provider.kube() else {
        return Err(CloudError::Other(format!("NodeClass {name} was not resolved")));
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource());
    let object = api
        .get_opt(name)
        .await
        .map_err(|e| CloudError::Other(format!("reading NodeClass {name}: {e}")))?
        .ok_or_else(|| CloudError::Other(format!("NodeClass {name} does not exist")))?;
    let (spec, tags) = settings_of(&object).map_err(|why| {
        provider.invalidate_class(name, &why);
        CloudError::Other(format!("NodeClass {name} is not ready: {why}"))
    })?;
    provider.resolve_class(name, &spec, tags).await.map_err(|e| match e {
        ResolveError::Invalid(why) => CloudError::Other(format!("NodeClass {name} is not ready: {why}")),
        ResolveError::Aws(e) => e.into(),
    })
}

/// Resolve every NodeClass and write its status, every `every`, forever.
pub async fn run(provider: &AwsProvider, every: Duration) {
    loop {
        if let Err(e) = reconcile_all(provider).await {
            tracing::warn!(error = %e, "NodeClass pass failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// One pass over every NodeClass.
pub async fn reconcile_all(provider: &AwsProvider) -> Result<(), kube::Error> {
    let Some(client) = provider.kube() else { return Ok(()) };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource());
    let objects = api.list(&Default::default()).await?.items;
    let names: Vec<String> = objects.iter().filter_map(|o| o.metadata.name.clone()).collect();
    provider.retain_classes(&names);
    for object in objects {
        let name = object.metadata.name.clone().unwrap_or_default();
        let outcome = match settings_of(&object) {
            Err(why) => {
                provider.invalidate_class(&name, &why);
                Err(why)
            }
            Ok((spec, tags)) => match provider.resolve_class(&name, &spec, tags).await {
                Ok(class) => Ok(class),
                Err(ResolveError::Invalid(why)) => Err(why),
                Err(ResolveError::Aws(e)) => {
                    tracing::warn!(nodeclass = %name, error = %e, "cannot resolve the NodeClass now");
                    continue;
                }
            },
        };
        if let Err(why) = &outcome {
            tracing::warn!(nodeclass = %name, problem = %why, "NodeClass is not ready");
        }
        write_status(&api, &object, &outcome).await?;
    }
    Ok(())
}

fn ready_condition(
    previous: Option<&Value>,
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Value {
    let status = if ready { "True" } else { "False" };
    let unchanged = previous.is_some_and(|p| p["status"] == status && p["reason"] == reason && p["message"] == message);
    let time = match previous {
        Some(p) if unchanged => p["lastTransitionTime"].clone(),
        _ => json!(Timestamp::now().to_string()),
    };
    let mut condition =
        json!({"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": time});
    if let Some(g) = generation {
        condition["observedGeneration"] = json!(g);
    }
    condition
}

async fn write_status(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    outcome: &Result<ResolvedClass, String>,
) -> Result<(), kube::Error> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let conditions: Vec<Value> = object.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let previous = conditions.iter().find(|c| c["type"] == "Ready");
    let generation = object.metadata.generation;
    let (aws, condition) = match outcome {
        Ok(class) => (
            serde_json::to_value(&class.status).unwrap_or(Value::Null),
            ready_condition(
                previous,
                true,
                "Resolved",
                "subnets, security groups and images resolved",
                generation,
            ),
        ),
        Err(why) => (
            Value::Null,
            ready_condition(previous, false, "InvalidNodeClass", why, generation),
        ),
    };
    let mut others: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "Ready").collect();
    others.push(condition);
    let patch = json!({"status": {"aws": aws, "conditions": others}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_spec_aws_names_the_field() {
        let mut object = DynamicObject::new("broken", &resource());
        object.data = json!({"spec": {"aws": {"subnetSelectorTerms": [{"tags": "not-a-map"}]}}});
        let why = settings_of(&object).expect_err("a string is not a tag map");
        assert!(
            why.starts_with("NodeClass broken: spec.aws.subnetSelectorTerms[0].tags: "),
            "{why}"
        );
    }
}
