//! The Helm chart `charts/purser`, rendered by real Helm and read back into Kubernetes types.
//!
//! In: `tests/chart/render.py`, which drives Helm v4 through `helm-python-sdk` (Helm as a
//! shared library; no `helm` binary exists in Debian), with the default values, the example
//! values files, and the optional features switched on. Out: every document parsed into its
//! k8s-openapi type (or `purser::api::NodePool`, or a checked `DynamicObject` for the
//! cert-manager and Prometheus Operator kinds), an unknown kind or a field the type does not
//! know failing the test, and assertions on what an install would get wrong: the CRDs against
//! the generator, RBAC against what the controller does, the webhook, certificates, probes,
//! selectors and the dashboard.
//!
//! The SDK lives in a pinned venv, `~/.cache/purser/helm-python-sdk-<version>` (or the Python
//! in `$PURSER_HELM_PYTHON`), installed with pip on first use; when that fails the test fails
//! with instructions, it never skips.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use purser::api::{NodePool, crds};
use purser::catalog::Catalog;
use regex::Regex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The SDK version the venv pins.
const HELM_SDK_VERSION: &str = "0.2.2";
/// The release namespace every render uses.
const NAMESPACE: &str = "purser-system";
/// The release name every render uses.
const RELEASE: &str = "purser";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_file(name: &str) -> String {
    repo().join("charts/purser").join(name).display().to_string()
}

// === the Helm SDK ===

fn sdk_venv() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(format!(".cache/purser/helm-python-sdk-{HELM_SDK_VERSION}")))
}

fn imports_sdk(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_setup(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

/// The Python that imports `helm_python`: `$PURSER_HELM_PYTHON`, else the pinned venv,
/// created and filled with pip when missing (once per test process).
fn helm_python() -> PathBuf {
    static FOUND: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = found.as_ref() {
        return python.clone();
    }
    let python = install_sdk().unwrap_or_else(|e| {
        panic!(
            "helm-python-sdk is not installed and pip could not install it ({e}): run \
             `python3 -m venv ~/.cache/purser/helm-python-sdk-{HELM_SDK_VERSION} && \
             ~/.cache/purser/helm-python-sdk-{HELM_SDK_VERSION}/bin/pip install \
             helm-python-sdk=={HELM_SDK_VERSION}` (needs python3-venv), or point \
             PURSER_HELM_PYTHON at a Python that imports helm_python"
        )
    });
    *found = Some(python.clone());
    python
}

fn install_sdk() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("PURSER_HELM_PYTHON") {
        let python = PathBuf::from(python);
        return if imports_sdk(&python) {
            Ok(python)
        } else {
            Err(format!(
                "PURSER_HELM_PYTHON={} cannot import helm_python",
                python.display()
            ))
        };
    }
    let venv = sdk_venv().ok_or("HOME is not set: nowhere to install helm-python-sdk")?;
    let python = venv.join("bin/python");
    if imports_sdk(&python) {
        return Ok(python);
    }
    let created = run_setup(Command::new("python3").arg("-m").arg("venv").arg(&venv)).and_then(|()| {
        run_setup(
            Command::new(venv.join("bin/pip"))
                .args(["install", "-q"])
                .arg(format!("helm-python-sdk=={HELM_SDK_VERSION}")),
        )
    });
    match created {
        Ok(()) if imports_sdk(&python) => Ok(python),
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&venv);
            Err("the venv was made but cannot import helm_python".into())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&venv);
            Err(e)
        }
    }
}

// === rendering ===

/// What an install is given: values files (chart-relative) and inline overrides.
#[derive(Debug, Clone, Default)]
struct ValuesSet {
    files: Vec<&'static str>,
    set: Vec<Value>,
}

impl ValuesSet {
    fn defaults() -> Self {
        ValuesSet::default()
    }

    fn file(mut self, name: &'static str) -> Self {
        self.files.push(name);
        self
    }

    fn set(mut self, value: Value) -> Self {
        self.set.push(value);
        self
    }

    /// Examples, cert-manager and the ServiceMonitor on.
    fn everything() -> Self {
        ValuesSet::defaults().set(json!({
            "examples": {"nodePools": {"enabled": true}},
            "webhook": {"certManager": {"enabled": true}},
            "serviceMonitor": {"enabled": true},
        }))
    }
}

/// Run render.py; Helm's error message when rendering fails.
fn try_render(values: &ValuesSet) -> Result<String, String> {
    let mut command = Command::new(helm_python());
    command
        .arg(repo().join("tests/chart/render.py"))
        .args(["--name", RELEASE, "--namespace", NAMESPACE]);
    for file in &values.files {
        command.arg("-f").arg(chart_file(file));
    }
    for set in &values.set {
        command.arg("--set-json").arg(set.to_string());
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/chart/render.py: {e}"));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("render.py prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn render(values: &ValuesSet) -> Manifests {
    let text = try_render(values).unwrap_or_else(|e| panic!("the chart does not render with {values:?}: {e}"));
    Manifests::parse(&text)
}

// === parsing ===

/// Every rendered document, typed.
#[derive(Debug, Default)]
struct Manifests {
    crds: Vec<(Value, CustomResourceDefinition)>,
    deployments: Vec<Deployment>,
    service_accounts: Vec<ServiceAccount>,
    services: Vec<Service>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    pdbs: Vec<PodDisruptionBudget>,
    webhooks: Vec<ValidatingWebhookConfiguration>,
    node_pools: Vec<NodePool>,
    dynamic: Vec<DynamicObject>,
    /// (kind, namespace, name) of every object, for the uniqueness check.
    keys: Vec<(String, Option<String>, String)>,
}

/// Deserialize into `T`, then fail if the typed object lost a field of the document: a
/// misspelt or misplaced key that the API server would drop (or reject) without a word.
fn typed<T: DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) -> T {
    let object: T = serde_path_to_error::deserialize(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: does not parse as its Kubernetes type: {e}"));
    let back = serde_json::to_value(&object).expect("serializes");
    let mut lost = Vec::new();
    dropped(doc, &back, "", &mut lost);
    assert!(lost.is_empty(), "{what}: fields the type does not know: {lost:?}");
    object
}

/// Paths of `original` that are missing from, or different in, `typed`.
fn dropped(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (key, value) in o {
                let here = format!("{path}.{key}");
                match t.get(key) {
                    _ if value.is_null() => {}
                    None => out.push(here),
                    Some(tv) => dropped(value, tv, &here, out),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) if o.len() == t.len() => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                dropped(ov, tv, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(o), Value::Number(t)) if o.as_f64() == t.as_f64() => {}
        (o, t) if o == t => {}
        (o, t) => out.push(format!("{path} ({o} became {t})")),
    }
}

impl Manifests {
    fn parse(text: &str) -> Self {
        let mut m = Manifests::default();
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            let doc = Value::deserialize(document).unwrap_or_else(|e| panic!("document {}: bad YAML: {e}", index + 1));
            if doc.is_null() {
                continue;
            }
            m.add(doc, index + 1);
        }
        m
    }

    fn add(&mut self, doc: Value, index: usize) {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let namespace = doc["metadata"]["namespace"].as_str().map(String::from);
        let what = format!("document {index} ({api_version} {kind} {name})");
        assert!(!name.is_empty(), "{what}: no metadata.name");
        let namespaced = !matches!(
            kind.as_str(),
            "CustomResourceDefinition"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingWebhookConfiguration"
                | "NodePool"
        );
        if namespaced {
            assert_eq!(
                namespace.as_deref(),
                Some(NAMESPACE),
                "{what}: a namespaced object must name the release namespace"
            );
        } else {
            assert_eq!(namespace, None, "{what}: a cluster-scoped object has no namespace");
        }
        self.keys.push((kind.clone(), namespace, name));
        match (api_version.as_str(), kind.as_str()) {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                let crd = typed(&doc, &what);
                self.crds.push((doc, crd));
            }
            ("apps/v1", "Deployment") => self.deployments.push(typed(&doc, &what)),
            ("v1", "ServiceAccount") => self.service_accounts.push(typed(&doc, &what)),
            ("v1", "Service") => self.services.push(typed(&doc, &what)),
            ("v1", "ConfigMap") => self.config_maps.push(typed(&doc, &what)),
            ("v1", "Secret") => self.secrets.push(typed(&doc, &what)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => self.cluster_roles.push(typed(&doc, &what)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                self.cluster_role_bindings.push(typed(&doc, &what))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => self.roles.push(typed(&doc, &what)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => self.role_bindings.push(typed(&doc, &what)),
            ("policy/v1", "PodDisruptionBudget") => self.pdbs.push(typed(&doc, &what)),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                self.webhooks.push(typed(&doc, &what))
            }
            ("purser.dev/v1", "NodePool") => self.node_pools.push(typed(&doc, &what)),
            ("monitoring.coreos.com/v1", "ServiceMonitor")
            | ("cert-manager.io/v1", "Issuer")
            | ("cert-manager.io/v1", "Certificate") => {
                let object: DynamicObject =
                    serde_json::from_value(doc).unwrap_or_else(|e| panic!("{what}: not an object: {e}"));
                assert!(object.data.get("spec").is_some_and(Value::is_object), "{what}: no spec");
                self.dynamic.push(object);
            }
            _ => panic!("{what}: a kind this test does not know; add it to Manifests::add with its type"),
        }
    }

    fn dynamic(&self, kind: &str) -> Vec<&DynamicObject> {
        self.dynamic
            .iter()
            .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == kind))
            .collect()
    }

    fn deployment(&self, component: &str) -> &Deployment {
        let found: Vec<_> = self
            .deployments
            .iter()
            .filter(|d| {
                labels(&d.metadata.labels)
                    .get("app.kubernetes.io/component")
                    .map(String::as_str)
                    == Some(component)
            })
            .collect();
        assert_eq!(found.len(), 1, "one {component} Deployment expected");
        found[0]
    }

    fn controller(&self) -> &Deployment {
        self.deployment("controller")
    }

    fn container<'a>(&'a self, component: &str) -> &'a Container {
        &self
            .deployment(component)
            .spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    fn config_map(&self, name: &str) -> &ConfigMap {
        self.config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ConfigMap {name}"))
    }

    fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    }

    fn cluster_role(&self, name: &str) -> &ClusterRole {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))
    }

    fn webhook_config(&self) -> &ValidatingWebhookConfiguration {
        assert_eq!(self.webhooks.len(), 1, "one ValidatingWebhookConfiguration expected");
        &self.webhooks[0]
    }
}

fn labels(map: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.clone().unwrap_or_default()
}

/// The value (or field path) of an environment variable of `container`.
fn env(container: &Container, name: &str) -> Option<String> {
    let var = container.env.as_ref()?.iter().find(|e| e.name == name)?;
    if let Some(value) = &var.value {
        return Some(value.clone());
    }
    let field = var.value_from.as_ref()?.field_ref.as_ref()?;
    Some(format!("fieldRef:{}", field.field_path))
}

/// Every values set the chart is installed with.
fn all_sets() -> Vec<(&'static str, ValuesSet)> {
    vec![
        ("default", ValuesSet::defaults()),
        ("values-aws.yaml", ValuesSet::defaults().file("values-aws.yaml")),
        ("values-kwok.yaml", ValuesSet::defaults().file("values-kwok.yaml")),
        ("examples + certManager + serviceMonitor", ValuesSet::everything()),
    ]
}

// === tests ===

#[test]
fn every_values_set_renders_into_known_types_with_unique_names() {
    let name = Regex::new(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$").unwrap();
    for (label, set) in all_sets() {
        let m = render(&set);
        let unique: BTreeSet<_> = m.keys.iter().collect();
        assert_eq!(
            unique.len(),
            m.keys.len(),
            "{label}: two objects share kind, namespace and name"
        );
        for (kind, _, object) in &m.keys {
            assert!(
                object.len() <= 63 || kind == "CustomResourceDefinition",
                "{label}: {kind} {object} is longer than 63"
            );
            assert!(
                name.is_match(object) || kind == "CustomResourceDefinition",
                "{label}: {kind} {object} is not a DNS name"
            );
        }
        assert_eq!(m.deployments.len(), 2, "{label}: controller and webhook Deployments");
        assert_eq!(m.crds.len(), 4, "{label}: the four CRDs");
    }
}

#[test]
fn rendered_crds_equal_the_generated_ones() {
    let generated = crds::all();
    for (label, set) in all_sets() {
        let m = render(&set);
        let mut rendered: Vec<_> = m.crds.iter().collect();
        rendered.sort_by_key(|(_, c)| c.metadata.name.clone());
        let mut expected = generated.clone();
        expected.sort_by_key(|c| c.metadata.name.clone());
        assert_eq!(rendered.len(), expected.len(), "{label}");
        for ((doc, crd), want) in rendered.iter().zip(&expected) {
            let name = want.metadata.name.as_deref().unwrap_or_default();
            assert_eq!(crd, want, "{label}: CRD {name} differs from `purser crds`");
            assert_eq!(
                doc,
                &serde_json::to_value(want).unwrap(),
                "{label}: CRD {name} as rendered differs from the generator's document"
            );
        }
    }
}

#[test]
fn controller_runs_two_replicas_with_leader_election_and_the_downward_api() {
    for (label, set) in all_sets() {
        let m = render(&set);
        let d = m.controller();
        let spec = &d.spec;
        assert_eq!(spec.replicas, Some(2), "{label}");
        let c = m.container("controller");
        assert_eq!(c.args.as_deref(), Some(&["controller".to_string()][..]), "{label}");
        assert_eq!(
            env(c, "POD_NAMESPACE").as_deref(),
            Some("fieldRef:metadata.namespace"),
            "{label}"
        );
        assert_eq!(env(c, "POD_NAME").as_deref(), Some("fieldRef:metadata.name"), "{label}");
        assert_eq!(
            env(c, "PURSER_NO_LEADER_ELECTION"),
            None,
            "{label}: leader election must stay on"
        );
        let provider = env(c, "PURSER_PROVIDER").unwrap();
        assert!(provider == "kwok" || provider == "aws", "{label}: {provider}");
        if provider == "kwok" {
            assert_eq!(
                env(c, "PURSER_KWOK_NAMESPACE").as_deref(),
                Some("fieldRef:metadata.namespace"),
                "{label}: the kwok instance table must live where the Role reaches"
            );
        }
        // The probes hit the port the controller listens on.
        let addr = env(c, "PURSER_METRICS_ADDR").unwrap();
        let port: i32 = addr.rsplit(':').next().unwrap().parse().unwrap();
        let ports = c.ports.as_ref().unwrap();
        let metrics = ports.iter().find(|p| p.name.as_deref() == Some("metrics")).unwrap();
        assert_eq!(metrics.container_port, port, "{label}");
        for (probe, path) in [(&c.liveness_probe, "/healthz"), (&c.readiness_probe, "/readyz")] {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.path.as_deref(), Some(path), "{label}");
            assert_eq!(get.port, IntOrString::String("metrics".into()), "{label}");
        }
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{label}");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{label}");
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_non_root,
            Some(true),
            "{label}"
        );
        assert!(
            c.resources.as_ref().unwrap().requests.is_some(),
            "{label}: resource requests"
        );
    }
}

#[test]
fn selectors_match_the_pods_they_are_meant_for() {
    for (label, set) in all_sets() {
        let m = render(&set);
        let pods = |component: &str| labels(&m.deployment(component).spec.template.metadata.as_ref().unwrap().labels);
        let selects = |selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>| {
            !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
        };
        for component in ["controller", "webhook"] {
            let d = m.deployment(component);
            let selector = d.spec.selector.match_labels.clone().unwrap();
            assert!(selects(&selector, &pods(component)), "{label}: {component} selector");
        }
        assert!(
            !selects(
                &m.controller().spec.selector.match_labels.clone().unwrap(),
                &pods("webhook")
            ),
            "{label}: the controller's selector also matches the webhook's pods"
        );
        let metrics = m.service("purser-metrics").spec.as_ref().unwrap();
        assert!(
            selects(metrics.selector.as_ref().unwrap(), &pods("controller")),
            "{label}"
        );
        assert!(
            !selects(metrics.selector.as_ref().unwrap(), &pods("webhook")),
            "{label}"
        );
        assert_eq!(
            metrics.ports.as_ref().unwrap()[0].target_port,
            Some(IntOrString::String("metrics".into()))
        );
        let webhook = m.service("purser-webhook").spec.as_ref().unwrap();
        assert!(selects(webhook.selector.as_ref().unwrap(), &pods("webhook")), "{label}");
        let https = m.container("webhook").ports.as_ref().unwrap();
        assert!(https.iter().any(|p| p.name.as_deref() == Some("https")), "{label}");
        assert_eq!(
            webhook.ports.as_ref().unwrap()[0].target_port,
            Some(IntOrString::String("https".into()))
        );
        // One PDB per Deployment, minAvailable 1, on the right pods.
        for component in ["controller", "webhook"] {
            let pdb = m
                .pdbs
                .iter()
                .find(|p| {
                    selects(
                        p.spec
                            .as_ref()
                            .unwrap()
                            .selector
                            .as_ref()
                            .unwrap()
                            .match_labels
                            .as_ref()
                            .unwrap(),
                        &pods(component),
                    )
                })
                .unwrap_or_else(|| panic!("{label}: no PodDisruptionBudget for the {component}"));
            assert_eq!(
                pdb.spec.as_ref().unwrap().min_available,
                Some(IntOrString::Int(1)),
                "{label}"
            );
        }
    }
}

// --- RBAC ---

/// True when `rules` allow `verb` on `group`/`resource` (named `name`, when the call names one).
fn allows(rules: &[PolicyRule], group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    rules.iter().any(|r| {
        let has =
            |list: &Option<Vec<String>>, v: &str| list.as_ref().is_some_and(|l| l.iter().any(|x| x == v || x == "*"));
        let names_ok = match (&r.resource_names, name) {
            (None, _) => true,
            (Some(names), _) if names.is_empty() => true,
            (Some(names), Some(n)) => names.iter().any(|x| x == n),
            (Some(_), None) => false,
        };
        has(&r.api_groups, group)
            && has(&r.resources, resource)
            && r.verbs.iter().any(|v| v == verb || v == "*")
            && names_ok
    })
}

/// The API calls the controller makes (grep `Api::` in src/controllers and providers/):
/// (group, resource, verbs, object name when fixed).
fn controller_cluster_calls(kwok: bool) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut calls = vec![
        ("", "pods", vec!["get", "list", "watch"]),
        ("", "pods/eviction", vec!["create"]),
        ("", "nodes", vec!["get", "list", "watch", "patch", "delete"]),
        ("apps", "daemonsets", vec!["list", "watch"]),
        ("policy", "poddisruptionbudgets", vec!["list", "watch"]),
        (
            "purser.dev",
            "nodeclaims",
            vec!["get", "list", "watch", "create", "patch", "delete"],
        ),
        ("purser.dev", "nodeclaims/status", vec!["patch"]),
        ("purser.dev", "nodepools", vec!["get", "list", "watch"]),
        ("purser.dev", "nodepools/status", vec!["patch"]),
        ("purser.dev", "costbudgets", vec!["get", "list", "watch"]),
        ("purser.dev", "costbudgets/status", vec!["patch"]),
        ("purser.dev", "nodeclasses", vec!["get", "list", "watch"]),
        ("purser.dev", "nodeclasses/status", vec!["patch"]),
        ("events.k8s.io", "events", vec!["create", "patch"]),
    ];
    if kwok {
        calls.push(("", "nodes", vec!["create"]));
        calls.push(("", "nodes/status", vec!["patch"]));
    }
    calls
}

#[test]
fn controller_rbac_covers_what_the_code_calls_and_no_more() {
    for (label, set) in all_sets() {
        let m = render(&set);
        let kwok = env(m.container("controller"), "PURSER_PROVIDER").as_deref() == Some("kwok");
        let role = m.cluster_role("purser");
        let rules = role.rules.clone().unwrap_or_default();
        for (group, resource, verbs) in controller_cluster_calls(kwok) {
            for verb in verbs {
                assert!(
                    allows(&rules, group, resource, verb, None),
                    "{label}: ClusterRole lacks {verb} {group}/{resource}"
                );
            }
        }
        let write = ["create", "update", "patch", "delete", "deletecollection"];
        for rule in &rules {
            assert!(
                !rule.verbs.iter().any(|v| v == "*"),
                "{label}: wildcard verb in {rule:?}"
            );
            for list in [&rule.api_groups, &rule.resources] {
                assert!(
                    !list.iter().flatten().any(|x| x == "*"),
                    "{label}: wildcard in {rule:?}"
                );
            }
        }
        for verb in write {
            assert!(
                !allows(&rules, "", "pods", verb, None),
                "{label}: ClusterRole may {verb} pods"
            );
            for resource in ["nodepools", "costbudgets", "nodeclasses"] {
                assert!(
                    !allows(&rules, "purser.dev", resource, verb, None),
                    "{label}: may {verb} users' {resource}"
                );
            }
            for (group, resource) in [("apps", "daemonsets"), ("policy", "poddisruptionbudgets")] {
                assert!(
                    !allows(&rules, group, resource, verb, None),
                    "{label}: may {verb} {resource}"
                );
            }
            if !kwok {
                assert!(
                    !allows(&rules, "", "nodes/status", verb, None),
                    "{label}: aws writes no node status"
                );
            }
        }
        assert!(
            !allows(&rules, "", "nodes", "create", None) || kwok,
            "{label}: only kwok creates Nodes"
        );
        for verb in ["get", "list", "watch", "create", "update", "patch", "delete"] {
            for resource in ["secrets", "configmaps"] {
                assert!(
                    !allows(&rules, "", resource, verb, None),
                    "{label}: cluster-wide {verb} {resource}"
                );
            }
            assert!(
                !allows(&rules, "coordination.k8s.io", "leases", verb, None),
                "{label}: cluster-wide leases"
            );
        }

        // Namespaced: the Lease and the ConfigMaps (ledger, kwok instance table), nothing else.
        assert_eq!(m.roles.len(), 1, "{label}");
        let ns_rules = m.roles[0].rules.clone().unwrap_or_default();
        assert!(
            allows(&ns_rules, "coordination.k8s.io", "leases", "create", None),
            "{label}"
        );
        for verb in ["get", "update", "patch"] {
            assert!(
                allows(
                    &ns_rules,
                    "coordination.k8s.io",
                    "leases",
                    verb,
                    Some("purser-controller")
                ),
                "{label}: {verb} lease"
            );
            assert!(
                !allows(&ns_rules, "coordination.k8s.io", "leases", verb, Some("someone-else")),
                "{label}: other Leases"
            );
        }
        for verb in ["get", "create", "update", "patch"] {
            assert!(
                allows(&ns_rules, "", "configmaps", verb, Some("purser-ledger-team-vision")),
                "{label}: {verb} ledger"
            );
            assert!(
                allows(&ns_rules, "", "configmaps", verb, Some("purser-kwok-instances")),
                "{label}: {verb} kwok"
            );
        }
        for rule in &ns_rules {
            for resource in rule.resources.iter().flatten() {
                assert!(
                    resource == "leases" || resource == "configmaps",
                    "{label}: Role grants {resource}"
                );
            }
        }
    }
}

#[test]
fn bindings_give_the_roles_to_the_service_accounts_the_pods_run_as() {
    for (label, set) in all_sets() {
        let m = render(&set);
        for (component, cluster_role) in [("controller", "purser"), ("webhook", "purser-webhook")] {
            let sa = m
                .deployment(component)
                .spec
                .template
                .spec
                .as_ref()
                .unwrap()
                .service_account_name
                .clone()
                .unwrap();
            assert!(
                m.service_accounts
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some(&sa)),
                "{label}: ServiceAccount {sa} is not rendered"
            );
            let bound = m.cluster_role_bindings.iter().any(|b| {
                b.role_ref.kind == "ClusterRole"
                    && b.role_ref.name == cluster_role
                    && b.subjects.iter().flatten().any(|s| {
                        s.kind == "ServiceAccount" && s.name == sa && s.namespace.as_deref() == Some(NAMESPACE)
                    })
            });
            assert!(bound, "{label}: ClusterRole {cluster_role} is not bound to {sa}");
            m.cluster_role(cluster_role);
        }
        let role = m.roles[0].metadata.name.clone().unwrap();
        assert!(m.role_bindings.iter().any(|b| {
            b.role_ref.kind == "Role"
                && b.role_ref.name == role
                && b.subjects
                    .iter()
                    .flatten()
                    .any(|s| s.name == "purser" && s.namespace.as_deref() == Some(NAMESPACE))
        }));
        // The webhook only reads.
        for rule in m.cluster_role("purser-webhook").rules.iter().flatten() {
            assert!(
                rule.verbs
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                "{label}: the webhook may {:?}",
                rule.verbs
            );
        }
    }
}

// --- providers ---

#[test]
fn aws_values_set_region_cluster_queue_and_the_irsa_role() {
    let m = render(&ValuesSet::defaults().file("values-aws.yaml"));
    let c = m.container("controller");
    assert_eq!(env(c, "PURSER_PROVIDER").as_deref(), Some("aws"));
    assert_eq!(env(c, "AWS_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(env(c, "PURSER_CLUSTER_NAME").as_deref(), Some("my-cluster"));
    assert!(
        env(c, "PURSER_AWS_INTERRUPTION_QUEUE")
            .unwrap()
            .starts_with("https://sqs.us-east-1.amazonaws.com/")
    );
    assert_eq!(env(c, "PURSER_KWOK_NAMESPACE"), None);
    let sa = m
        .service_accounts
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("purser"))
        .unwrap();
    assert_eq!(
        labels(&sa.metadata.annotations)
            .get("eks.amazonaws.com/role-arn")
            .map(String::as_str),
        Some("arn:aws:iam::123456789012:role/PurserController")
    );

    // EKS Pod Identity: no role ARN, no annotation, the rest unchanged.
    let m = render(
        &ValuesSet::defaults()
            .file("values-aws.yaml")
            .set(json!({"aws": {"roleArn": ""}})),
    );
    let sa = m
        .service_accounts
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("purser"))
        .unwrap();
    assert!(!labels(&sa.metadata.annotations).contains_key("eks.amazonaws.com/role-arn"));
    // Other annotations pass through.
    let m = render(&ValuesSet::defaults().set(json!({"serviceAccount": {"annotations": {"example.com/a": "b"}}})));
    let sa = m
        .service_accounts
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("purser"))
        .unwrap();
    assert_eq!(
        labels(&sa.metadata.annotations)
            .get("example.com/a")
            .map(String::as_str),
        Some("b")
    );
}

#[test]
fn kwok_is_the_default_and_sets_no_aws_settings() {
    for set in [ValuesSet::defaults(), ValuesSet::defaults().file("values-kwok.yaml")] {
        let m = render(&set);
        let c = m.container("controller");
        assert_eq!(env(c, "PURSER_PROVIDER").as_deref(), Some("kwok"));
        for name in ["AWS_REGION", "PURSER_CLUSTER_NAME", "PURSER_AWS_INTERRUPTION_QUEUE"] {
            assert_eq!(env(c, name), None, "{name}");
        }
        let sa = m
            .service_accounts
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some("purser"))
            .unwrap();
        assert!(!labels(&sa.metadata.annotations).contains_key("eks.amazonaws.com/role-arn"));
    }
}

#[test]
fn values_that_would_break_an_install_are_refused_with_the_value_named() {
    let cases = [
        (json!({"provider": "aws"}), "aws.clusterName"),
        (json!({"provider": "aws", "aws": {"clusterName": "c"}}), "aws.region"),
        (json!({"provider": "gcp"}), "provider"),
        (
            json!({"controller": {"leaderElection": {"enabled": false}}}),
            "controller.replicas",
        ),
        (
            json!({"webhook": {"failurePolicy": "Sometimes"}}),
            "webhook.failurePolicy",
        ),
    ];
    for (values, named) in cases {
        let err = try_render(&ValuesSet::defaults().set(values.clone())).expect_err(&format!("{values} rendered"));
        assert!(err.contains(named), "{values}: the error does not name {named}: {err}");
    }
    // One replica without leader election is allowed.
    let m = render(
        &ValuesSet::defaults().set(json!({"controller": {"replicas": 1, "leaderElection": {"enabled": false}}})),
    );
    assert_eq!(
        env(m.container("controller"), "PURSER_NO_LEADER_ELECTION").as_deref(),
        Some("true")
    );
}

// --- webhook ---

#[test]
fn webhook_registration_is_fail_open_by_default_and_follows_values() {
    for (values, expected) in [
        (ValuesSet::defaults(), "Ignore"),
        (
            ValuesSet::defaults().set(json!({"webhook": {"failurePolicy": "Fail"}})),
            "Fail",
        ),
        (ValuesSet::defaults().file("values-aws.yaml"), "Ignore"),
    ] {
        let m = render(&values);
        let config = m.webhook_config();
        let hooks = config.webhooks.as_ref().unwrap();
        assert_eq!(hooks.len(), 1);
        let hook = &hooks[0];
        assert_eq!(hook.failure_policy.as_deref(), Some(expected));
        assert_eq!(hook.timeout_seconds, Some(2));
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, vec!["v1".to_string()]);
        let rules = hook.rules.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].operations.as_deref(), Some(&["CREATE".to_string()][..]));
        assert_eq!(rules[0].resources.as_deref(), Some(&["pods".to_string()][..]));
        assert_eq!(rules[0].api_groups.as_deref(), Some(&[String::new()][..]));
        let exprs = hook
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .clone()
            .unwrap();
        let excluded = exprs
            .iter()
            .find(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
            .expect("a NotIn on the namespace name");
        for ns in [NAMESPACE, "kube-system"] {
            assert!(excluded.values.iter().flatten().any(|v| v == ns), "{ns} is judged");
        }
        let service = hook.client_config.service.as_ref().unwrap();
        assert_eq!(service.namespace, NAMESPACE);
        let svc = m.service(&service.name);
        assert_eq!(
            svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
            service.port.unwrap_or(443)
        );
    }
    let m = render(&ValuesSet::defaults().set(json!({"webhook": {"excludeNamespaces": ["monitoring"]}})));
    let hook = &m.webhook_config().webhooks.as_ref().unwrap()[0];
    let values = hook
        .namespace_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap()[0]
        .values
        .clone()
        .unwrap();
    assert_eq!(
        values,
        vec![NAMESPACE.to_string(), "kube-system".into(), "monitoring".into()]
    );
}

#[test]
fn webhook_runs_purser_webhook_with_its_certificate_and_policies() {
    for (label, set) in all_sets() {
        let m = render(&set);
        let c = m.container("webhook");
        let args: Vec<&str> = c.args.as_ref().unwrap().iter().map(String::as_str).collect();
        let failure = if m.webhook_config().webhooks.as_ref().unwrap()[0]
            .failure_policy
            .as_deref()
            == Some("Fail")
        {
            "closed"
        } else {
            "open"
        };
        assert_eq!(
            args,
            [
                "webhook",
                "--addr",
                "0.0.0.0:8443",
                "--tls-cert-file",
                "/tls/tls.crt",
                "--tls-key-file",
                "/tls/tls.key",
                "--config",
                "/config/policies.yaml",
                "--failure",
                failure
            ],
            "{label}: --failure follows the failurePolicy"
        );
        let pod = m.deployment("webhook").spec.template.spec.clone().unwrap();
        let volume = |mount: &str| {
            let name = &c
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .find(|v| v.mount_path == mount)
                .unwrap()
                .name;
            pod.volumes
                .as_ref()
                .unwrap()
                .iter()
                .find(|v| &v.name == name)
                .unwrap()
                .clone()
        };
        let tls_secret = volume("/tls").secret.unwrap().secret_name.unwrap();
        let config_map = volume("/config").config_map.unwrap().name;
        let text = &m.config_map(&config_map).data.as_ref().unwrap()["policies.yaml"];
        let policies: purser::webhook::policy::Policies = serde_norway::from_str(text).unwrap_or_else(|e| {
            panic!("{label}: the policies do not load as `purser webhook` reads them: {e}\n{text}")
        });
        assert_eq!(policies.require_label.key, "cost-centre", "{label}");
        assert_eq!(policies.max_gpus_per_pod.max, 4, "{label}");
        assert!(
            policies.require_label.enabled && policies.budget.enabled && policies.dev_requires_spot.enabled,
            "{label}"
        );

        let config = m.webhook_config();
        let hook = &config.webhooks.as_ref().unwrap()[0];
        let service = hook.client_config.service.as_ref().unwrap();
        let dns = format!("{}.{}.svc", service.name, service.namespace);
        if set.set.iter().any(|v| v["webhook"]["certManager"]["enabled"] == true) {
            assert!(m.secrets.is_empty(), "{label}: cert-manager writes the Secret");
            let certs = m.dynamic("Certificate");
            assert_eq!(certs.len(), 1, "{label}");
            let cert = certs[0];
            assert_eq!(cert.types.as_ref().unwrap().api_version, "cert-manager.io/v1");
            assert_eq!(cert.data["spec"]["secretName"], tls_secret.as_str(), "{label}");
            assert!(
                cert.data["spec"]["dnsNames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| *d == dns.as_str())
            );
            let issuer = &cert.data["spec"]["issuerRef"];
            let issuers = m.dynamic("Issuer");
            assert!(
                issuers
                    .iter()
                    .any(|i| i.metadata.name.as_deref() == issuer["name"].as_str()
                        && i.types.as_ref().unwrap().api_version == "cert-manager.io/v1"),
                "{label}: the Certificate's issuer is not rendered"
            );
            assert_eq!(
                labels(&config.metadata.annotations).get("cert-manager.io/inject-ca-from"),
                Some(&format!("{NAMESPACE}/{}", cert.metadata.name.as_deref().unwrap())),
                "{label}"
            );
            assert!(
                hook.client_config.ca_bundle.is_none(),
                "{label}: the cainjector sets caBundle"
            );
        } else {
            assert!(
                m.dynamic("Certificate").is_empty() && m.dynamic("Issuer").is_empty(),
                "{label}"
            );
            assert_eq!(m.secrets.len(), 1, "{label}");
            let secret = &m.secrets[0];
            assert_eq!(secret.metadata.name.as_deref(), Some(tls_secret.as_str()), "{label}");
            assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
            let data = secret.data.as_ref().unwrap();
            let pem = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
            let ca = hook.client_config.ca_bundle.as_ref().expect("caBundle");
            assert_eq!(ca.0, data["ca.crt"].0, "{label}: caBundle is not the Secret's CA");
            assert!(pem("ca.crt").starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pem("tls.crt").starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pem("tls.key").contains("PRIVATE KEY-----"));
            assert_ne!(
                pem("ca.crt"),
                pem("tls.crt"),
                "{label}: the serving certificate is the CA"
            );
            assert!(labels(&config.metadata.annotations).is_empty(), "{label}");
        }
    }
}

#[test]
fn webhook_can_be_turned_off() {
    let m = render(&ValuesSet::defaults().set(json!({"webhook": {"enabled": false}})));
    assert!(m.webhooks.is_empty() && m.secrets.is_empty());
    assert_eq!(m.deployments.len(), 1);
    assert_eq!(m.cluster_roles.len(), 1);
}

// --- optional objects ---

#[test]
fn service_monitor_only_when_enabled_and_it_scrapes_the_metrics_service() {
    assert!(render(&ValuesSet::defaults()).dynamic("ServiceMonitor").is_empty());
    let m = render(&ValuesSet::everything());
    let monitors = m.dynamic("ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let sm = monitors[0];
    assert_eq!(sm.types.as_ref().unwrap().api_version, "monitoring.coreos.com/v1");
    let selector = sm.data["spec"]["selector"]["matchLabels"].as_object().unwrap();
    let matching: Vec<_> = m
        .services
        .iter()
        .filter(|s| {
            let l = labels(&s.metadata.labels);
            selector.iter().all(|(k, v)| l.get(k).map(String::as_str) == v.as_str())
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "the ServiceMonitor selects {} Services",
        matching.len()
    );
    let port = sm.data["spec"]["endpoints"][0]["port"].as_str().unwrap();
    assert!(
        matching[0]
            .spec
            .as_ref()
            .unwrap()
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some(port))
    );
    assert_eq!(sm.data["spec"]["endpoints"][0]["path"], "/metrics");
}

#[test]
fn example_node_pools_load_into_the_planner_and_match_the_paper() {
    assert!(
        render(&ValuesSet::defaults()).node_pools.is_empty(),
        "examples are off by default"
    );
    let m = render(&ValuesSet::everything());
    let names: BTreeSet<_> = m.node_pools.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["cpu-batch".into(), "gpu-infer".into(), "gpu-train".into()])
    );

    // Through the loader `purser plan` and the controller use: schema rules and semantics.
    let objects: Vec<Value> = m.node_pools.iter().map(|p| serde_json::to_value(p).unwrap()).collect();
    let catalog = Catalog::embedded_ref();
    let loaded = purser::model::load::snapshot_from_objects(&objects, catalog)
        .unwrap_or_else(|e| panic!("the example NodePools do not load: {e}"));
    assert_eq!(loaded.snapshot.pools.len(), 3, "{:?}", loaded.warnings);
    for pool in &loaded.snapshot.pools {
        let offerings = |pred: &dyn Fn(&str) -> bool| {
            catalog
                .instance_types
                .iter()
                .flat_map(|it| it.offerings.iter().map(move |o| (it, o)))
                .filter(|(it, o)| {
                    let mut l = it.labels.clone();
                    l.insert("purser.dev/capacity-type".into(), o.capacity_type.as_str().into());
                    l.insert("topology.kubernetes.io/zone".into(), o.zone.clone());
                    pool.requirements.matches(&l) && pred(o.capacity_type.as_str())
                })
                .map(|(it, _)| it.name.clone())
                .collect::<BTreeSet<_>>()
        };
        let any = offerings(&|_| true);
        assert!(
            !any.is_empty(),
            "NodePool {} allows no instance type of the catalog",
            pool.name
        );
        match pool.name.as_str() {
            "gpu-train" => {
                let taint = pool
                    .taints
                    .iter()
                    .find(|t| t.key == "nvidia.com/gpu")
                    .expect("the GPU taint");
                assert_eq!(
                    (taint.value.as_str(), format!("{:?}", taint.effect).as_str()),
                    ("true", "NoSchedule")
                );
                for name in &any {
                    let family = name.split('.').next().unwrap();
                    assert!(["g5", "g6", "p4d"].contains(&family), "gpu-train allows {name}");
                }
            }
            "gpu-infer" => {
                assert!(pool.taints.iter().any(|t| t.key == "nvidia.com/gpu"));
                assert!(
                    any.iter().any(|n| n.starts_with("g6f.")),
                    "gpu-infer offers no fractional GPU: {any:?}"
                );
                assert!(
                    any.iter().any(|n| n.starts_with("p4d.")),
                    "gpu-infer offers no MIG-capable GPU"
                );
            }
            "cpu-batch" => {
                assert_eq!(
                    offerings(&|c| c != "spot"),
                    BTreeSet::new(),
                    "cpu-batch must be 100% spot"
                );
                assert_eq!(pool.min_on_demand_percent, 0.0);
                assert!(pool.taints.is_empty());
            }
            other => panic!("unexpected pool {other}"),
        }
    }
}

// --- dashboard ---

fn dashboard_panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"].as_array().unwrap().iter().collect()
}

fn panel<'a>(panels: &[&'a Value], title_part: &str) -> &'a Value {
    panels
        .iter()
        .find(|p| p["title"].as_str().is_some_and(|t| t.contains(title_part)))
        .unwrap_or_else(|| panic!("no panel titled …{title_part}…"))
}

fn exprs(panel: &Value) -> String {
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["expr"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn dashboard_puts_latency_and_cost_per_request_on_one_row() {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(chart_file("dashboards/purser.json")).unwrap()).unwrap();
    let m = render(&ValuesSet::defaults());
    let cm = m.config_map("purser-dashboard");
    assert_eq!(
        labels(&cm.metadata.labels).get("grafana_dashboard").map(String::as_str),
        Some("1")
    );
    let rendered: Value = serde_json::from_str(&cm.data.as_ref().unwrap()["purser.json"]).unwrap();
    assert_eq!(
        rendered, file,
        "the ConfigMap does not carry dashboards/purser.json as is"
    );

    let panels = dashboard_panels(&file);
    let latency = panel(&panels, "p95 latency");
    let cost = panel(&panels, "Cost per 1,000 requests");
    let y = |p: &Value| p["gridPos"]["y"].as_i64().unwrap();
    let x = |p: &Value| p["gridPos"]["x"].as_i64().unwrap();
    assert_eq!(y(latency), y(cost), "not on the same row");
    assert_ne!(x(latency), x(cost));
    assert!(
        !panels.iter().any(|p| p["type"] == "row" && y(p) == y(latency)),
        "a row header sits between them"
    );
    assert!(exprs(latency).contains("histogram_quantile(0.95"));
    let per_request = exprs(cost);
    assert!(
        per_request.contains("purser_replica_hourly_cost") && per_request.contains("1000"),
        "{per_request}"
    );
    assert!(exprs(panel(&panels, "Spend by team")).contains("sum by (team) (purser_allocation_hourly_cost"));
    assert!(exprs(panel(&panels, "Idle cost by NodePool")).contains("sum by (nodepool) (purser_idle_hourly_cost"));
    let burn = exprs(panel(&panels, "Period spend"));
    for metric in [
        "purser_budget_spend_usd",
        "purser_budget_forecast_usd",
        "purser_budget_period_cap_usd",
    ] {
        assert!(burn.contains(metric), "budget burn lacks {metric}");
    }
    let rate = exprs(panel(&panels, "Run-rate"));
    assert!(
        rate.contains("purser_budget_run_rate_usd_per_hour") && rate.contains("purser_budget_hourly_cap_usd_per_hour")
    );

    // Every variable a query uses is defined, and every panel id is unique.
    let defined: BTreeSet<&str> = file["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let text = file.to_string();
    for var in ["datasource", "namespace", "budget", "requests_metric", "latency_metric"] {
        assert!(defined.contains(var), "variable {var} is not defined");
    }
    for used in text.split('$').skip(1) {
        let name: String = used
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            name.starts_with("__") || defined.contains(name.as_str()),
            "${name} is not a dashboard variable"
        );
    }
    let ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "duplicate panel ids"
    );

    assert!(
        render(&ValuesSet::defaults().set(json!({"dashboard": {"enabled": false}})))
            .config_maps
            .iter()
            .all(|c| c.metadata.name.as_deref() != Some("purser-dashboard"))
    );
}

#[test]
fn helm_lint_strict_finds_no_warnings() {
    for (label, set) in all_sets() {
        let mut command = Command::new(helm_python());
        command
            .arg(repo().join("tests/chart/render.py"))
            .args(["--lint", "--namespace", NAMESPACE]);
        for file in &set.files {
            command.arg("-f").arg(chart_file(file));
        }
        for value in &set.set {
            command.arg("--set-json").arg(value.to_string());
        }
        let out = command.output().expect("render.py --lint runs");
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let serious: Vec<_> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
            .collect();
        assert!(serious.is_empty(), "{label}: helm lint --strict: {serious:?}");
        assert_eq!(report["errors"].as_array().map(Vec::len), Some(0), "{label}: {report}");
    }
}
