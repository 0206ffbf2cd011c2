use std::path::{Path, PathBuf};

use super::*;
use crate::manifest::parse;

/// A manifest in a temp dir, with its local sources present.
fn loaded(text: &str) -> (tempfile::TempDir, anyhow::Result<LoadedManifest>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, text).unwrap();
    place_sources(&path);
    let result = load(&path);
    (dir, result)
}

/// Writes a placeholder file at every local source a manifest names (Spin's
/// loader resolves the path but does not read the Wasm).
fn place_sources(manifest: &Path) {
    let Ok(m) = LoadedManifest::load(manifest) else {
        return;
    };
    let inline = m
        .manifest
        .trigger
        .values()
        .flatten()
        .filter_map(|t| match &t.component {
            Some(ComponentSpec::Inline(c)) => Some(&**c),
            _ => None,
        });
    for c in m.manifest.component.values().chain(inline) {
        if let Source::Local(p) = &c.source {
            let path = m.dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"\0asm").unwrap();
        }
    }
}

fn app(variables: &str, hosts: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
{variables}
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
allowed_outbound_hosts = {hosts}
"#
    )
}

fn load_error(text: &str) -> String {
    let (_dir, result) = loaded(text);
    format!("{:#}", result.unwrap_err())
}

#[test]
fn a_templated_host_whose_default_is_invalid_is_refused_naming_component_field_and_fault() {
    let e = load_error(&app(
        r#"upstream_origin = { default = "" }"#,
        r#"["{{ upstream_origin }}"]"#,
    ));
    assert!(e.contains("Failed to load component `web`"), "{e}");
    assert!(e.contains("`allowed_outbound_hosts` is malformed"), "{e}");
    assert!(
        e.contains(r#"using default variable value(s) with template "{{ upstream_origin }}" results in invalid config """#),
        "{e}"
    );
    assert!(
        e.contains(r#""" is not an allowed outbound host format"#),
        "{e}"
    );
}

#[test]
fn a_templated_host_is_checked_with_defaults_not_with_provider_values() {
    // SPIN_VARIABLE_* and --variable play no part at load: only the default.
    let text = app(
        r#"host = { default = "invalid host" }"#,
        r#"["https://{{ host }}"]"#,
    );
    let e = load_error(&text);
    assert!(e.contains("invalid international domain name"), "{e}");
    let ok = app(
        r#"host = { default = "api.example.com" }"#,
        r#"["https://{{ host }}"]"#,
    );
    assert!(loaded(&ok).1.is_ok());
}

#[test]
fn a_templated_host_whose_variable_has_no_default_is_skipped_as_spin_skips_it() {
    let required = app(r#"host = { required = true }"#, r#"["https://{{ host }}"]"#);
    assert!(loaded(&required).1.is_ok());
    // An undeclared variable cannot be resolved either: Spin skips it too.
    let undeclared = app("", r#"["https://{{ nowhere }}"]"#);
    assert!(loaded(&undeclared).1.is_ok());
    // An unmatched `{{` is a template error, not skipped.
    let broken = app("", r#"["https://{{ nowhere"]"#);
    assert!(load_error(&broken).contains("unmatched"));
}

#[test]
fn literal_hosts_are_checked_as_spin_parses_them() {
    for good in [
        "https://example.com",
        "http://localhost:3000",
        "*://*:*",
        "https://*.example.com",
        "http://127.0.0.1:8080",
        "http://10.0.0.0/8",
        "redis://cache",
        "mqtt://broker:1883",
        "tcp://db:5432..5434",
        "http://self",
        "https://example.com/",
        "http://[::1]:80",
    ] {
        assert!(
            parse_allowed_host(good).is_ok(),
            "{good}: {:?}",
            parse_allowed_host(good)
        );
    }
    for (bad, fault) in [
        ("example.com", "does not contain a scheme"),
        ("", "is not an allowed outbound host format"),
        ("https://example.com/data", "must not include a path"),
        ("https://example.com:443/data", "has a path"),
        ("tcp://db", "does not have a known default port"),
        ("https://example.com:http", "is not a number"),
        ("h2c://example.com:80", "only alphabetic characters"),
        (
            "https://ex*ample.com",
            "wildcards are allowed only as subdomains",
        ),
        (
            "https://*.ex*.com",
            "wildcards are allowed only as prefixes",
        ),
        ("https://invalid host", "invalid international domain name"),
    ] {
        let e = format!("{:#}", parse_allowed_host(bad).unwrap_err());
        assert!(e.contains(fault), "{bad}: {e}");
    }
    let e = load_error(&app("", r#"["insecure:allow-all"]"#));
    assert!(e.contains("'insecure:allow-all' is not allowed"), "{e}");
}

#[test]
fn a_variable_must_be_required_or_have_a_default() {
    for decl in [
        r#"x = { required = true, default = "1" }"#,
        r#"x = { secret = true }"#,
    ] {
        let e = load_error(&app(decl, "[]"));
        assert!(
            e.contains("variables.x: must be `required` OR have a `default`"),
            "{e}"
        );
    }
}

#[test]
fn a_component_variable_naming_an_undeclared_variable_is_refused() {
    let text = format!(
        "{}[component.web.variables]\nx = \"{{{{ nope }}}}\"\n",
        app("", "[]")
    );
    let e = load_error(&text);
    assert!(e.contains("unknown variable \"nope\""), "{e}");
}

#[test]
fn http_trigger_settings_are_spins_and_no_others() {
    let base = app("", "[]");
    let with = |from: &str, to: &str| base.replace(from, to);
    let e = load_error(&with(
        "route = \"/...\"",
        "route = \"/...\"\nroutes = \"/x\"",
    ));
    assert!(e.contains("unknown field `routes`"), "{e}");
    let e = load_error(&with("route = \"/...\"\n", ""));
    assert!(e.contains("missing field `route`"), "{e}");
    let e = load_error(&with("route = \"/...\"", "route = { private = false }"));
    assert!(e.contains("private = false"), "{e}");
    let e = load_error(&with("component = \"web\"", "component = \"webb\""));
    assert!(e.contains("no component `webb`"), "{e}");
    for executor in ["{ type = \"http\" }", "{ type = \"spin\" }"] {
        let text = with(
            "route = \"/...\"",
            &format!("route = \"/...\"\nexecutor = {executor}"),
        );
        assert!(loaded(&text).1.is_ok(), "{executor}");
    }
    let e = load_error(&with(
        "route = \"/...\"",
        "route = \"/...\"\nexecutor = { type = \"cgi\" }",
    ));
    assert!(e.contains("cgi"), "{e}");
}

#[test]
fn an_http_base_other_than_slash_is_refused_as_spin_refuses_it() {
    let base = app("", "[]");
    let with_base = |b: &str| {
        base.replace(
            "name = \"t\"\n",
            &format!("name = \"t\"\n[application.trigger.http]\nbase = \"{b}\"\n"),
        )
    };
    assert!(loaded(&with_base("/")).1.is_ok());
    let e = load_error(&with_base("/api"));
    assert!(e.contains("deprecated trigger 'base' field"), "{e}");
}

#[test]
fn a_missing_local_source_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, app("", "[]")).unwrap();
    let e = format!("{:#}", load(&path).unwrap_err());
    assert!(e.contains("Failed to load component `web`"), "{e}");
    assert!(e.contains("Failed to load Wasm source \"web.wasm\""), "{e}");
}

#[test]
fn a_url_source_needs_a_sha256_digest() {
    let text = app("", "[]").replace(
        "source = \"web.wasm\"",
        "source = { url = \"https://example.com/a.wasm\", digest = \"md5:00\" }",
    );
    let e = load_error(&text);
    assert!(e.contains("must start with 'sha256:'"), "{e}");
}

#[test]
fn what_spin_accepts_but_edge_runner_lacks_is_refused_by_name() {
    let base = app("", "[]");
    let cases = [
        (
            base.replace("[[trigger.http]]", "[[trigger.redis]]"),
            "trigger.redis",
        ),
        (
            base.replace(
                "component = \"web\"",
                "component = { source = \"web.wasm\" }",
            ),
            "inline components",
        ),
        (
            base.replace(
                "route = \"/...\"",
                "route = \"/...\"\nexecutor = { type = \"wagi\" }",
            ),
            "WAGI",
        ),
        (format!("{base}files = [\"static/*\"]\n"), "files"),
    ];
    for (text, named) in cases {
        let m = parse(&text).unwrap();
        let e = format!("{:#}", check_supported(&m).unwrap_err());
        assert!(e.contains(named), "{named}: {e}");
    }
    assert!(check_supported(&parse(&base).unwrap()).is_ok());
    // SQLite is provided (fermyon:spin/sqlite@2.0.0).
    let sqlite = format!("{base}sqlite_databases = [\"default\", \"analytics\"]\n");
    assert!(check_supported(&parse(&sqlite).unwrap()).is_ok());
}

#[test]
fn the_apps_own_manifest_passes_every_load_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let m = LoadedManifest::load(&root.join("spin.toml")).unwrap();
    check(&m).unwrap_or_else(|e| panic!("{e:#}"));
    check_supported(&m.manifest).unwrap_or_else(|e| panic!("{e:#}"));
}

// ---- Spin's own test data (../shared/spin-ui) ----

fn spin_ui() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spin-ui");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent, so Spin's manifest and loader test data cannot be checked",
            dir.display()
        );
        None
    }
}

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    out
}

/// A manifest in Spin's old format (valid TOML with `spin_version = "1"`).
fn is_v1(text: &str) -> bool {
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("spin_version").cloned())
        == Some(toml::Value::String("1".into()))
}

/// What an `.err` says, as lines our error must hold: the first line, each
/// numbered cause, and the last line (`<test-dir>` replaced).
fn expected_lines(err: &str, test_dir: &Path) -> Vec<String> {
    let err = err.replace("<test-dir>", &test_dir.display().to_string());
    let lines: Vec<&str> = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = vec![lines[0].to_string()];
    for l in &lines {
        if let Some((n, text)) = l.split_once(": ")
            && n.parse::<u32>().is_ok()
        {
            out.push(text.to_string());
        }
    }
    // The last line is the fault, unless it is the TOML parser's own grammar
    // message, whose wording changes between toml versions: then the
    // position ("TOML parse error at line 6, column 4") is what must match.
    let last = lines[lines.len() - 1];
    let last = match last.split_once(": ") {
        Some((n, text)) if n.parse::<u32>().is_ok() => text,
        _ => last,
    };
    if last.starts_with("expected ") {
        out.extend(
            lines
                .iter()
                .find(|l| l.starts_with("TOML parse error at"))
                .map(|l| l.to_string()),
        );
    } else {
        out.push(last.to_string());
    }
    out
}

fn assert_refused_like_spin(name: &str, text: &str, error: Option<String>, err: &str, dir: &Path) {
    let error = error.unwrap_or_else(|| panic!("{name}: Spin refuses it, the runner accepted it"));
    if is_v1(text) {
        assert!(error.contains("version 1"), "{name}: {error}");
        return;
    }
    for line in expected_lines(err, dir) {
        assert!(
            error.contains(&line),
            "{name}: expected {line:?} in:\n{error}"
        );
    }
}

#[test]
fn spins_manifest_test_data_is_accepted_and_refused_as_spin_does() {
    let Some(root) = spin_ui() else { return };
    let dir = root.join("manifest");
    let valid = tomls(&dir);
    assert!(valid.len() >= 3, "{valid:?}");
    for path in valid {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = parse(&text) {
            panic!(
                "{}: Spin parses it, the runner refused it: {e:#}",
                path.display()
            );
        }
    }
    let invalid = tomls(&dir.join("invalid"));
    assert!(invalid.len() >= 5, "{invalid:?}");
    for path in invalid {
        let text = std::fs::read_to_string(&path).unwrap();
        let err = std::fs::read_to_string(path.with_extension("err")).unwrap();
        let error = parse(&text).err().map(|e| format!("{e:#}"));
        let name = path.display().to_string();
        assert_refused_like_spin(&name, &text, error, &err, path.parent().unwrap());
    }
}

#[test]
fn spins_loader_test_data_is_loaded_and_refused_as_spin_does() {
    let Some(root) = spin_ui() else { return };
    let files = tomls(&root.join("loader"));
    assert!(files.len() >= 10, "{files:?}");
    for source in files {
        let name = source.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&source).unwrap();
        // A copy in a temp dir, with the sources it names present.
        let dir = tempfile::tempdir().unwrap();
        let dir_path = dir.path().canonicalize().unwrap();
        let path = dir_path.join(&name);
        std::fs::write(&path, &text).unwrap();
        place_sources(&path);
        let result = load(&path).map_err(|e| format!("{e:#}"));
        match std::fs::read_to_string(source.with_extension("err")) {
            Ok(err) => assert_refused_like_spin(&name, &text, result.err(), &err, &dir_path),
            Err(_) if is_v1(&text) => {
                // Spin loads it; the runner reads version 2 only, and says so.
                let e = result.expect_err(&name);
                assert!(e.contains("version 1"), "{name}: {e}");
            }
            Err(_) => {
                if let Err(e) = result {
                    panic!("{name}: Spin loads it, the runner refused it: {e}");
                }
            }
        }
    }
}
