//! `purser webhook`: a validating admission webhook for pods (axum over rustls), judging each
//! new pod against the cost policies of [`policy`].
//!
//! In: AdmissionReview requests; the NodePools, CostBudgets and Namespaces it watches; the
//! catalog. Out: AdmissionReview responses. A pod's estimated cost comes from the decision
//! engine (`solver::plan` on a snapshot holding only that pod and the NodePools: the cheapest
//! capacity the engine would give it, the pod's allocated share of that node's price).
//!
//! A body that is not an AdmissionReview gets HTTP 400 (the API server then applies the
//! webhook's failurePolicy); a review of anything but a pod CREATE is allowed unjudged; a pod
//! object that does not load gets the configured failure answer (fail-open: allowed with a
//! warning; fail-closed: denied) with the loader's message.

pub mod policy;
pub mod probe;
pub mod server;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::cost::UnitPrices;
use crate::model::pod::{PodInfo, pod_from_k8s};
use crate::solver::{PlanOptions, Strategy};

use policy::{BudgetView, Policies, Review, Verdict};

/// Estimated hourly cost by pod shape (requests, node selector, node affinity, tolerations),
/// valid for one set of NodePools.
pub type Estimates = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Option<f64>>>>;

/// What the webhook knows of the cluster when a review arrives.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// NodePool objects (as JSON), for cost estimates.
    pub pools: Vec<Value>,
    /// Estimates made against these pools (kept while the pools do not change).
    pub estimates: Estimates,
    /// CostBudget objects (as JSON).
    pub budgets: Vec<Value>,
    /// `budgets` loaded (once per view, by [`ClusterView::loaded_budgets`]).
    pub loaded: std::sync::OnceLock<LoadedBudgets>,
    /// Namespace labels by namespace name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// The CostBudgets of a view as the policies read them, and why any did not load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedBudgets {
    /// The CostBudgets that load, with their run-rates.
    pub views: Vec<BudgetView>,
    /// One message per CostBudget that does not load (it is not enforced).
    pub errors: Vec<String>,
}

impl ClusterView {
    /// The view's CostBudgets, loaded on the first call and kept with the view (the refresh
    /// loop calls it before installing a view, so reviews only read the result).
    pub fn loaded_budgets(&self, catalog: &Catalog) -> &LoadedBudgets {
        self.loaded.get_or_init(|| load_budgets(&self.budgets, catalog))
    }
}

/// The webhook's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The policies.
    pub policies: Policies,
    /// Allow (true) or deny (false) a pod the webhook cannot judge.
    pub fail_open: bool,
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (an AdmissionReview) or an error text.
    pub body: Value,
}

/// Answer one AdmissionReview body.
pub fn review(body: &[u8], settings: &Settings, view: &ClusterView, catalog: &Catalog) -> Answer {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("the body is not JSON: {e}")),
    };
    let Some(uid) = request.pointer("/request/uid").and_then(Value::as_str) else {
        return bad_request("not an AdmissionReview: request.uid is missing".into());
    };
    let kind = request.pointer("/request/kind/kind").and_then(Value::as_str);
    let operation = request.pointer("/request/operation").and_then(Value::as_str);
    if kind != Some("Pod") || operation != Some("CREATE") {
        return respond(uid, &allowed_with(vec![]));
    }
    let namespace = request
        .pointer("/request/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let pod = match load_pod(request.pointer("/request/object"), namespace) {
        Ok(pod) => pod,
        Err(message) => return respond(uid, &cannot_judge(settings, message)),
    };
    let budgets = &view.loaded_budgets(catalog).views;
    let estimated_cost = if settings.policies.budget.enabled && budgets.iter().any(|b| b.budget.covers(&pod)) {
        cached_estimate(&pod, view, catalog)
    } else {
        None
    };
    let no_labels = BTreeMap::new();
    let verdict = policy::judge(
        &settings.policies,
        &Review {
            pod: &pod,
            namespace_labels: view.namespaces.get(namespace).unwrap_or(&no_labels),
            budgets,
            estimated_cost,
        },
    );
    respond(uid, &verdict)
}

fn bad_request(message: String) -> Answer {
    Answer {
        status: 400,
        body: json!({ "error": message }),
    }
}

fn allowed_with(warnings: Vec<String>) -> Verdict {
    Verdict {
        allowed: true,
        message: None,
        warnings,
    }
}

fn cannot_judge(settings: &Settings, message: String) -> Verdict {
    if settings.fail_open {
        allowed_with(vec![format!("not judged (fail-open): {message}")])
    } else {
        Verdict {
            allowed: false,
            message: Some(message),
            warnings: vec![],
        }
    }
}

/// The pod of a review, loaded as the engine reads it, in `namespace`.
fn load_pod(object: Option<&Value>, namespace: &str) -> Result<PodInfo, String> {
    let object = object.ok_or("request.object is missing")?;
    let mut pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(object.clone()).map_err(|e| format!("request.object is not a Pod: {e}"))?;
    pod.metadata.namespace.get_or_insert_with(|| namespace.to_string());
    if pod.metadata.name.is_none() {
        let base = pod.metadata.generate_name.clone().unwrap_or_else(|| "pod-".into());
        pod.metadata.name = Some(format!("{base}<generated>"));
    }
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = None;
    }
    pod_from_k8s(&pod).map_err(|e| e.to_string())
}

/// Load each CostBudget on its own, with its run-rate (`status.runRate`, 0 when absent); one
/// that does not load is left out with the loader's message.
fn load_budgets(objects: &[Value], catalog: &Catalog) -> LoadedBudgets {
    let mut loaded = LoadedBudgets::default();
    for object in objects {
        match load_budget(object, catalog) {
            Ok(view) => loaded.views.push(view),
            Err(message) => loaded.errors.push(message),
        }
    }
    loaded
}

/// One CostBudget and its run-rate, or why it does not load.
fn load_budget(object: &Value, catalog: &Catalog) -> Result<BudgetView, String> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
    let loaded = crate::model::load::snapshot_from_objects(std::slice::from_ref(object), catalog)
        .map_err(|e| format!("CostBudget {name} is not enforced: {e}"))?;
    let budget = loaded
        .snapshot
        .budgets
        .into_iter()
        .next()
        .ok_or_else(|| format!("CostBudget {name} is not enforced: not a CostBudget"))?;
    let run_rate = object.pointer("/status/runRate").and_then(Value::as_f64).unwrap_or(0.0);
    Ok(BudgetView { budget, run_rate })
}

/// [`estimate`], remembered per pod shape while the NodePools stay the same: replicas of one
/// workload share a shape, so the planner runs once per shape, not once per pod.
fn cached_estimate(pod: &PodInfo, view: &ClusterView, catalog: &Catalog) -> Option<f64> {
    let key = serde_json::to_string(&(&pod.requests, &pod.node_selector, &pod.node_affinity, &pod.tolerations))
        .unwrap_or_default();
    if let Some(known) = view.estimates.lock().ok().and_then(|m| m.get(&key).copied()) {
        return known;
    }
    let value = estimate(pod, view, catalog);
    if let Ok(mut m) = view.estimates.lock() {
        m.insert(key, value);
    }
    value
}

/// The pod's allocated cost on the node the engine would create for it alone (an estimate),
/// or None when no NodePool offers capacity that fits it.
pub fn estimate(pod: &PodInfo, view: &ClusterView, catalog: &Catalog) -> Option<f64> {
    let loaded = crate::model::load::snapshot_from_objects(&view.pools, catalog).ok()?;
    let mut snapshot = loaded.snapshot;
    snapshot.pods = vec![pod.clone()];
    snapshot.budgets.clear();
    let options = PlanOptions {
        strategy: Strategy::Ffd,
        ..PlanOptions::default()
    };
    let plan = crate::solver::plan(&snapshot, catalog, &options);
    let node = plan.node_claims.first()?;
    let capacity = &catalog.find(&node.instance_type)?.capacity;
    Some(UnitPrices::split(node.hourly_price, capacity).allocate(&pod.requests))
}

/// The AdmissionReview response for `verdict`.
fn respond(uid: &str, verdict: &Verdict) -> Answer {
    let mut response = json!({"uid": uid, "allowed": verdict.allowed});
    if let Some(message) = &verdict.message {
        response["status"] = json!({"code": 403, "reason": "Forbidden", "message": message});
    }
    if !verdict.warnings.is_empty() {
        response["warnings"] = json!(verdict.warnings);
    }
    Answer {
        status: 200,
        body: json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fail_open: bool) -> Settings {
        Settings {
            policies: Policies::default(),
            fail_open,
        }
    }

    fn admission(object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE", "namespace": "vision", "object": object}
        }))
        .unwrap()
    }

    fn pod(labels: Value, cpu: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": labels},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}})
    }

    fn view() -> ClusterView {
        ClusterView {
            pools: vec![
                json!({"apiVersion": "purser.dev/v1", "kind": "NodePool", "metadata": {"name": "general"},
                "spec": {"template": {"spec": {"requirements": [
                    {"key": "purser.dev/capacity-type", "operator": "In", "values": ["on-demand"]},
                    {"key": "purser.dev/instance-family", "operator": "In", "values": ["m5"]}]}}}}),
            ],
            budgets: vec![
                json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": "team-vision"},
                "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": 1.0},
                "status": {"runRate": 0.95}}),
            ],
            namespaces: BTreeMap::new(),
            ..ClusterView::default()
        }
    }

    #[test]
    fn a_pod_that_would_overrun_its_budget_is_denied_with_the_numbers() {
        let catalog = Catalog::embedded();
        let answer = review(
            &admission(pod(json!({"cost-centre": "cc"}), "2")),
            &settings(true),
            &view(),
            &catalog,
        );
        assert_eq!(answer.status, 200);
        let response = &answer.body["response"];
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["allowed"], false, "{answer:?}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("budget team-vision: 0.95 + "), "{message}");
        assert!(message.contains("> 1.00 USD/h"), "{message}");
        let small = review(
            &admission(pod(json!({"cost-centre": "cc"}), "10m")),
            &settings(true),
            &view(),
            &catalog,
        );
        assert_eq!(small.body["response"]["allowed"], true, "{small:?}");
    }

    #[test]
    fn malformed_bodies_and_objects_get_clear_answers() {
        let catalog = Catalog::embedded();
        let view = ClusterView::default();
        let not_json = review(b"{not json", &settings(true), &view, &catalog);
        assert_eq!(not_json.status, 400);
        assert!(not_json.body["error"].as_str().unwrap().contains("not JSON"));
        let no_uid = review(br#"{"request": {}}"#, &settings(true), &view, &catalog);
        assert_eq!(no_uid.status, 400);
        assert!(no_uid.body["error"].as_str().unwrap().contains("request.uid"));
        let bad_pod = admission(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}}));
        let open = review(&bad_pod, &settings(true), &view, &catalog);
        assert_eq!(open.body["response"]["allowed"], true);
        assert!(
            open.body["response"]["warnings"][0]
                .as_str()
                .unwrap()
                .contains("fail-open")
        );
        let closed = review(&bad_pod, &settings(false), &view, &catalog);
        assert_eq!(closed.body["response"]["allowed"], false);
        assert!(
            closed.body["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("cpu"),
            "{closed:?}"
        );
        let not_a_pod = admission(json!({"spec": {"containers": "nope"}}));
        let answer = review(&not_a_pod, &settings(false), &view, &catalog);
        assert!(
            answer.body["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("not a Pod")
        );
    }

    #[test]
    fn a_malformed_cost_budget_is_left_out_with_its_reason_and_blocks_nothing() {
        let catalog = Catalog::embedded();
        let mut view = view();
        view.budgets
            .push(json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget",
            "metadata": {"name": "broken"},
            "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": -1.0}}));
        let big = review(
            &admission(pod(json!({"cost-centre": "cc"}), "2")),
            &settings(false),
            &view,
            &catalog,
        );
        let message = big.body["response"]["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("budget team-vision: "), "{message}");
        let small = review(
            &admission(pod(json!({"cost-centre": "cc"}), "10m")),
            &settings(false),
            &view,
            &catalog,
        );
        assert_eq!(small.body["response"]["allowed"], true, "{small:?}");
        let loaded = view.loaded.get().expect("loaded by the first review");
        assert_eq!(loaded.views.len(), 1);
        assert_eq!(loaded.errors.len(), 1);
        assert!(
            loaded.errors[0].starts_with("CostBudget broken is not enforced: "),
            "{:?}",
            loaded.errors
        );
    }

    #[test]
    fn reviews_read_the_budgets_loaded_with_the_view() {
        let catalog = Catalog::embedded();
        let view = view();
        let mut loaded = load_budgets(&view.budgets, &catalog);
        loaded.views[0].run_rate = 0.0;
        view.loaded.set(loaded).unwrap();
        let answer = review(
            &admission(pod(json!({"cost-centre": "cc"}), "2")),
            &settings(true),
            &view,
            &catalog,
        );
        assert_eq!(answer.body["response"]["allowed"], true, "{answer:?}");
    }

    #[test]
    fn reviews_the_webhook_was_not_configured_to_judge_are_allowed() {
        let catalog = Catalog::embedded();
        let body = serde_json::to_vec(&json!({"request": {"uid": "u-2",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "operation": "CREATE",
            "object": {"bogus": true}}}))
        .unwrap();
        let answer = review(&body, &settings(false), &ClusterView::default(), &catalog);
        assert_eq!(answer.body["response"]["allowed"], true);
        assert!(answer.body["response"].get("status").is_none());
    }
}
