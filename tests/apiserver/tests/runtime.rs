//! The test API server under kube-runtime and friends: raw watches with bookmarks, 410 after
//! compaction, the watcher relisting, CRDs with schema and CEL validation, the event
//! Recorder, and leader election with kube-lease-manager.

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::{PartialObjectMeta, Status};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use purser_test_apiserver::{Options, TestApiServer};
use serde_json::{Value, json};

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test step timed out")
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn watch_streams_events_and_bookmarks() {
    bounded(async {
        let options = Options {
            bookmark_interval: Duration::from_millis(200),
        };
        let server = TestApiServer::start_with(options).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        cms.create(&PostParams::default(), &config_map("before", json!({})))
            .await
            .unwrap();
        let rv = cms
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut events = cms
            .watch(
                &WatchParams {
                    bookmarks: true,
                    ..WatchParams::default()
                }
                .timeout(10),
                &rv,
            )
            .await
            .unwrap()
            .boxed();

        cms.create(&PostParams::default(), &config_map("w", json!({"a": "1"})))
            .await
            .unwrap();
        cms.patch("w", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}})))
            .await
            .unwrap();
        cms.delete("w", &DeleteParams::default()).await.unwrap();

        let mut seen = Vec::new();
        while seen.len() < 4 {
            match events.try_next().await.unwrap().expect("stream open") {
                WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.name_any())),
                WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.name_any())),
                WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.name_any())),
                WatchEvent::Bookmark(b) => {
                    assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap());
                    if seen.len() == 3 {
                        seen.push("BOOKMARK".into());
                    }
                }
                WatchEvent::Error(e) => panic!("unexpected watch error {e:?}"),
            }
        }
        assert_eq!(seen, ["ADDED w", "MODIFIED w", "DELETED w", "BOOKMARK"]);
        let selected = cms
            .watch(&WatchParams::default().labels("a=1").timeout(1), &rv)
            .await
            .unwrap()
            .try_filter(|e| std::future::ready(!matches!(e, WatchEvent::Bookmark(_))))
            .try_collect::<Vec<_>>()
            .await;
        assert_eq!(
            selected.unwrap().len(),
            3,
            "replayed history honours the label selector"
        );
    })
    .await;
}

#[tokio::test]
async fn watch_from_compacted_version_is_gone() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        let old = cms
            .create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap();
        cms.create(&PostParams::default(), &config_map("b", json!({})))
            .await
            .unwrap();
        server.compact();
        let rv = old.resource_version().unwrap();
        let mut events = cms.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
        match events.try_next().await.unwrap() {
            Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
            other => panic!("expected a 410 ERROR event, got {other:?}"),
        }
        let current = server.resource_version().to_string();
        cms.create(&PostParams::default(), &config_map("c", json!({})))
            .await
            .unwrap();
        let mut fresh = cms.watch(&WatchParams::default(), &current).await.unwrap().boxed();
        assert!(matches!(fresh.try_next().await.unwrap(), Some(WatchEvent::Added(_))));
    })
    .await;
}

fn lists(server: &TestApiServer) -> usize {
    server
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/configmaps") && !r.query.contains("watch=true"))
        .count()
}

#[tokio::test]
async fn watcher_relists_after_410_and_recovers_from_unavailability() {
    bounded(async {
        let options = Options {
            bookmark_interval: Duration::from_secs(3600),
        };
        let server = TestApiServer::start_with(options).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        cms.create(&PostParams::default(), &config_map("one", json!({"app": "web"})))
            .await
            .unwrap();
        let (reader, writer) = reflector::store();
        let config = watcher::Config::default().labels("app=web");
        let stream = reflector(writer, watcher(cms.clone(), config))
            .default_backoff()
            .applied_objects();
        let task = tokio::spawn(stream.for_each(|_| async {}));
        eventually("initial sync", || reader.state().len() == 1).await;
        assert_eq!(lists(&server), 1);

        cms.create(&PostParams::default(), &config_map("ignored", json!({"app": "other"})))
            .await
            .unwrap();
        server.compact();
        server.close_watches();
        eventually("relist after 410", || lists(&server) == 2).await;
        cms.create(&PostParams::default(), &config_map("two", json!({"app": "web"})))
            .await
            .unwrap();
        eventually("event after relist", || reader.state().len() == 2).await;

        server.set_available(false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.set_available(true);
        cms.create(&PostParams::default(), &config_map("three", json!({"app": "web"})))
            .await
            .unwrap();
        eventually("event after outage", || reader.state().len() == 3).await;
        assert!(
            server
                .request_log()
                .iter()
                .any(|r| r.query.contains("allowWatchBookmarks=true"))
        );
        task.abort();
    })
    .await;
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.purser.dev
spec:
  group: test.purser.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              x-kubernetes-validations:
                - rule: "!has(self.max) || self.size <= self.max"
                  message: size must not exceed max
              properties:
                size:
                  type: integer
                  minimum: 1
                  maximum: 10
                  x-kubernetes-validations:
                    - rule: "self >= oldSelf"
                      message: size may not decrease
                max: {type: integer}
                mode: {type: string, enum: [fast, cheap], default: cheap}
                zone: {type: string, pattern: "^[a-z]+-[0-9]$"}
            status:
              type: object
              properties:
                ready: {type: boolean}
"#;

fn widgets(server: &TestApiServer) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("test.purser.dev", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    Api::namespaced_with(server.client(), "default", &resource)
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "test.purser.dev/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec, "status": {"ready": true},
    }))
    .unwrap()
}

fn cause_fields(status: &Status) -> Vec<String> {
    status
        .details
        .as_ref()
        .map(|d| d.causes.iter().map(|c| c.field.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn crd_schema_validation_pruning_and_cel() {
    bounded(async {
        let server = TestApiServer::start().await;
        assert_eq!(server.install_crds(&[WIDGET_CRD]).unwrap(), ["widgets.test.purser.dev"]);
        let api = widgets(&server);

        let created = api
            .create(
                &PostParams::default(),
                &widget("ok", json!({"size": 3, "extra": "dropped"})),
            )
            .await
            .unwrap();
        assert_eq!(
            created.data["spec"],
            json!({"size": 3, "mode": "cheap"}),
            "pruned and defaulted"
        );
        assert_eq!(created.data.get("status"), None, "status is dropped on create");
        assert_eq!(api.get("ok").await.unwrap().data["spec"]["extra"], Value::Null);

        let too_small = api_error(
            api.create(&PostParams::default(), &widget("bad", json!({"size": 0})))
                .await,
        );
        assert_eq!((too_small.code, too_small.reason.as_str()), (422, "Invalid"));
        assert!(
            too_small
                .message
                .contains("Widget.test.purser.dev \"bad\" is invalid: spec.size"),
            "{}",
            too_small.message
        );
        assert!(
            too_small.message.contains("greater than or equal to 1"),
            "{}",
            too_small.message
        );
        assert_eq!(cause_fields(&too_small), ["spec.size"]);

        let missing = api_error(api.create(&PostParams::default(), &widget("bad", json!({}))).await);
        assert!(
            missing.message.contains("spec.size: Required value"),
            "{}",
            missing.message
        );
        let wrong = api_error(
            api.create(
                &PostParams::default(),
                &widget("bad", json!({"size": "big", "mode": "slow", "zone": "X"})),
            )
            .await,
        );
        let mut fields = cause_fields(&wrong);
        fields.sort();
        assert_eq!(fields, ["spec.mode", "spec.size", "spec.zone"], "{}", wrong.message);

        let rule = api_error(
            api.create(&PostParams::default(), &widget("bad", json!({"size": 5, "max": 3})))
                .await,
        );
        assert!(rule.message.contains("size must not exceed max"), "{}", rule.message);
        assert_eq!(cause_fields(&rule), ["spec"]);

        let shrink = api_error(
            api.patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 2}})),
            )
            .await,
        );
        assert!(shrink.message.contains("size may not decrease"), "{}", shrink.message);
        let strategic = api
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 4}})),
            )
            .await;
        assert_eq!(
            api_error(strategic).code,
            415,
            "custom resources do not take strategic merge patches"
        );
        let grown = api
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 4}})),
            )
            .await
            .unwrap();
        assert_eq!(grown.metadata.generation, Some(2));

        let status = api
            .patch_status(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
            )
            .await
            .unwrap();
        assert_eq!(status.data["status"]["ready"], true);
        assert_eq!(status.data["spec"]["size"], 4);
        assert_eq!(status.metadata.generation, Some(2), "status writes keep the generation");
    })
    .await;
}

#[tokio::test]
async fn crd_created_through_the_api_is_served_and_removed() {
    bounded(async {
        let server = TestApiServer::start().await;
        let crds: Api<CustomResourceDefinition> = Api::all(server.client());
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": "gadgets.test.purser.dev"},
            "spec": {
                "group": "test.purser.dev", "scope": "Cluster",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        }))
        .unwrap();
        let created = crds.create(&PostParams::default(), &crd).await.unwrap();
        let established = created.status.unwrap().conditions.unwrap_or_default();
        assert!(
            established
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        );

        let gvk = GroupVersionKind::gvk("test.purser.dev", "v1alpha1", "Gadget");
        let gadgets: Api<DynamicObject> =
            Api::all_with(server.client(), &ApiResource::from_gvk_with_plural(&gvk, "gadgets"));
        let gadget: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "test.purser.dev/v1alpha1", "kind": "Gadget", "metadata": {"name": "g"}, "anything": [1, 2]}))
        .unwrap();
        let stored = gadgets.create(&PostParams::default(), &gadget).await.unwrap();
        assert_eq!(stored.data["anything"], json!([1, 2]));
        let discovery = kube::Discovery::new(server.client()).run().await.unwrap();
        assert!(discovery.get("test.purser.dev").is_some());

        crds.delete("gadgets.test.purser.dev", &DeleteParams::default())
            .await
            .unwrap();
        assert_eq!(api_error(gadgets.list(&ListParams::default()).await).code, 404);
    })
    .await;
}

#[tokio::test]
async fn recorder_publishes_events_k8s_io_events() {
    bounded(async {
        let server = TestApiServer::start().await;
        let client = server.client();
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": []}})).unwrap();
        let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
        let reporter = Reporter {
            controller: "purser".into(),
            instance: Some("test".into()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        let event = Event {
            type_: EventType::Normal,
            reason: "Nominated".into(),
            note: Some("pod nominated for a new node".into()),
            action: "Provision".into(),
            secondary: None,
        };
        recorder.publish(&event, &pod.object_ref(&())).await.unwrap();
        recorder.publish(&event, &pod.object_ref(&())).await.unwrap();
        let events: Api<K8sEvent> = Api::default_namespaced(client);
        let listed = events.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reason.as_deref(), Some("Nominated"));
        assert_eq!(listed[0].regarding.as_ref().and_then(|r| r.name.as_deref()), Some("p"));
        assert_eq!(
            listed[0].series.as_ref().map(|s| s.count),
            Some(2),
            "the repeat is a series patch"
        );
    })
    .await;
}

#[tokio::test]
async fn lease_manager_elects_one_leader_and_fails_over() {
    bounded(async {
        let server = TestApiServer::start().await;
        let build = |identity: &str| {
            LeaseManagerBuilder::new(server.client(), "purser-leader")
                .with_namespace("kube-system")
                .with_identity(identity)
                .with_duration(3)
                .with_grace(1)
                .build()
        };
        let (mut a, a_task) = build("a").await.unwrap().watch().await;
        let (mut b, b_task) = build("b").await.unwrap().watch().await;
        let mut leader_seen = false;
        for _ in 0..200 {
            let (ha, hb) = (*a.borrow_and_update(), *b.borrow_and_update());
            assert!(!(ha && hb), "both managers hold the lease");
            if ha || hb {
                leader_seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(leader_seen, "nobody acquired the lease");
        let (mut leader, leader_task, mut follower, follower_task) = if *a.borrow() {
            (a, a_task, b, b_task)
        } else {
            (b, b_task, a, a_task)
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            *leader.borrow_and_update() && !*follower.borrow_and_update(),
            "exactly one leader"
        );

        drop(leader);
        leader_task.await.unwrap().unwrap();
        follower.wait_for(|held| *held).await.unwrap();
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(server.client(), "kube-system");
        let spec = leases.get("purser-leader").await.unwrap().spec.unwrap();
        assert!(spec.holder_identity.is_some());
        assert!(spec.lease_transitions.unwrap_or_default() >= 2);
        assert!(
            server
                .request_log()
                .iter()
                .any(|r| r.content_type.starts_with("application/apply-patch"))
        );
        drop(follower);
        follower_task.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_end() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        cms.create(&PostParams::default(), &config_map("one", json!({})))
            .await
            .unwrap();
        let (reader, writer) = reflector::store();
        let config = watcher::Config::default().streaming_lists();
        let stream = reflector(writer, watcher(cms.clone(), config)).applied_objects();
        let task = tokio::spawn(stream.for_each(|_| async {}));
        reader.wait_until_ready().await.unwrap();
        assert_eq!(reader.state().len(), 1);
        cms.create(&PostParams::default(), &config_map("two", json!({})))
            .await
            .unwrap();
        eventually("watched after the initial events", || reader.state().len() == 2).await;
        assert!(
            server
                .request_log()
                .iter()
                .any(|r| r.query.contains("sendInitialEvents=true"))
        );
        assert_eq!(lists(&server), 0, "a streaming list never lists");
        task.abort();
    })
    .await;
}

mod controller {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::finalizer::{Event as Finalizer, finalizer};

    use super::*;

    const FINALIZER: &str = "purser.dev/test-cleanup";

    struct Context {
        api: Api<ConfigMap>,
        cleanups: AtomicUsize,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reconcile failed: {0}")]
    struct Failed(String);

    async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, Failed> {
        finalizer(&ctx.api, FINALIZER, cm, |event| async {
            match event {
                Finalizer::Apply(cm) => {
                    let mark = json!({"metadata": {"annotations": {"reconciled": "true"}}});
                    ctx.api
                        .patch(&cm.name_any(), &PatchParams::default(), &Patch::Merge(&mark))
                        .await
                        .map_err(|e| Failed(e.to_string()))?;
                    Ok(Action::await_change())
                }
                Finalizer::Cleanup(_) => {
                    ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Failed>(Action::await_change())
                }
            }
        })
        .await
        .map_err(|e| Failed(e.to_string()))
    }

    fn error_policy(_: Arc<ConfigMap>, _: &Failed, _: Arc<Context>) -> Action {
        Action::requeue(Duration::from_millis(50))
    }

    #[tokio::test]
    async fn controller_with_finalizer_reconciles_and_cleans_up() {
        bounded(async {
            let server = TestApiServer::start().await;
            let api: Api<ConfigMap> = Api::default_namespaced(server.client());
            let ctx = Arc::new(Context {
                api: api.clone(),
                cleanups: AtomicUsize::new(0),
            });
            let controller = Controller::new(api.clone(), watcher::Config::default())
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|_| async {});
            let task = tokio::spawn(controller);

            api.create(&PostParams::default(), &config_map("managed", json!({})))
                .await
                .unwrap();
            for _ in 0..500 {
                let cm = api.get("managed").await.unwrap();
                if cm.annotations().contains_key("reconciled") {
                    assert_eq!(cm.finalizers(), [FINALIZER]);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                api.get("managed")
                    .await
                    .unwrap()
                    .annotations()
                    .contains_key("reconciled")
            );

            api.delete("managed", &DeleteParams::default()).await.unwrap();
            for _ in 0..500 {
                if api.get_opt("managed").await.unwrap().is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                api.get_opt("managed").await.unwrap().is_none(),
                "finalizer removed, object gone"
            );
            assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
            task.abort();
        })
        .await;
    }
}

#[tokio::test]
async fn lease_manager_takes_over_an_expired_lease_of_a_crashed_holder() {
    bounded(async {
        let server = TestApiServer::start().await;
        let build = |identity: &str| {
            LeaseManagerBuilder::new(server.client(), "purser-crash")
                .with_namespace("kube-system")
                .with_identity(identity)
                .with_duration(2)
                .with_grace(1)
                .build()
        };
        let (mut first, first_task) = build("first").await.unwrap().watch().await;
        first.wait_for(|held| *held).await.unwrap();
        let (mut second, second_task) = build("second").await.unwrap().watch().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!*second.borrow_and_update(), "the lease is held by the first manager");
        first_task.abort();
        second.wait_for(|held| *held).await.unwrap();
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(server.client(), "kube-system");
        let spec = leases.get("purser-crash").await.unwrap().spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("second"));
        drop(second);
        second_task.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn metadata_watcher_and_metadata_requests_get_partial_objects() {
    bounded(async {
        let server = TestApiServer::start().await;
        let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
        let mut cm = config_map("m", json!({"app": "web"}));
        cm.data = Some([("big".to_owned(), "x".repeat(64))].into());
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let meta = cms.get_metadata("m").await.unwrap();
        assert_eq!(meta.metadata.labels.unwrap()["app"], "web");
        assert_eq!(meta.types.unwrap().kind, "PartialObjectMetadata");
        let listed = cms.list_metadata(&ListParams::default()).await.unwrap();
        assert_eq!(listed.items.len(), 1);

        let partial: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(server.client());
        let (reader, writer) = reflector::store();
        let stream = reflector(writer, watcher(partial, watcher::Config::default()));
        let task = tokio::spawn(stream.applied_objects().for_each(|_| async {}));
        reader.wait_until_ready().await.unwrap();
        cms.create(&PostParams::default(), &config_map("n", json!({})))
            .await
            .unwrap();
        eventually("metadata watch event", || reader.state().len() == 2).await;
        let metadata_watches = server
            .request_log()
            .into_iter()
            .filter(|r| r.query.contains("watch=true") && r.accept.contains("as=PartialObjectMetadata"))
            .count();
        assert!(metadata_watches >= 1);
        task.abort();
    })
    .await;
}
