//! The test API server driven by the real `kube::Client`: CRUD, concurrency, patches, status,
//! finalizers, selectors, eviction and binding.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use purser_test_apiserver::TestApiServer;
use serde_json::{Value, json};

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step timed out")
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn pod(name: &str, labels: Value, node: Option<&str>, phase: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": node},
        "status": {"phase": phase},
    }))
    .expect("valid pod")
}

#[tokio::test]
async fn pod_crud_with_generate_name() {
    bounded(async {
        let server = TestApiServer::start().await;
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        let mut new = pod("", json!({"app": "web"}), None, "Pending");
        new.metadata.name = None;
        new.metadata.generate_name = Some("web-".into());
        let created = pods.create(&PostParams::default(), &new).await.unwrap();
        let name = created.metadata.name.clone().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert!(created.metadata.uid.is_some());
        assert!(created.metadata.creation_timestamp.is_some());
        assert_eq!(created.metadata.generation, Some(1));
        let fetched = pods.get(&name).await.unwrap();
        assert_eq!(fetched.metadata.resource_version, created.metadata.resource_version);
        assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 1);

        let mut changed = fetched.clone();
        changed
            .metadata
            .labels
            .get_or_insert_default()
            .insert("tier".into(), "front".into());
        let replaced = pods.replace(&name, &PostParams::default(), &changed).await.unwrap();
        assert_ne!(replaced.metadata.resource_version, created.metadata.resource_version);
        assert_eq!(
            replaced.metadata.generation,
            Some(1),
            "metadata changes keep the generation"
        );

        pods.delete(&name, &DeleteParams::default()).await.unwrap();
        assert_eq!(api_error(pods.get(&name).await).code, 404);
        let again = api_error(pods.delete(&name, &DeleteParams::default()).await);
        assert_eq!((again.code, again.reason.as_str()), (404, "NotFound"));
    })
    .await;
}

#[tokio::test]
async fn nodes_and_leases_crud_and_already_exists() {
    bounded(async {
        let server = TestApiServer::start().await;
        let nodes: Api<Node> = Api::all(server.client());
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let dup = api_error(nodes.create(&PostParams::default(), &node).await);
        assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
        assert_eq!(nodes.list(&ListParams::default()).await.unwrap().items.len(), 1);

        let leases: Api<Lease> = Api::namespaced(server.client(), "kube-system");
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}})).unwrap();
        leases.create(&PostParams::default(), &lease).await.unwrap();
        let got = leases.get("l").await.unwrap();
        assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("a"));
        leases.delete("l", &DeleteParams::default()).await.unwrap();
        nodes.delete("n1", &DeleteParams::default()).await.unwrap();
        assert!(nodes.list(&ListParams::default()).await.unwrap().items.is_empty());

        let missing_ns: Api<Lease> = Api::namespaced(server.client(), "nope");
        assert_eq!(
            api_error(missing_ns.create(&PostParams::default(), &lease).await).code,
            404
        );
    })
    .await;
}

#[tokio::test]
async fn stale_update_is_a_conflict() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
        let created = cms.create(&PostParams::default(), &cm).await.unwrap();
        let mut first = created.clone();
        first.data.get_or_insert_default().insert("a".into(), "2".into());
        cms.replace("c", &PostParams::default(), &first).await.unwrap();
        let mut stale = created.clone();
        stale.data.get_or_insert_default().insert("a".into(), "3".into());
        let err = api_error(cms.replace("c", &PostParams::default(), &stale).await);
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert!(err.message.contains("the object has been modified"), "{}", err.message);
        let stale_patch =
            json!({"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"a": "4"}});
        let err = api_error(
            cms.patch("c", &PatchParams::default(), &Patch::Merge(&stale_patch))
                .await,
        );
        assert_eq!(err.code, 409);
    })
    .await;
}

#[tokio::test]
async fn merge_json_strategic_and_apply_patches() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();

        let merged = cms
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
            )
            .await
            .unwrap();
        assert_eq!(merged.data.clone().unwrap().len(), 2);
        let ops: json_patch::Patch =
            serde_json::from_value(json!([{"op": "replace", "path": "/data/b", "value": "20"}])).unwrap();
        let patched = cms
            .patch("c", &PatchParams::default(), &Patch::<()>::Json(ops))
            .await
            .unwrap();
        assert_eq!(patched.data.as_ref().unwrap()["b"], "20");
        let failing: json_patch::Patch =
            serde_json::from_value(json!([{"op": "test", "path": "/data/b", "value": "x"}])).unwrap();
        assert_eq!(
            api_error(
                cms.patch("c", &PatchParams::default(), &Patch::<()>::Json(failing))
                    .await
            )
            .code,
            422
        );
        let strategic = cms
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Strategic(json!({"data": {"d": "4"}})),
            )
            .await
            .unwrap();
        assert_eq!(strategic.data.as_ref().unwrap()["d"], "4");

        let apply = PatchParams::apply("mgr-a");
        let config =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}, "data": {"x": "1", "y": "2"}});
        let created = cms.patch("new", &apply, &Patch::Apply(&config)).await.unwrap();
        assert_eq!(created.data.as_ref().unwrap()["x"], "1");
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}, "data": {"x": "9"}});
        let conflict = api_error(
            cms.patch("new", &PatchParams::apply("mgr-b"), &Patch::Apply(&other))
                .await,
        );
        assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
        assert!(
            conflict.message.contains("mgr-a") && conflict.message.contains(".data.x"),
            "{}",
            conflict.message
        );
        let forced = cms
            .patch("new", &PatchParams::apply("mgr-b").force(), &Patch::Apply(&other))
            .await
            .unwrap();
        assert_eq!(forced.data.as_ref().unwrap()["x"], "9");
        let shrunk = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}, "data": {}});
        let after = cms.patch("new", &apply, &Patch::Apply(&shrunk)).await.unwrap();
        let data = after.data.unwrap_or_default();
        assert_eq!(data.get("y"), None, "a field the manager stopped applying is removed");
        assert_eq!(data["x"], "9", "a field another manager took over stays");
        assert_eq!(server.count("PATCH", "/configmaps/new"), 4);
    })
    .await;
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status() {
    bounded(async {
        let server = TestApiServer::start().await;
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        pods.create(&PostParams::default(), &pod("p", json!({}), None, "Pending"))
            .await
            .unwrap();
        let status = json!({"status": {"phase": "Running"}, "spec": {"nodeName": "ignored"}});
        let after = pods
            .patch_status("p", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        assert_eq!(after.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
        assert_eq!(
            after.spec.as_ref().unwrap().node_name,
            None,
            "status writes ignore spec"
        );
        let main = json!({"status": {"phase": "Failed"}, "spec": {"activeDeadlineSeconds": 5}});
        let after = pods
            .patch("p", &PatchParams::default(), &Patch::Merge(&main))
            .await
            .unwrap();
        assert_eq!(
            after.status.as_ref().unwrap().phase.as_deref(),
            Some("Running"),
            "main writes keep status"
        );
        assert_eq!(after.metadata.generation, Some(2), "a spec change bumps the generation");
        let mut replaced = pods.get_status("p").await.unwrap();
        replaced.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let after = pods
            .replace_status("p", &PostParams::default(), &replaced)
            .await
            .unwrap();
        assert_eq!(after.status.unwrap().phase.as_deref(), Some("Succeeded"));
    })
    .await;
}

#[tokio::test]
async fn finalizers_delay_deletion() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "f", "finalizers": ["purser.dev/cleanup"]}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
        cms.delete("f", &DeleteParams::default()).await.unwrap();
        let deleting = cms.get("f").await.unwrap();
        assert!(deleting.metadata.deletion_timestamp.is_some());
        let removal = json!({"metadata": {"finalizers": null}});
        cms.patch("f", &PatchParams::default(), &Patch::Merge(&removal))
            .await
            .unwrap();
        assert_eq!(api_error(cms.get("f").await).code, 404);

        let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "g"}})).unwrap();
        let created = cms.create(&PostParams::default(), &plain).await.unwrap();
        let with_uid = |uid: Option<String>| DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        assert_eq!(
            api_error(cms.delete("g", &with_uid(Some("other".into()))).await).code,
            409
        );
        cms.delete("g", &with_uid(created.metadata.uid)).await.unwrap();
        assert_eq!(api_error(cms.get("g").await).code, 404);
    })
    .await;
}

#[tokio::test]
async fn label_and_field_selectors() {
    bounded(async {
        let server = TestApiServer::start().await;
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        for (name, labels, node, phase) in [
            ("a", json!({"app": "web", "tier": "front"}), Some("n1"), "Running"),
            ("b", json!({"app": "api"}), Some("n2"), "Running"),
            ("c", json!({"app": "db", "legacy": "yes"}), None, "Pending"),
        ] {
            pods.create(&PostParams::default(), &pod(name, labels, node, phase))
                .await
                .unwrap();
        }
        let names = |list: kube::core::ObjectList<Pod>| {
            let mut n: Vec<String> = list.items.into_iter().filter_map(|p| p.metadata.name).collect();
            n.sort();
            n
        };
        let by_labels = |s: &str| ListParams::default().labels(s);
        assert_eq!(
            names(pods.list(&by_labels("app in (web,api)")).await.unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            names(pods.list(&by_labels("app notin (web),!legacy")).await.unwrap()),
            ["b"]
        );
        assert_eq!(names(pods.list(&by_labels("tier")).await.unwrap()), ["a"]);
        assert_eq!(names(pods.list(&by_labels("app!=web")).await.unwrap()), ["b", "c"]);
        assert_eq!(names(pods.list(&by_labels("app==db")).await.unwrap()), ["c"]);
        let by_fields = |s: &str| ListParams::default().fields(s);
        assert_eq!(names(pods.list(&by_fields("spec.nodeName=n1")).await.unwrap()), ["a"]);
        assert_eq!(names(pods.list(&by_fields("spec.nodeName=")).await.unwrap()), ["c"]);
        assert_eq!(
            names(pods.list(&by_fields("status.phase!=Running")).await.unwrap()),
            ["c"]
        );
        assert_eq!(
            names(
                pods.list(&by_fields("metadata.name==b,status.phase=Running"))
                    .await
                    .unwrap()
            ),
            ["b"]
        );
        let all: Api<Pod> = Api::all(server.client());
        assert_eq!(
            names(all.list(&by_fields("metadata.namespace=default")).await.unwrap()).len(),
            3
        );
        assert_eq!(api_error(pods.list(&by_fields("spec.bogus=1")).await).code, 400);
        assert_eq!(api_error(pods.list(&by_labels("app in web")).await).code, 400);
        assert_eq!(
            names(pods.list(&ListParams::default().limit(1)).await.unwrap()).len(),
            3
        );
    })
    .await;
}

fn pdb(name: &str, spec: Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test]
async fn eviction_honours_disruption_budgets() {
    bounded(async {
        let server = TestApiServer::start().await;
        let client = server.client();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
        for name in ["w1", "w2"] {
            pods.create(
                &PostParams::default(),
                &pod(name, json!({"app": "web"}), Some("n1"), "Running"),
            )
            .await
            .unwrap();
        }
        let selector = json!({"matchLabels": {"app": "web"}});
        pdbs.create(
            &PostParams::default(),
            &pdb("none", json!({"maxUnavailable": 0, "selector": selector})),
        )
        .await
        .unwrap();
        let refused = api_error(pods.evict("w1", &EvictParams::default()).await);
        assert_eq!((refused.code, refused.reason.as_str()), (429, "TooManyRequests"));
        assert!(refused.message.contains("disruption budget"), "{}", refused.message);
        assert!(pods.get("w1").await.is_ok());

        pdbs.delete("none", &DeleteParams::default()).await.unwrap();
        pdbs.create(
            &PostParams::default(),
            &pdb("half", json!({"minAvailable": "50%", "selector": selector})),
        )
        .await
        .unwrap();
        let status = pods.evict("w1", &EvictParams::default()).await.unwrap();
        assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
        assert_eq!(api_error(pods.get("w1").await).code, 404);
        assert_eq!(api_error(pods.evict("w2", &EvictParams::default()).await).code, 429);

        pods.create(
            &PostParams::default(),
            &pod("free", json!({"app": "other"}), Some("n1"), "Running"),
        )
        .await
        .unwrap();
        pods.evict("free", &EvictParams::default()).await.unwrap();
        assert_eq!(
            api_error(pods.evict("missing", &EvictParams::default()).await).code,
            404
        );
    })
    .await;
}

#[tokio::test]
async fn binding_assigns_a_node_once() {
    bounded(async {
        let server = TestApiServer::start().await;
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        pods.create(&PostParams::default(), &pod("p", json!({}), None, "Pending")).await.unwrap();
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
        let _: Value = pods.create_subresource("binding", "p", &PostParams::default(), &binding).await.unwrap();
        let bound = pods.get("p").await.unwrap();
        assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("n1"));
        let again = pods.create_subresource::<Value, Value>("binding", "p", &PostParams::default(), &binding).await;
        assert_eq!(api_error(again).code, 409);
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_a_status_not_a_panic() {
    bounded(async {
        let server = TestApiServer::start().await;
        let client = server.client();
        let cases = [
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                "{not json",
                "application/json",
                400,
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                "[1]",
                "application/json",
                400,
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                r#"{"metadata":{}}"#,
                "application/json",
                422,
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                r#"{"metadata":{"name":"Bad_Name"}}"#,
                "application/json",
                422,
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                r#"{"kind":"Node","metadata":{"name":"x"}}"#,
                "application/json",
                400,
            ),
            ("PATCH", "/api/v1/namespaces/default/pods/x", "{}", "text/plain", 415),
            ("GET", "/api/v1/namespaces/default/widgets", "", "application/json", 404),
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc",
                "",
                "application/json",
                400,
            ),
            ("PUT", "/api/v1/namespaces/default/pods", "{}", "application/json", 405),
            (
                "POST",
                "/api/v1/namespaces/default/pods/x/eviction",
                "{}",
                "application/json",
                404,
            ),
        ];
        for (method, path, body, content_type, code) in cases {
            let (status, body) = http_request(&client, method, path, body, content_type).await;
            assert_eq!(status, code, "{method} {path}: {body}");
            let parsed: Value = serde_json::from_str(&body).expect("a JSON Status");
            assert_eq!(parsed["kind"], "Status", "{body}");
            assert_eq!(parsed["code"], code);
        }
    })
    .await;
}

async fn http_request(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: &str,
    content_type: &str,
) -> (u16, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap();
    let response = client.send(request.map(kube::client::Body::from)).await.unwrap();
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn discovery_lists_builtin_and_custom_resources() {
    bounded(async {
        let server = TestApiServer::start().await;
        let discovery = kube::Discovery::new(server.client()).run().await.unwrap();
        let core = discovery.get("").expect("core group");
        assert!(core.recommended_resources().iter().any(|(r, _)| r.plural == "pods"));
        assert!(discovery.get("coordination.k8s.io").is_some());
        let version = server.client().apiserver_version().await.unwrap();
        assert_eq!(version.major, "1");
    })
    .await;
}

#[tokio::test]
async fn delete_collection_and_namespace_cascade() {
    bounded(async {
        let server = TestApiServer::start().await;
        let client = server.client();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let ns = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
        for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
            let cm = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).unwrap();
            cms.create(&PostParams::default(), &cm).await.unwrap();
        }
        let deleted = cms
            .delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=x"))
            .await
            .unwrap();
        assert_eq!(deleted.left().map(|l| l.items.len()), Some(2));
        assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 1);
        namespaces.delete("team", &DeleteParams::default()).await.unwrap();
        assert_eq!(api_error(cms.get("c").await).code, 404);
    })
    .await;
}

#[tokio::test]
async fn strategic_merge_patch_merges_keyed_lists() {
    bounded(async {
        let server = TestApiServer::start().await;
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        let mut p = pod("p", json!({}), Some("n1"), "Running");
        p.metadata.finalizers = Some(vec!["a".into()]);
        pods.create(&PostParams::default(), &p).await.unwrap();
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status("p", &PatchParams::default(), &Patch::Strategic(&ready))
            .await
            .unwrap();
        let nominated = json!({"status": {"conditions": [{"type": "purser.dev/Nominated", "status": "True"}]}});
        let after = pods
            .patch_status("p", &PatchParams::default(), &Patch::Strategic(&nominated))
            .await
            .unwrap();
        let types: Vec<String> = after
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Ready", "purser.dev/Nominated"]);
        let more = json!({"metadata": {"finalizers": ["b"]}});
        let after = pods
            .patch("p", &PatchParams::default(), &Patch::Strategic(&more))
            .await
            .unwrap();
        assert_eq!(after.metadata.finalizers.unwrap(), ["a", "b"]);
        let merged = pods
            .patch("p", &PatchParams::default(), &Patch::Merge(&more))
            .await
            .unwrap();
        assert_eq!(
            merged.metadata.finalizers.unwrap(),
            ["b"],
            "a merge patch replaces lists"
        );
    })
    .await;
}
