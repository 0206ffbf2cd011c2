//! docs/openapi.yaml kept true: real answers of the running app, one per
//! route and per status it can be made to give, are checked against the
//! document (the status is documented for that path and method, the
//! documented headers are there and valid, the body validates against the
//! documented schema), and every documented status is seen at least once.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12; local `$ref`s
//! (`#/components/...`) are inlined by a small resolver before validation.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{
    ADMIN_TOKEN, App, admin_request, batch, free_port, item, process, redis_runtime_config,
};
use crate::helpers::{Response, root};
use crate::upstream::{Behaviour, FakeUpstream};

/// The document, with every local `$ref` inlined.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Spec {
        let path = root().join("docs/openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("read docs/openapi.yaml");
        let raw: Value = serde_yaml_ng::from_str(&text).expect("docs/openapi.yaml is YAML");
        assert_eq!(raw["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        let doc = inline_refs(&raw, &raw, 0);
        Spec { doc }
    }

    /// The path template matching a concrete path (`{param}` = one segment).
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let wanted: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == wanted.len()
                    && parts
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| (t.starts_with('{') && t.ends_with('}')) || t == w)
            })
            .cloned()
    }

    /// The methods documented for a path template, upper-case.
    fn methods(&self, template: &str) -> Vec<String> {
        self.doc["paths"][template]
            .as_object()
            .map(|item| item.keys().map(|m| m.to_ascii_uppercase()).collect())
            .unwrap_or_default()
    }

    /// The operation a real answer belongs to: its own method, except for a
    /// 405, which answers a method the path does not have and is documented
    /// under the path's one operation (the method its `Allow` names).
    fn operation_method(&self, method: &str, template: &str, status: u16) -> String {
        let methods = self.methods(template);
        if status == 405 && !methods.iter().any(|m| m == method) && methods.len() == 1 {
            methods[0].clone()
        } else {
            method.to_string()
        }
    }

    /// The documented response for `status`, or a description of what is
    /// missing.
    fn response(&self, method: &str, template: &str, status: u16) -> Result<&Value, String> {
        let operation = &self.doc["paths"][template][method.to_ascii_lowercase()];
        if !operation.is_object() {
            return Err(format!("{method} {template} is not documented"));
        }
        let response = &operation["responses"][status.to_string()];
        if response.is_object() {
            Ok(response)
        } else {
            Err(format!(
                "{method} {template}: status {status} is not documented"
            ))
        }
    }

    /// Every documented (method, path, status).
    fn documented(&self) -> BTreeSet<(String, String, u16)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for status in responses.keys() {
                    let status = status.parse().expect("numeric status");
                    out.insert((method.to_ascii_uppercase(), path.clone(), status));
                }
            }
        }
        out
    }

    /// The problems of one real answer against the document.
    fn check(&self, method: &str, path: &str, res: &Response) -> Vec<String> {
        let Some(template) = self.template(path) else {
            return vec![format!("no documented path matches {path}")];
        };
        let operation = self.operation_method(method, &template, res.status);
        let response = match self.response(&operation, &template, res.status) {
            Ok(response) => response,
            Err(problem) => return vec![problem],
        };
        let mut problems = Vec::new();
        if res.status == 405 && res.header("allow") != Some(operation.as_str()) {
            problems.push(format!(
                "Allow is {:?}, the documented method is {operation}",
                res.header("allow")
            ));
        }
        if let Some(headers) = response["headers"].as_object() {
            for (name, header) in headers {
                match res.header(name) {
                    Some(value) => {
                        let value = Value::String(value.to_string());
                        for e in schema_errors(&header["schema"], &value) {
                            problems.push(format!("header {name}: {e}"));
                        }
                    }
                    None if header["required"] == true => {
                        problems.push(format!("required header {name} is missing"));
                    }
                    None => {}
                }
            }
        }
        let content = &response["content"];
        let Some(media) = content.as_object() else {
            if !res.body.is_empty() {
                problems.push("a body where none is documented".into());
            }
            return problems;
        };
        let content_type = res.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let Some(documented) = media.get(essence) else {
            problems.push(format!("content-type {content_type:?} is not documented"));
            return problems;
        };
        let body: Value = match serde_json::from_slice(&res.body) {
            Ok(body) => body,
            Err(e) => {
                problems.push(format!("the body is not JSON: {e}"));
                return problems;
            }
        };
        for e in schema_errors(&documented["schema"], &body) {
            problems.push(format!("body: {e}"));
        }
        problems
    }
}

/// Replaces every `{"$ref": "#/…"}` by the node it points to, recursively.
/// The document has no recursive schemas; `depth` guards against one.
fn inline_refs(node: &Value, doc: &Value, depth: usize) -> Value {
    assert!(depth < 32, "$ref chain too deep (a recursive schema?)");
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
                let target = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("$ref {reference} points nowhere"));
                // OpenAPI 3.1 allows siblings next to `$ref` (e.g. a
                // description); the target's keywords win.
                let mut merged = inline_refs(target, doc, depth + 1);
                if let Value::Object(out) = &mut merged {
                    for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                        out.entry(k.clone())
                            .or_insert_with(|| inline_refs(v, doc, depth + 1));
                    }
                }
                merged
            } else {
                Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), inline_refs(v, doc, depth)))
                        .collect(),
                )
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| inline_refs(v, doc, depth)).collect())
        }
        other => other.clone(),
    }
}

/// The errors of `instance` against a (ref-free) JSON Schema 2020-12.
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    if schema.is_null() {
        return Vec::new();
    }
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("the documented schema does not compile: {e}: {schema}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// Real answers, each with the method and path that produced it.
struct Observed {
    answers: Vec<(String, String, Response)>,
}

impl Observed {
    fn add(&mut self, method: &str, path: &str, res: Response) {
        self.answers.push((method.into(), path.into(), res));
    }
}

#[test]
fn the_resolver_inlines_nested_refs() {
    let doc = serde_json::json!({
        "a": {"$ref": "#/components/schemas/B", "description": "kept"},
        "components": {"schemas": {
            "B": {"type": "object", "properties": {"c": {"$ref": "#/components/schemas/C"}}},
            "C": {"type": "integer"}
        }}
    });
    let out = inline_refs(&doc, &doc, 0);
    assert_eq!(
        out["a"]["properties"]["c"],
        serde_json::json!({"type": "integer"})
    );
    assert_eq!(out["a"]["description"], "kept");
}

#[test]
fn every_documented_schema_compiles_and_its_examples_validate() {
    let spec = Spec::load();
    for (name, schema) in spec.doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
    {
        jsonschema::draft202012::new(schema)
            .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
    }
    let mut examples = 0;
    for (path, item) in spec.doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bodies = [
                operation["requestBody"]["content"]["application/json"].clone(),
                operation["responses"]["200"]["content"]["application/json"].clone(),
            ];
            for media in bodies {
                if media["example"].is_null() {
                    continue;
                }
                let errors = schema_errors(&media["schema"], &media["example"]);
                assert!(errors.is_empty(), "{method} {path} example: {errors:?}");
                examples += 1;
            }
        }
    }
    assert!(examples >= 4, "the examples are checked ({examples})");
}

#[test]
fn the_running_app_answers_as_documented() {
    let spec = Spec::load();
    let mut seen = Observed {
        answers: Vec::new(),
    };

    // The app with an admin token and a working upstream.
    let upstream = FakeUpstream::start(Behaviour::Json(r#"{"any":["json",1]}"#.into()));
    let r = App::new()
        .admin()
        .var("upstream_origin", upstream.origin())
        .var("upstream_timeout_ms", 500)
        .var("max_body_bytes", 2048)
        .var("max_batch_items", 3)
        .start();
    let get = |path: &str| r.get(path);
    seen.add("GET", "/api/health", get("/api/health"));
    seen.add(
        "POST",
        "/api/health",
        r.request("POST", "/api/health", &[], b""),
    );

    let one = item("doc", 150, 1);
    seen.add("POST", "/api/process", process(&r, &one));
    seen.add("POST", "/api/process", process(&r, &one)); // hit
    seen.add("POST", "/api/process", process(&r, &item("doc", 5, 1)));
    seen.add("POST", "/api/process", process(&r, "{"));
    seen.add("POST", "/api/process", process(&r, r#"{"id":"a"}"#));
    seen.add("POST", "/api/process", process(&r, &item("", 1, 1)));
    seen.add("POST", "/api/process", process(&r, &" ".repeat(4096)));
    seen.add(
        "POST",
        "/api/process",
        r.request(
            "POST",
            "/api/process",
            &[("content-type", "text/plain")],
            b"{}",
        ),
    );
    seen.add("GET", "/api/process", get("/api/process"));

    seen.add(
        "POST",
        "/api/process/batch",
        batch(
            &r,
            r#"[{"id":"a","value":150,"timestamp":1},{"id":"b","value":-1,"timestamp":1},7]"#,
        ),
    );
    seen.add("POST", "/api/process/batch", batch(&r, "[]"));
    seen.add("POST", "/api/process/batch", batch(&r, "{}"));
    seen.add("POST", "/api/process/batch", batch(&r, "[{},{},{},{}]"));
    seen.add("POST", "/api/process/batch", batch(&r, &" ".repeat(4096)));
    seen.add(
        "POST",
        "/api/process/batch",
        r.request("POST", "/api/process/batch", &[], b"[]"),
    );
    seen.add(
        "PUT",
        "/api/process/batch",
        r.request("PUT", "/api/process/batch", &[], b""),
    );

    seen.add("GET", "/api/data/doc-key", get("/api/data/doc-key")); // miss
    seen.add("GET", "/api/data/doc-key", get("/api/data/doc-key")); // hit
    seen.add("GET", "/api/data/a%2Fb", get("/api/data/a%2Fb"));
    seen.add(
        "DELETE",
        "/api/data/x",
        r.request("DELETE", "/api/data/x", &[], b""),
    );
    upstream.set(Behaviour::Status(404));
    seen.add("GET", "/api/data/missing", get("/api/data/missing"));
    upstream.set(Behaviour::Status(500));
    seen.add("GET", "/api/data/failing", get("/api/data/failing"));
    upstream.set(Behaviour::Stall);
    seen.add("GET", "/api/data/slow", get("/api/data/slow"));

    // A body that stalls after its headers: the router's 408 (both at once,
    // each takes the router's 10 s).
    let addr = r.addr;
    let stalls: Vec<_> = ["/api/process", "/api/process/batch"]
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || {
                let raw = format!(
                    "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[{{\"id\""
                );
                let bytes =
                    crate::helpers::raw_exchange(addr, raw.as_bytes(), Duration::from_secs(30));
                (path, crate::helpers::parse_response(&bytes))
            })
        })
        .collect();
    for stall in stalls {
        let (path, res) = stall.join().unwrap();
        let res = res.unwrap_or_else(|| panic!("no answer to a stalled body on {path}"));
        assert_eq!(res.status, 408, "{}", res.text());
        seen.add("POST", path, res);
    }

    for token in [ADMIN_TOKEN, "wrong"] {
        seen.add(
            "GET",
            "/api/cache/stats",
            admin_request(&r, "GET", "/api/cache/stats", token),
        );
        seen.add(
            "DELETE",
            "/api/cache",
            admin_request(&r, "DELETE", "/api/cache", token),
        );
    }
    seen.add(
        "POST",
        "/api/cache/stats",
        r.request("POST", "/api/cache/stats", &[], b""),
    );
    seen.add("GET", "/api/cache", get("/api/cache"));

    // Admin disabled; no upstream.
    let bare = App::new().start();
    seen.add("GET", "/api/cache/stats", bare.get("/api/cache/stats"));
    seen.add(
        "DELETE",
        "/api/cache",
        bare.request("DELETE", "/api/cache", &[], b""),
    );
    seen.add("GET", "/api/data/k", bare.get("/api/data/k"));

    // Broken configuration: the generic 500s.
    let broken = App::new()
        .admin()
        .var("multiplier", 0)
        .var("upstream_origin", "http://127.0.0.1:9/with-a-path")
        .start();
    seen.add("POST", "/api/process", process(&broken, &one));
    seen.add("POST", "/api/process/batch", batch(&broken, "[]"));
    seen.add("GET", "/api/data/k", broken.get("/api/data/k"));
    seen.add(
        "GET",
        "/api/cache/stats",
        admin_request(&broken, "GET", "/api/cache/stats", ADMIN_TOKEN),
    );
    seen.add(
        "DELETE",
        "/api/cache",
        admin_request(&broken, "DELETE", "/api/cache", ADMIN_TOKEN),
    );

    // The store down: the admin routes' 503.
    let down = App::new()
        .admin()
        .runtime_config(redis_runtime_config(free_port()))
        .start();
    seen.add(
        "GET",
        "/api/cache/stats",
        admin_request(&down, "GET", "/api/cache/stats", ADMIN_TOKEN),
    );
    seen.add(
        "DELETE",
        "/api/cache",
        admin_request(&down, "DELETE", "/api/cache", ADMIN_TOKEN),
    );
    seen.add("POST", "/api/process", process(&down, &one)); // bypass
    seen.add("GET", "/api/health", down.get("/api/health"));

    // Check every answer; collect what was covered.
    let mut problems = Vec::new();
    let mut covered = BTreeSet::new();
    for (method, path, res) in &seen.answers {
        for p in spec.check(method, path, res) {
            problems.push(format!(
                "{method} {path} → {}: {p}\n    body: {}",
                res.status,
                res.text()
            ));
        }
        if let Some(template) = spec.template(path) {
            let operation = spec.operation_method(method, &template, res.status);
            covered.insert((operation, template, res.status));
        }
    }
    assert!(
        problems.is_empty(),
        "answers the document does not describe:\n{}",
        problems.join("\n")
    );

    let missing: Vec<_> = spec.documented().difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented but never seen (trigger them here, or fix the document): {missing:?}"
    );
}

#[test]
fn an_unknown_route_answers_the_documented_error_shape() {
    let spec = Spec::load();
    let error_schema = &spec.doc["components"]["schemas"]["Error"];
    let r = App::new().start();
    for path in ["/", "/nope", "/api/processes"] {
        let res = r.get(path);
        assert_eq!(res.status, 404);
        let errors = schema_errors(error_schema, &res.json());
        assert!(errors.is_empty(), "{path}: {errors:?}");
        let rid_schema = &spec.doc["components"]["headers"]["RequestId"]["schema"];
        let rid = Value::String(res.header("x-request-id").unwrap_or("").into());
        assert!(schema_errors(rid_schema, &rid).is_empty());
    }
}
