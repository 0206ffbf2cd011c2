//! Spin's SQLite, outbound Redis and outbound MQTT interfaces
//! (`fermyon:spin/sqlite@2.0.0`, `redis@2.0.0`, `mqtt@2.0.0`) end to end:
//! the probe component's `/sqlite`, `/redis` and `/mqtt` routes served by
//! the runner, against real SQLite files, a real redis-server and (when
//! installed) a real mosquitto. Each permission is checked as Spin checks
//! it, and each denial answers the guest what Spin answers it.

use std::sync::atomic::Ordering;

use crate::helpers::{Runner, Spawn, runner_bin, write_manifest};
use edge_testkit::{MosquittoServer, RedisServer};

/// A one-component app: the probe at `/...` with `extra` in its component
/// table (and `variables`, a `[variables]` body).
pub(crate) fn probe_app(extra: &str, variables: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"ifaces\"\n\
         [variables]\n{variables}\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n\
         [component.probe]\nsource = \"{{{{probe.wasm}}}}\"\n{extra}\n"
    )
}

fn start(extra: &str) -> Runner {
    start_with(extra, "", &[])
}

fn start_with(extra: &str, variables: &str, args: &[&str]) -> Runner {
    let manifest = probe_app(extra, variables);
    Runner::spawn(Spawn {
        manifest: Some(&manifest),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Spawn::default()
    })
}

/// Percent-encodes a query value.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn sql(r: &Runner, db: &str, statement: &str, args: &[&str]) -> crate::helpers::Response {
    let mut path = format!("/sqlite?db={}&sql={}", enc(db), enc(statement));
    for arg in args {
        path.push_str(&format!("&arg={}", enc(arg)));
    }
    r.get(&path)
}

fn sql_ok(r: &Runner, db: &str, statement: &str, args: &[&str]) -> serde_json::Value {
    let res = sql(r, db, statement, args);
    assert_eq!(res.status, 200, "{statement}: {}", res.text());
    res.json()
}

/// `edge-runner up` that must refuse to start: its stderr.
fn refused(manifest: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(dir.path(), manifest);
    let out = std::process::Command::new(runner_bin())
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(&manifest)
        .arg("--state-dir")
        .arg(dir.path().join(".spin"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "it started: {stdout}");
    assert!(!stdout.contains("Serving"), "{stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---- SQLite ----

#[test]
fn a_component_keeps_rows_in_the_default_sqlite_database_under_the_state_dir() {
    let r = start("sqlite_databases = [\"default\"]");
    // Spin's banner (stderr, which may trail stdout's "Serving" line).
    crate::fixtures::wait_for_log(
        &r,
        &["Storing default SQLite data to \"", "sqlite_db.db\"."],
    );
    sql_ok(
        &r,
        "default",
        "CREATE TABLE IF NOT EXISTS test_data(key TEXT NOT NULL, value TEXT NOT NULL)",
        &[],
    );
    sql_ok(
        &r,
        "default",
        "INSERT INTO test_data(key, value) VALUES(?, ?)",
        &["my_key", "my_value"],
    );
    let rows = sql_ok(
        &r,
        "default",
        "SELECT key, value, 42 AS n, 1.5 AS r, x'00ff' AS b, NULL AS z FROM test_data WHERE key = ?",
        &["my_key"],
    );
    assert_eq!(
        rows,
        serde_json::json!({
            "columns": ["key", "value", "n", "r", "b", "z"],
            "rows": [["my_key", "my_value", 42, 1.5, [0, 255], null]],
        })
    );
    // The file is Spin's, where Spin keeps it, with the guest's rows.
    let file = r.dir.path().join(".spin/sqlite_db.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    let value: String = conn
        .query_row(
            "SELECT value FROM test_data WHERE key = 'my_key'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(value, "my_value");
}

#[test]
fn a_database_the_component_does_not_list_is_access_denied_as_on_spin() {
    // No sqlite_databases at all: even "default" is denied.
    let r = start("");
    let res = sql(&r, "default", "SELECT 1", &[]);
    assert_eq!(
        (res.status, res.text().as_str()),
        (500, "Error::AccessDenied")
    );
    assert!(
        !r.output().contains("Storing default SQLite data"),
        "no banner for an unused default database: {}",
        r.output()
    );
    drop(r);
    // A listed database does not open an unlisted one.
    let r = start("sqlite_databases = [\"default\"]");
    let res = sql(&r, "forbidden", "SELECT 1", &[]);
    assert_eq!(
        (res.status, res.text().as_str()),
        (500, "Error::AccessDenied")
    );
    assert_eq!(
        sql_ok(&r, "default", "SELECT 1 AS one", &[])["rows"],
        serde_json::json!([[1]])
    );
}

#[test]
fn a_failing_statement_answers_the_guest_io_with_sqlites_message() {
    let r = start("sqlite_databases = [\"default\"]");
    let res = sql(&r, "default", "SELECT * FROM nowhere", &[]);
    assert_eq!(res.status, 500);
    assert_eq!(res.text(), "Error::Io(\"no such table: nowhere\")");
}

#[test]
fn a_runtime_config_sqlite_database_is_the_file_it_names() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("nested/analytics.db");
    let config = data.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[sqlite_database.analytics]\ntype = \"spin\"\npath = \"{}\"\n",
            file.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let r = start_with(
        "sqlite_databases = [\"analytics\"]",
        "",
        &["--runtime-config-file", &config],
    );
    sql_ok(&r, "analytics", "CREATE TABLE hits(n INTEGER)", &[]);
    sql_ok(&r, "analytics", "INSERT INTO hits VALUES (7)", &[]);
    let n: i64 = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("SELECT n FROM hits", [], |row| row.get(0))
        .unwrap();
    assert_eq!(n, 7);
    // "default" is still defined, but this component does not list it.
    let res = sql(&r, "default", "SELECT 1", &[]);
    assert_eq!(res.text(), "Error::AccessDenied");
}

#[test]
fn sqlite_flags_run_statements_and_files_before_serving_as_spins_do() {
    let dir = tempfile::tempdir().unwrap();
    let migration = dir.path().join("migration.sql");
    std::fs::write(
        &migration,
        "CREATE TABLE items (name TEXT); INSERT INTO items VALUES ('from-file');",
    )
    .unwrap();
    let at_file = format!("@{}", migration.display());
    let r = start_with(
        "sqlite_databases = [\"default\"]",
        "",
        &[
            "--sqlite",
            at_file.as_str(),
            "--sqlite",
            "INSERT INTO items VALUES ('from-flag')",
        ],
    );
    let rows = sql_ok(&r, "default", "SELECT name FROM items ORDER BY rowid", &[]);
    assert_eq!(
        rows["rows"],
        serde_json::json!([["from-file"], ["from-flag"]])
    );
    // A failing statement stops startup in Spin's words.
    let stderr = refused(
        &probe_app("sqlite_databases = [\"default\"]", ""),
        &["--sqlite", "NOT SQL"],
    );
    assert!(
        stderr.contains(
            "failed to execute following sql statement against default database: 'NOT SQL'"
        ),
        "{stderr}"
    );
}

#[test]
fn a_component_listing_an_undefined_sqlite_database_is_refused_at_start_in_spins_words() {
    let stderr = refused(
        &probe_app("sqlite_databases = [\"default\", \"analytics\"]", ""),
        &[],
    );
    assert!(
        stderr.contains(
            "One or more components use SQLite databases which are not defined.\n\
             Check the spelling, or pass a runtime configuration file that defines these stores."
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("- Component probe uses database 'analytics'"),
        "{stderr}"
    );
}

#[test]
fn a_sqlite_database_type_edge_runner_lacks_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rc.toml");
    std::fs::write(
        &config,
        "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://db.invalid\"\ntoken = \"t\"\n",
    )
    .unwrap();
    let stderr = refused(
        &probe_app("sqlite_databases = [\"default\"]", ""),
        &["--runtime-config-file", &config.display().to_string()],
    );
    assert!(stderr.contains("[sqlite_database.default]"), "{stderr}");
    assert!(stderr.contains("\"libsql\""), "{stderr}");
}

// ---- outbound Redis ----

fn redis_op(r: &Runner, addr: &str, op: &str, key: &str, values: &[&str]) -> (u16, String) {
    let mut path = format!("/redis?addr={}&op={op}&key={}", enc(addr), enc(key));
    for v in values {
        path.push_str(&format!("&value={}", enc(v)));
    }
    let res = r.get(&path);
    (res.status, res.text())
}

#[test]
fn outbound_redis_runs_every_command_on_an_allowed_server() {
    let server = RedisServer::start();
    let addr = format!("redis://127.0.0.1:{}", server.port);
    let r = start(&format!("allowed_outbound_hosts = [\"{addr}\"]"));
    let ok = |op: &str, key: &str, values: &[&str]| {
        let (status, body) = redis_op(&r, &addr, op, key, values);
        assert_eq!(status, 200, "{op} {key}: {body}");
        body
    };
    assert_eq!(ok("set", "spin-example-get-set", &["Eureka!"]), "ok");
    assert_eq!(ok("get", "spin-example-get-set", &[]), "Eureka!");
    assert_eq!(ok("set", "spin-example-incr", &["0"]), "ok");
    assert_eq!(ok("incr", "spin-example-incr", &[]), "1");
    assert_eq!(ok("del", "spin-example-incr", &[]), "1");
    assert_eq!(ok("get", "spin-example-incr", &[]), "<none>");
    assert_eq!(ok("sadd", "set", &["a", "b", "c"]), "3");
    assert_eq!(ok("srem", "set", &["c"]), "1");
    assert_eq!(ok("smembers", "set", &[]), "a,b");
    assert_eq!(ok("publish", "channel", &["hello"]), "ok");
    assert_eq!(
        ok("execute", "set", &["spin-example", "Eureka!"]),
        "status:OK"
    );
    assert_eq!(
        ok("execute", "append", &["spin-example", " I've got it!"]),
        "int:20"
    );
    assert_eq!(
        ok("execute", "get", &["spin-example"]),
        "binary:Eureka! I've got it!"
    );
    assert_eq!(server.dbsize(), 3);
    // A server-side error is the guest's other(...).
    let (status, body) = redis_op(&r, &addr, "incr", "spin-example", &[]);
    assert_eq!(status, 500);
    assert!(
        body.starts_with("Error::Other(") && body.contains("not an integer"),
        "{body}"
    );
}

#[test]
fn outbound_redis_to_an_address_not_allowed_is_invalid_address_and_never_dials() {
    let (port, hits) = edge_testkit::counting_listener();
    let addr = format!("redis://127.0.0.1:{port}");
    for extra in [
        String::new(),
        format!(
            "allowed_outbound_hosts = [\"redis://127.0.0.1:{}\"]",
            port ^ 1
        ),
        format!("allowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]"),
    ] {
        let r = start(&extra);
        assert_eq!(
            redis_op(&r, &addr, "get", "k", &[]),
            (500, "Error::InvalidAddress".to_string()),
            "{extra}"
        );
        // Spin's hint, on stderr (which may reach the test a moment after
        // the answer).
        crate::fixtures::wait_for_log(
            &r,
            &[&format!(
                "allowed_outbound_hosts = [\"redis://127.0.0.1:{port}\"]"
            )],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a denied address was dialled"
    );
}

#[test]
fn outbound_redis_allowed_through_a_variable_in_allowed_outbound_hosts_connects() {
    let server = RedisServer::start();
    let addr = format!("redis://127.0.0.1:{}", server.port);
    let r = start_with(
        &format!(
            "allowed_outbound_hosts = [\"redis://{{{{ redis_host }}}}:{}\"]",
            server.port
        ),
        "redis_host = { default = \"127.0.0.1\" }",
        &[],
    );
    assert_eq!(redis_op(&r, &addr, "set", "k", &["v"]), (200, "ok".into()));
    assert_eq!(redis_op(&r, &addr, "get", "k", &[]), (200, "v".into()));
    // The same variable pointing elsewhere denies it.
    drop(r);
    let r = start_with(
        &format!(
            "allowed_outbound_hosts = [\"redis://{{{{ redis_host }}}}:{}\"]",
            server.port
        ),
        "redis_host = { default = \"redis.invalid\" }",
        &[],
    );
    assert_eq!(
        redis_op(&r, &addr, "get", "k", &[]),
        (500, "Error::InvalidAddress".into())
    );
}

#[test]
fn outbound_redis_to_an_allowed_server_that_is_down_is_other() {
    let port = edge_testkit::free_port();
    let addr = format!("redis://127.0.0.1:{port}");
    let r = start(&format!("allowed_outbound_hosts = [\"{addr}\"]"));
    let (status, body) = redis_op(&r, &addr, "open", "", &[]);
    assert_eq!(status, 500);
    assert!(body.starts_with("Error::Other("), "{body}");
}

// ---- outbound MQTT ----

fn mqtt_publish(r: &Runner, addr: &str, topic: Option<&str>, qos: u8) -> (u16, String) {
    let mut path = format!(
        "/mqtt?addr={}&user=user&password=password&payload=Eureka%21&qos={qos}",
        enc(addr)
    );
    if let Some(topic) = topic {
        path.push_str(&format!("&topic={}", enc(topic)));
    }
    let res = r.get(&path);
    (res.status, res.text())
}

#[test]
fn outbound_mqtt_to_an_address_not_allowed_is_connection_failed_not_permitted() {
    let r = start("");
    let addr = "mqtt://localhost:1883?client_id=spintest";
    assert_eq!(
        mqtt_publish(&r, addr, Some("telemetry-topic"), 1),
        (
            500,
            format!("Error::ConnectionFailed(\"address {addr} is not permitted\")")
        )
    );
    assert!(
        r.output()
            .contains("allowed_outbound_hosts = [\"mqtt://localhost:1883\"]"),
        "Spin's hint: {}",
        r.output()
    );
}

#[test]
fn outbound_mqtt_without_a_client_id_is_invalid_address() {
    let r = start("allowed_outbound_hosts = [\"mqtt://localhost:1883\"]");
    assert_eq!(
        mqtt_publish(&r, "mqtt://localhost:1883", None, 0),
        (500, "Error::InvalidAddress".into())
    );
}

#[test]
fn outbound_mqtt_publishes_to_an_allowed_broker_at_every_qos() {
    let Some(broker) = MosquittoServer::start() else {
        return;
    };
    let mut subscriber = broker.subscribe("telemetry-topic");
    let r = start(&format!(
        "allowed_outbound_hosts = [\"mqtt://127.0.0.1:{}\"]",
        broker.port
    ));
    for qos in [0, 1, 2] {
        assert_eq!(
            mqtt_publish(&r, &broker.url("spintest"), Some("telemetry-topic"), qos),
            (200, "published".into()),
            "qos {qos}"
        );
        assert_eq!(
            subscriber.next_message(),
            ("telemetry-topic".to_string(), b"Eureka!".to_vec())
        );
    }
}
