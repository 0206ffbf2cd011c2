//! spin.toml and the SpinKube manifests in deploy/, checked against the
//! upstream schemas and against each other.
//!
//! - spin.toml against the JSON Schema of Spin's manifest (version 2);
//! - every SpinApp in deploy/ against the SpinApp CRD's `openAPIV3Schema`,
//!   with unknown fields rejected as `kubectl apply` does (Kubernetes'
//!   strict field validation; the CRD schema alone would let a misspelt
//!   field through, and the API server would then drop it silently);
//! - the deployment's shape: replicas, executor, the runtime-config Secret
//!   and its Redis store, probes, limits;
//! - rolling updates: what the CRD offers (probes) and lacks (surge, grace
//!   period, preStop), and the Deployment patch in deploy/patches/ that
//!   carries the rest;
//! - the SpinApp's variables against the ones spin.toml declares.
//!
//! The schemas are upstream files kept in `../shared/schemas/` beside the
//! clone (see that folder's README). Where it is absent, the schema
//! tests print "skipped: ../shared/schemas not found" and pass; every other
//! test here needs only the repository.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::helpers::root;

/// The Secret key the Spin Operator mounts as the runtime config
/// (spin-operator `constructRuntimeConfigSecretMount`).
const RUNTIME_CONFIG_KEY: &str = "runtime-config.toml";
/// The Secret template that `runtimeConfig.loadFromSecret` must name.
const SECRET_TEMPLATE: &str = "deploy/runtime-config-secret.yaml";
/// The Redis runtime config the Secret carries (written beside it).
const REDIS_RUNTIME_CONFIG: &str = "deploy/runtime-config.redis.toml";
/// The route the probes call.
const HEALTH_PATH: &str = "/api/health";

// ---- loading ---------------------------------------------------------------

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `../shared/schemas` beside the clone, or `None` (after saying so).
fn schemas_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/schemas");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: ../shared/schemas not found (looked for {})",
            dir.display()
        );
        None
    }
}

/// spin.toml as JSON (TOML tables → objects).
fn spin_manifest() -> Value {
    let path = root().join("spin.toml");
    toml::from_str(&read(&path)).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// Every YAML document of a file, as JSON; empty documents skipped.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Every YAML document in deploy/, with the file it came from.
fn deploy_documents() -> Vec<(PathBuf, Value)> {
    let dir = root().join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|file| {
            yaml_documents(&file)
                .into_iter()
                .map(move |doc| (file.clone(), doc))
        })
        .collect()
}

/// The SpinApps in deploy/ (at least one).
fn spin_apps() -> Vec<(PathBuf, Value)> {
    let apps: Vec<_> = deploy_documents()
        .into_iter()
        .filter(|(_, doc)| doc["kind"] == "SpinApp")
        .collect();
    assert!(
        !apps.is_empty(),
        "deploy/ holds no document of kind SpinApp"
    );
    apps
}

/// The Secret in the template that holds a runtime config.
fn runtime_config_secret() -> Value {
    let path = root().join(SECRET_TEMPLATE);
    let secrets: Vec<Value> = yaml_documents(&path)
        .into_iter()
        .filter(|doc| doc["kind"] == "Secret" && doc["apiVersion"] == "v1")
        .collect();
    assert_eq!(
        secrets.len(),
        1,
        "{SECRET_TEMPLATE} should hold exactly one v1 Secret"
    );
    secrets.into_iter().next().unwrap()
}

/// The runtime config the Secret carries, parsed. The template uses
/// `stringData`, so it stays readable and editable.
fn secret_runtime_config(secret: &Value) -> toml::Table {
    let text = secret["stringData"][RUNTIME_CONFIG_KEY]
        .as_str()
        .unwrap_or_else(|| {
            panic!("{SECRET_TEMPLATE}: no stringData key `{RUNTIME_CONFIG_KEY}` (the key the operator mounts)")
        });
    text.parse()
        .unwrap_or_else(|e| panic!("{SECRET_TEMPLATE}: `{RUNTIME_CONFIG_KEY}` is not TOML: {e}"))
}

/// The variables spin.toml declares, by name.
fn declared_variables(manifest: &Value) -> serde_json::Map<String, Value> {
    manifest["variables"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A SpinApp's `spec.variables`, by name (each name once).
fn spinapp_variables(file: &Path, app: &Value) -> Vec<(String, Value)> {
    let mut seen = std::collections::BTreeSet::new();
    app["spec"]["variables"]
        .as_array()
        .map(|vars| vars.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|var| {
            let name = var["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a variable without a name", file.display()))
                .to_string();
            assert!(
                seen.insert(name.clone()),
                "{}: variable `{name}` is set twice",
                file.display()
            );
            (name, var.clone())
        })
        .collect()
}

// ---- schema checking -------------------------------------------------------

/// Every error of `instance` against `schema` (draft 7: both schemas use
/// only keywords that mean the same in every draft since 4).
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::draft7::new(schema).expect("the schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// The CRD, and its first version's schema made strict: every object
/// schema that lists its properties (and does not keep unknown fields)
/// gets `additionalProperties: false`, which is what the API server's
/// strict field validation (kubectl's default, `--validate=strict`) does.
struct Crd {
    /// `<group>/<version>`, e.g. `core.spinkube.dev/v1alpha1`.
    api_version: String,
    kind: String,
    schema: Value,
}

fn spinapp_crd(dir: &Path) -> Crd {
    let path = dir.join("spinkube-spinapp-crd.yaml");
    let crd = yaml_documents(&path)
        .into_iter()
        .find(|doc| doc["kind"] == "CustomResourceDefinition")
        .unwrap_or_else(|| panic!("{}: no CustomResourceDefinition", path.display()));
    let version = &crd["spec"]["versions"][0];
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    assert!(schema.is_object(), "{}: no openAPIV3Schema", path.display());
    make_strict(&mut schema);
    Crd {
        api_version: format!(
            "{}/{}",
            crd["spec"]["group"].as_str().expect("spec.group"),
            version["name"].as_str().expect("versions[0].name")
        ),
        kind: crd["spec"]["names"]["kind"]
            .as_str()
            .expect("names.kind")
            .to_string(),
        schema,
    }
}

/// See [`Crd`]. Walks the schema structure (not every object in it, so a
/// field that happens to be called `properties` is not mistaken for one).
fn make_strict(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let keeps_unknown = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !keeps_unknown
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(make_strict);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = map.get_mut(key) {
            make_strict(sub);
        }
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(Value::Array(subs)) = map.get_mut(key) {
            subs.iter_mut().for_each(make_strict);
        }
    }
}

// ---- (a) spin.toml against Spin's schema -----------------------------------

#[test]
fn spin_toml_matches_the_published_spin_manifest_schema() {
    let Some(dir) = schemas_dir() else { return };
    let path = dir.join("spin-manifest-v2.schema.json");
    let schema: Value = serde_json::from_str(&read(&path)).expect("the schema is JSON");
    let errors = schema_errors(&schema, &spin_manifest());
    assert!(
        errors.is_empty(),
        "spin.toml does not match {}:\n{}",
        path.display(),
        errors.join("\n")
    );
}

/// The check above can fail: a misspelt component field (Spin's manifest
/// denies unknown fields) and a variable with a number for a default are
/// each caught.
#[test]
fn the_spin_schema_check_rejects_a_misspelt_field_and_a_numeric_default() {
    let Some(dir) = schemas_dir() else { return };
    let path = dir.join("spin-manifest-v2.schema.json");
    let schema: Value = serde_json::from_str(&read(&path)).expect("the schema is JSON");
    let manifest = spin_manifest();

    let mut misspelt = manifest.clone();
    let (_, component) = misspelt["component"]
        .as_object_mut()
        .and_then(|components| components.iter_mut().next())
        .expect("spin.toml has a component");
    component["key_value_store"] = Value::from(vec!["default"]);
    assert!(
        !schema_errors(&schema, &misspelt).is_empty(),
        "an unknown component field passed"
    );

    let mut numeric = manifest;
    numeric["variables"]["threshold"] = serde_json::json!({ "default": 100 });
    assert!(
        !schema_errors(&schema, &numeric).is_empty(),
        "a numeric variable default passed"
    );
}

// ---- (b) the SpinApps against the CRD --------------------------------------

#[test]
fn every_spinapp_in_deploy_matches_the_spinkube_crd() {
    let Some(dir) = schemas_dir() else { return };
    let crd = spinapp_crd(&dir);
    for (file, app) in spin_apps() {
        assert_eq!(
            app["apiVersion"],
            crd.api_version,
            "{}: apiVersion",
            file.display()
        );
        assert_eq!(app["kind"], crd.kind, "{}: kind", file.display());
        let errors = schema_errors(&crd.schema, &app);
        assert!(
            errors.is_empty(),
            "{} does not match the SpinApp CRD:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

/// The check above is worth something only if it can fail: a misspelt
/// field, a number written as a string and a missing required field are
/// each caught.
#[test]
fn the_crd_check_rejects_a_misspelt_field_a_wrong_type_and_a_missing_executor() {
    let Some(dir) = schemas_dir() else { return };
    let crd = spinapp_crd(&dir);
    let (_, app) = spin_apps().remove(0);

    let mut misspelt = app.clone();
    misspelt["spec"]["replica"] = Value::from(3);
    let errors = schema_errors(&crd.schema, &misspelt);
    assert!(
        errors.iter().any(|e| e.contains("replica")),
        "a misspelt `replica` passed: {errors:?}"
    );

    let mut nested = app.clone();
    nested["spec"]["checks"]["readiness"]["httpGet"]["paht"] = Value::from("/x");
    assert!(
        !schema_errors(&crd.schema, &nested).is_empty(),
        "a misspelt field inside checks passed"
    );

    let mut wrong_type = app.clone();
    wrong_type["spec"]["replicas"] = Value::from("2");
    assert!(
        !schema_errors(&crd.schema, &wrong_type).is_empty(),
        "replicas as a string passed"
    );

    let mut missing = app;
    missing["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("executor");
    assert!(
        !schema_errors(&crd.schema, &missing).is_empty(),
        "a SpinApp without an executor passed"
    );
}

// ---- (c) the deployment's shape --------------------------------------------

#[test]
fn spinapp_runs_at_least_two_replicas_on_the_spin_shim() {
    for (file, app) in spin_apps() {
        let spec = &app["spec"];
        let replicas = spec["replicas"]
            .as_i64()
            .unwrap_or_else(|| panic!("{}: spec.replicas is not set", file.display()));
        assert!(replicas >= 2, "{}: replicas = {replicas}", file.display());
        assert_eq!(
            spec["executor"],
            "containerd-shim-spin",
            "{}: executor",
            file.display()
        );
        // With autoscaling on, the operator leaves replicas to an
        // autoscaler and the count above would mean nothing.
        assert_ne!(
            spec["enableAutoscaling"],
            true,
            "{}: enableAutoscaling",
            file.display()
        );
    }
}

#[test]
fn spinapp_loads_its_runtime_config_from_the_secret_template() {
    let secret = runtime_config_secret();
    let name = secret["metadata"]["name"]
        .as_str()
        .expect("the Secret has a name");
    for (file, app) in spin_apps() {
        let runtime_config = app["spec"]["runtimeConfig"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no spec.runtimeConfig", file.display()));
        assert_eq!(
            runtime_config.get("loadFromSecret").and_then(Value::as_str),
            Some(name),
            "{}: runtimeConfig.loadFromSecret should name the Secret in {SECRET_TEMPLATE}",
            file.display()
        );
        // The operator ignores every other runtimeConfig field when
        // loadFromSecret is set: any here would only mislead a reader.
        assert_eq!(
            runtime_config.keys().collect::<Vec<_>>(),
            ["loadFromSecret"],
            "{}: runtimeConfig",
            file.display()
        );
    }
}

#[test]
fn runtime_config_secret_holds_a_redis_default_store() {
    let secret = runtime_config_secret();
    assert_eq!(secret["type"], "Opaque", "{SECRET_TEMPLATE}: type");
    let config = secret_runtime_config(&secret);
    let store = config
        .get("key_value_store")
        .and_then(|stores| stores.get("default"))
        .unwrap_or_else(|| panic!("{SECRET_TEMPLATE}: no [key_value_store.default]"));
    assert_eq!(
        store.get("type").and_then(|t| t.as_str()),
        Some("redis"),
        "{SECRET_TEMPLATE}: [key_value_store.default] type"
    );
    let url = store
        .get("url")
        .and_then(|u| u.as_str())
        .expect("[key_value_store.default] has a url");
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .unwrap_or_else(|| panic!("url {url:?} is not redis:// or rediss://"));
    let host = rest.rsplit('@').next().unwrap_or_default();
    assert!(
        !host.is_empty() && !host.starts_with(':'),
        "url {url:?} names no host"
    );
}

/// Every store a component uses is defined by the Secret's runtime config,
/// so no replica falls back to a SQLite file of its own (which Spin does,
/// silently, for `default`).
#[test]
fn runtime_config_secret_defines_every_store_spin_toml_uses() {
    let config = secret_runtime_config(&runtime_config_secret());
    let defined = config
        .get("key_value_store")
        .and_then(|s| s.as_table())
        .cloned()
        .unwrap_or_default();
    let manifest = spin_manifest();
    let components = manifest["component"]
        .as_object()
        .expect("spin.toml has [component.*]");
    let mut used = 0;
    for (id, component) in components {
        for store in component["key_value_stores"]
            .as_array()
            .map(|s| s.as_slice())
            .unwrap_or_default()
        {
            let store = store.as_str().expect("a store name");
            used += 1;
            assert!(
                defined.contains_key(store),
                "component `{id}` uses store `{store}`, which {SECRET_TEMPLATE} does not define"
            );
        }
    }
    assert!(used > 0, "no component of spin.toml uses a key-value store");
}

/// The Secret carries deploy/runtime-config.redis.toml: the same stores of
/// the same types and the same settings; only the URL may differ (the
/// template's is a placeholder).
#[test]
fn runtime_config_secret_carries_the_redis_runtime_config_file() {
    let path = root().join(REDIS_RUNTIME_CONFIG);
    assert!(
        path.exists(),
        "{REDIS_RUNTIME_CONFIG} is missing: the Secret template and deploy/README.md refer to it"
    );
    let file: toml::Table = read(&path)
        .parse()
        .unwrap_or_else(|e| panic!("{REDIS_RUNTIME_CONFIG} is not TOML: {e}"));
    let mut secret = secret_runtime_config(&runtime_config_secret());
    let mut file = file;
    for config in [&mut secret, &mut file] {
        for store in config
            .get_mut("key_value_store")
            .and_then(|s| s.as_table_mut())
            .into_iter()
            .flat_map(|stores| stores.iter_mut().map(|(_, store)| store))
            .filter_map(|store| store.as_table_mut())
        {
            store.remove("url");
        }
    }
    assert_eq!(
        secret, file,
        "{SECRET_TEMPLATE} and {REDIS_RUNTIME_CONFIG} differ (urls aside)"
    );
}

#[test]
fn spinapp_probes_readiness_and_liveness_on_the_health_endpoint() {
    for (file, app) in spin_apps() {
        for probe in ["readiness", "liveness"] {
            let check = &app["spec"]["checks"][probe];
            // The operator rejects a check without httpGet.
            assert_eq!(
                check["httpGet"]["path"],
                HEALTH_PATH,
                "{}: spec.checks.{probe}.httpGet.path",
                file.display()
            );
            for field in ["periodSeconds", "timeoutSeconds", "failureThreshold"] {
                if let Some(n) = check.get(field) {
                    assert!(
                        n.as_i64().is_some_and(|n| n >= 1),
                        "{}: checks.{probe}.{field} = {n} (minimum 1)",
                        file.display()
                    );
                }
            }
        }
        let success = &app["spec"]["checks"]["liveness"]["successThreshold"];
        assert!(
            success.is_null() || *success == 1,
            "{}: a liveness successThreshold must be 1",
            file.display()
        );
    }
}

/// The probes reach the app: some public HTTP route of spin.toml serves
/// the health path (a `/...` wildcard or the exact path).
#[test]
fn the_health_endpoint_is_served_by_a_public_route_of_spin_toml() {
    let manifest = spin_manifest();
    let routes: Vec<&str> = manifest["trigger"]["http"]
        .as_array()
        .expect("spin.toml has [[trigger.http]]")
        .iter()
        .filter_map(|t| t["route"].as_str())
        .collect();
    let serves = |route: &str| match route.strip_suffix("/...") {
        Some(prefix) => HEALTH_PATH == prefix || HEALTH_PATH.starts_with(&format!("{prefix}/")),
        None => route == HEALTH_PATH,
    };
    assert!(
        routes.iter().any(|r| serves(r)),
        "no public route of spin.toml serves {HEALTH_PATH}: {routes:?}"
    );
}

// ---- rolling updates -------------------------------------------------------

/// The Deployment patch that carries what the SpinApp CRD cannot say about
/// rolling updates (a subdirectory: `kubectl apply -f deploy/` skips it).
const ROLLOUT_PATCH: &str = "deploy/patches/rollout.yaml";

/// What a rollout without errors needs on the Deployment and its pod,
/// beyond the probes: none of it has a field in the SpinApp CRD.
const DEPLOYMENT_ONLY_FIELDS: [&str; 7] = [
    "strategy",
    "rollingUpdate",
    "maxSurge",
    "maxUnavailable",
    "minReadySeconds",
    "terminationGracePeriodSeconds",
    "lifecycle",
];

/// Every property name anywhere under a schema.
fn property_names(schema: &Value, names: &mut std::collections::BTreeSet<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            names.insert(name.clone());
            property_names(sub, names);
        }
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            property_names(&schema[key], names);
        }
    }
}

/// How long edge-runner lets in-flight requests finish after SIGTERM, read
/// from its source (`ServerLimits::default`, `shutdown_grace`), so the
/// grace period follows it.
fn runner_drain_seconds() -> i64 {
    let path = root().join("runner/src/server.rs");
    let text = read(&path);
    let needle = "shutdown_grace: Duration::from_secs(";
    let start = text
        .find(needle)
        .unwrap_or_else(|| panic!("{}: no `{needle}` (the drain)", path.display()))
        + needle.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("{}: the drain is not whole seconds: {e}", path.display()))
}

fn integer(value: &Value, what: &str) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{ROLLOUT_PATCH}: {what} is not an integer: {value}"))
}

/// The CRD side: probes exist (readiness and liveness with an HTTP path;
/// no startup probe), and the rest of a rollout's settings do not, so a
/// SpinApp carrying them is rejected and they live in the Deployment patch.
/// When a future CRD gains one, this fails: move it into spinapp.yaml.
#[test]
fn the_spinapp_crd_has_probes_but_no_surge_or_grace_period_fields() {
    let Some(dir) = schemas_dir() else { return };
    let crd = spinapp_crd(&dir);
    let spec = &crd.schema["properties"]["spec"];
    let checks = spec["properties"]["checks"]["properties"]
        .as_object()
        .expect("the CRD has spec.checks");
    let mut offered: Vec<&String> = checks.keys().collect();
    offered.sort();
    assert_eq!(offered, ["liveness", "readiness"], "checks the CRD offers");
    for probe in ["readiness", "liveness"] {
        assert!(
            checks[probe]["properties"]["httpGet"]["properties"]["path"].is_object(),
            "the CRD's checks.{probe} has httpGet.path"
        );
    }

    let mut names = std::collections::BTreeSet::new();
    property_names(spec, &mut names);
    for field in DEPLOYMENT_ONLY_FIELDS {
        assert!(
            !names.contains(field),
            "the SpinApp CRD now has a `{field}` field: set it in deploy/spinapp.yaml and drop it from {ROLLOUT_PATCH}"
        );
    }
    for (file, app) in spin_apps() {
        for (field, value) in [
            ("terminationGracePeriodSeconds", serde_json::json!(30)),
            ("strategy", serde_json::json!({ "type": "RollingUpdate" })),
            ("minReadySeconds", serde_json::json!(5)),
        ] {
            let mut with = app.clone();
            with["spec"][field] = value;
            assert!(
                !schema_errors(&crd.schema, &with).is_empty(),
                "{}: spec.{field} passed the CRD check",
                file.display()
            );
        }
    }
}

/// The Deployment side: one pod of surge, none unavailable (an old pod
/// goes only once its replacement is Ready on /api/health), and a grace
/// period that covers the preStop pause plus the runner's drain.
#[test]
fn the_rollout_patch_surges_before_it_removes_and_its_grace_period_covers_the_drain() {
    let path = root().join(ROLLOUT_PATCH);
    let docs = yaml_documents(&path);
    assert_eq!(docs.len(), 1, "{ROLLOUT_PATCH}: one patch document");
    let patch = &docs[0];
    let keys = |v: &Value, what: &str| -> Vec<String> {
        v.as_object()
            .unwrap_or_else(|| panic!("{ROLLOUT_PATCH}: {what} is not a mapping"))
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    // A strategic-merge patch of the operator's Deployment: no apiVersion,
    // kind or metadata (kubectl names the Deployment), and only known keys,
    // since there is no Deployment schema here to catch a misspelling.
    assert_eq!(keys(patch, "the document"), ["spec"]);
    let spec = &patch["spec"];
    assert_eq!(
        keys(spec, "spec"),
        ["minReadySeconds", "strategy", "template"]
    );

    let strategy = &spec["strategy"];
    assert_eq!(strategy["type"], "RollingUpdate", "{ROLLOUT_PATCH}");
    assert_eq!(
        keys(&strategy["rollingUpdate"], "rollingUpdate"),
        ["maxSurge", "maxUnavailable"]
    );
    let surge = integer(&strategy["rollingUpdate"]["maxSurge"], "maxSurge");
    let unavailable = integer(
        &strategy["rollingUpdate"]["maxUnavailable"],
        "maxUnavailable",
    );
    assert!(
        surge >= 1,
        "{ROLLOUT_PATCH}: maxSurge {surge}: a rollout must add pods"
    );
    assert_eq!(
        unavailable, 0,
        "{ROLLOUT_PATCH}: no Ready pod is removed before its replacement is Ready"
    );
    assert!(integer(&spec["minReadySeconds"], "minReadySeconds") >= 1);

    let pod = &spec["template"]["spec"];
    assert_eq!(keys(&spec["template"], "template"), ["spec"]);
    assert_eq!(
        keys(pod, "template.spec"),
        ["containers", "terminationGracePeriodSeconds"]
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(
        containers.len(),
        1,
        "{ROLLOUT_PATCH}: the one app container"
    );
    let container = &containers[0];
    assert_eq!(keys(container, "the container"), ["lifecycle", "name"]);
    // The operator names the container after the SpinApp; a strategic merge
    // matches containers by name, so another name would add a container.
    for (file, app) in spin_apps() {
        assert_eq!(
            container["name"],
            app["metadata"]["name"],
            "{ROLLOUT_PATCH}: the container of {}",
            file.display()
        );
    }
    assert_eq!(keys(&container["lifecycle"], "lifecycle"), ["preStop"]);
    assert_eq!(
        keys(&container["lifecycle"]["preStop"], "preStop"),
        ["sleep"],
        "the kubelet's sleep action: the Wasm container has no shell"
    );
    let pause = integer(
        &container["lifecycle"]["preStop"]["sleep"]["seconds"],
        "preStop.sleep.seconds",
    );
    assert!(pause >= 1, "{ROLLOUT_PATCH}: preStop pause {pause}");

    let grace = integer(
        &pod["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    );
    let drain = runner_drain_seconds();
    assert!(
        grace > pause + drain,
        "{ROLLOUT_PATCH}: terminationGracePeriodSeconds {grace} does not cover the preStop pause ({pause} s) plus the runner's drain ({drain} s)"
    );

    // The readiness check is what maxUnavailable 0 waits for.
    for (file, app) in spin_apps() {
        assert_eq!(
            app["spec"]["checks"]["readiness"]["httpGet"]["path"],
            HEALTH_PATH,
            "{}",
            file.display()
        );
    }
    // And the deploy guide says how to apply it.
    let guide = read(&root().join("deploy/README.md"));
    assert!(
        guide.contains("--patch-file deploy/patches/rollout.yaml"),
        "deploy/README.md does not show how to apply {ROLLOUT_PATCH}"
    );
}

#[test]
fn spinapp_limits_cpu_and_memory() {
    for (file, app) in spin_apps() {
        let limits = &app["spec"]["resources"]["limits"];
        for resource in ["cpu", "memory"] {
            assert!(
                limits[resource].is_string() || limits[resource].is_number(),
                "{}: spec.resources.limits.{resource} is not set",
                file.display()
            );
        }
    }
}

/// The image tag follows the app's version, so a release bumps both.
#[test]
fn spinapp_image_is_tagged_with_the_spin_toml_version() {
    let manifest = spin_manifest();
    let version = manifest["application"]["version"]
        .as_str()
        .expect("spin.toml has [application] version");
    for (file, app) in spin_apps() {
        let image = app["spec"]["image"].as_str().expect("spec.image");
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        assert_eq!(tag, Some(version), "{}: image {image}", file.display());
    }
}

/// The names become a Deployment, a Service and pods: a DNS-1035 label
/// for the SpinApp (Service names), a DNS-1123 subdomain for the Secret.
#[test]
fn manifest_names_are_valid_kubernetes_names() {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let label = |name: &str| {
        (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.ends_with(lower_alnum)
            && name.chars().all(|c| lower_alnum(c) || c == '-')
    };
    let subdomain = |name: &str| {
        (1..=253).contains(&name.len())
            && name.starts_with(lower_alnum)
            && name.ends_with(lower_alnum)
            && name.chars().all(|c| lower_alnum(c) || c == '-' || c == '.')
    };
    for (file, app) in spin_apps() {
        let name = app["metadata"]["name"].as_str().expect("metadata.name");
        assert!(label(name), "{}: name {name:?}", file.display());
    }
    let secret = runtime_config_secret();
    let name = secret["metadata"]["name"].as_str().expect("metadata.name");
    assert!(subdomain(name), "{SECRET_TEMPLATE}: name {name:?}");
}

// ---- (d) variables ---------------------------------------------------------

#[test]
fn spinapp_provides_every_variable_spin_toml_requires() {
    let declared = declared_variables(&spin_manifest());
    let required: Vec<&String> = declared
        .iter()
        .filter(|(_, v)| v["required"] == true)
        .map(|(name, _)| name)
        .collect();
    for (file, app) in spin_apps() {
        let set: Vec<String> = spinapp_variables(&file, &app)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in &required {
            assert!(
                set.contains(name),
                "{}: spin.toml requires variable `{name}`, which the SpinApp does not set",
                file.display()
            );
        }
    }
}

#[test]
fn spinapp_sets_only_variables_spin_toml_declares() {
    let declared = declared_variables(&spin_manifest());
    for (file, app) in spin_apps() {
        for (name, var) in spinapp_variables(&file, &app) {
            assert!(
                declared.contains_key(&name),
                "{}: variable `{name}` is not declared in spin.toml's [variables]; \
                 Spin ignores such a variable, so a typo here silently keeps the default",
                file.display()
            );
            assert!(
                var.get("value").is_some() != var.get("valueFrom").is_some(),
                "{}: variable `{name}` needs exactly one of value and valueFrom",
                file.display()
            );
        }
    }
}

/// A secret variable comes from a Kubernetes Secret, never a literal in
/// the manifest; and what comes from a Secret is marked secret in spin.toml
/// (so Spin keeps it out of its logs).
#[test]
fn secret_variables_come_from_kubernetes_secrets() {
    let declared = declared_variables(&spin_manifest());
    for (file, app) in spin_apps() {
        for (name, var) in spinapp_variables(&file, &app) {
            let from_secret = var["valueFrom"]["secretKeyRef"].is_object();
            let secret = declared
                .get(&name)
                .is_some_and(|decl| decl["secret"] == true);
            if secret {
                assert!(
                    from_secret,
                    "{}: secret variable `{name}` is set as a literal; use valueFrom.secretKeyRef",
                    file.display()
                );
            }
            if from_secret {
                assert!(
                    secret,
                    "{}: `{name}` comes from a Secret but spin.toml does not mark it `secret = true`",
                    file.display()
                );
                let key_ref = &var["valueFrom"]["secretKeyRef"];
                assert!(
                    key_ref["name"].as_str().is_some_and(|n| !n.is_empty())
                        && key_ref["key"].as_str().is_some_and(|k| !k.is_empty()),
                    "{}: `{name}`: secretKeyRef needs a name and a key",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_admin_token_comes_from_a_secret() {
    for (file, app) in spin_apps() {
        let vars = spinapp_variables(&file, &app);
        let (_, admin) = vars
            .iter()
            .find(|(name, _)| name == "admin_token")
            .unwrap_or_else(|| panic!("{}: admin_token is not set", file.display()));
        assert!(
            admin["valueFrom"]["secretKeyRef"].is_object(),
            "{}: admin_token should come from valueFrom.secretKeyRef",
            file.display()
        );
    }
}
