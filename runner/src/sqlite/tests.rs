use super::host::{HostConnection, MAX_CONNECTIONS};
use super::*;
use crate::runtime_config::RuntimeConfig;
use wasmtime::component::Resource;

fn ctx(databases: Databases, allowed: &[&str]) -> SqliteCtx {
    SqliteCtx::new(
        Arc::new(databases),
        Arc::new(allowed.iter().map(|s| s.to_string()).collect()),
    )
}

fn file_db(dir: &Path, name: &str) -> Database {
    Database::new(Location::File(dir.join(name)), false)
}

async fn open(ctx: &mut SqliteCtx, label: &str) -> Result<u32, Error> {
    HostConnection::open(ctx, label.to_string())
        .await
        .unwrap()
        .map(|r| r.rep())
}

async fn exec(
    ctx: &mut SqliteCtx,
    conn: u32,
    sql: &str,
    params: Vec<Value>,
) -> Result<QueryResult, Error> {
    HostConnection::execute(ctx, Resource::new_borrow(conn), sql.to_string(), params)
        .await
        .unwrap()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

#[tokio::test]
async fn a_label_outside_sqlite_databases_is_access_denied_even_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = Databases::new([
        ("default".to_string(), file_db(dir.path(), "d.db")),
        ("other".to_string(), file_db(dir.path(), "o.db")),
    ]);
    let mut ctx = ctx(dbs, &["default", "ghost"]);
    assert_eq!(open(&mut ctx, "other").await, Err(Error::AccessDenied));
    assert_eq!(open(&mut ctx, "forbidden").await, Err(Error::AccessDenied));
    // Listed but configured nowhere (the loader refuses such an app first).
    assert_eq!(open(&mut ctx, "ghost").await, Err(Error::NoSuchDatabase));
    assert!(open(&mut ctx, "default").await.is_ok());
}

#[tokio::test]
async fn statements_bind_parameters_and_return_columns_and_typed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(
        Databases::new([("default".to_string(), file_db(dir.path(), "d.db"))]),
        &["default"],
    );
    let c = open(&mut ctx, "default").await.unwrap();
    let created = exec(
        &mut ctx,
        c,
        "CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n)",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        created,
        QueryResult {
            columns: vec![],
            rows: vec![]
        }
    );
    exec(
        &mut ctx,
        c,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        vec![
            Value::Integer(-7),
            Value::Real(1.5),
            text("héllo"),
            Value::Blob(vec![0, 255]),
            Value::Null,
        ],
    )
    .await
    .unwrap();
    let rows = exec(
        &mut ctx,
        c,
        "SELECT * FROM t WHERE s = ?",
        vec![text("héllo")],
    )
    .await
    .unwrap();
    assert_eq!(rows.columns, ["i", "r", "s", "b", "n"]);
    assert_eq!(
        rows.rows,
        [RowResult {
            values: vec![
                Value::Integer(-7),
                Value::Real(1.5),
                text("héllo"),
                Value::Blob(vec![0, 255]),
                Value::Null,
            ]
        }]
    );
}

#[tokio::test]
async fn a_failing_statement_is_io_with_sqlites_message() {
    let mut ctx = ctx(
        Databases::new([(
            "default".to_string(),
            Database::new(Location::Memory, false),
        )]),
        &["default"],
    );
    let c = open(&mut ctx, "default").await.unwrap();
    let Err(Error::Io(message)) = exec(&mut ctx, c, "SELEC 1", vec![]).await else {
        panic!("a syntax error is io(...)");
    };
    assert!(message.contains("syntax error"), "{message}");
    let Err(Error::Io(message)) = exec(&mut ctx, c, "SELECT * FROM nowhere", vec![]).await else {
        panic!("a missing table is io(...)");
    };
    assert!(message.contains("no such table: nowhere"), "{message}");
}

#[tokio::test]
async fn each_open_of_an_in_memory_database_is_a_fresh_database_as_in_spin() {
    let mut ctx = ctx(
        Databases::new([(
            "default".to_string(),
            Database::new(Location::Memory, false),
        )]),
        &["default"],
    );
    let a = open(&mut ctx, "default").await.unwrap();
    exec(&mut ctx, a, "CREATE TABLE t(x)", vec![])
        .await
        .unwrap();
    exec(&mut ctx, a, "SELECT * FROM t", vec![]).await.unwrap();
    let b = open(&mut ctx, "default").await.unwrap();
    assert!(matches!(
        exec(&mut ctx, b, "SELECT * FROM t", vec![]).await,
        Err(Error::Io(_))
    ));
}

#[tokio::test]
async fn a_file_database_is_shared_by_connections_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = Databases::new([("default".to_string(), file_db(dir.path(), "d.db"))]);
    let mut first = ctx(dbs.clone(), &["default"]);
    let a = open(&mut first, "default").await.unwrap();
    exec(&mut first, a, "CREATE TABLE t(x)", vec![])
        .await
        .unwrap();
    exec(&mut first, a, "INSERT INTO t VALUES (42)", vec![])
        .await
        .unwrap();
    let mut second = ctx(dbs, &["default"]);
    let b = open(&mut second, "default").await.unwrap();
    let rows = exec(&mut second, b, "SELECT x FROM t", vec![])
        .await
        .unwrap();
    assert_eq!(rows.rows[0].values, [Value::Integer(42)]);
}

#[tokio::test]
async fn attaching_a_file_is_denied_unless_allow_attach_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap();
    let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
    let dbs = Databases::new([
        ("default".to_string(), file_db(dir.path(), "d.db")),
        (
            "open".to_string(),
            Database::new(Location::File(dir.path().join("o.db")), true),
        ),
    ]);
    let mut ctx = ctx(dbs, &["default", "open"]);
    let c = open(&mut ctx, "default").await.unwrap();
    let Err(Error::Io(message)) = exec(&mut ctx, c, &attach, vec![]).await else {
        panic!("attach is denied");
    };
    assert!(message.contains("not authorized"), "{message}");
    // A temporary or in-memory database may always be attached.
    exec(&mut ctx, c, "ATTACH DATABASE ':memory:' AS scratch", vec![])
        .await
        .unwrap();
    let c = open(&mut ctx, "open").await.unwrap();
    exec(&mut ctx, c, &attach, vec![]).await.unwrap();
}

#[tokio::test]
async fn past_256_open_connections_open_is_io_and_a_closed_handle_is_invalid() {
    let mut ctx = ctx(
        Databases::new([(
            "default".to_string(),
            Database::new(Location::Memory, false),
        )]),
        &["default"],
    );
    let mut reps = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        reps.push(open(&mut ctx, "default").await.unwrap());
    }
    assert_eq!(
        open(&mut ctx, "default").await,
        Err(Error::Io("too many connections opened".to_string()))
    );
    HostConnection::drop(&mut ctx, Resource::new_own(reps[0]))
        .await
        .unwrap();
    assert_eq!(
        exec(&mut ctx, reps[0], "SELECT 1", vec![]).await,
        Err(Error::InvalidConnection)
    );
    assert!(open(&mut ctx, "default").await.is_ok());
}

#[tokio::test]
async fn a_result_past_the_limit_is_io_with_spins_message() {
    let conn = Database::new(Location::Memory, false).connect();
    let err = conn
        .query("SELECT zeroblob(1000)", vec![], 500)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Io("query result exceeds limit of 500 bytes".to_string())
    );
    assert!(conn.query("SELECT 1", vec![], 500).await.is_ok());
}

#[test]
fn the_default_database_is_sqlite_db_db_in_the_state_dir_or_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let dbs = Databases::from_config(&RuntimeConfig::default(), Some(&state)).unwrap();
    assert_eq!(
        dbs.get("default").unwrap().summary(),
        format!("\"{}\"", state.join("sqlite_db.db").display())
    );
    assert!(state.is_dir(), "the database's directory is created");
    let dbs = Databases::from_config(&RuntimeConfig::default(), None).unwrap();
    assert_eq!(
        dbs.get("default").unwrap().summary(),
        "a temporary in-memory database"
    );
}

#[test]
fn runtime_config_databases_resolve_against_the_working_directory() {
    let config = crate::runtime_config::parse(
        "[sqlite_database.default]\ntype = \"spin\"\n\
         [sqlite_database.analytics]\ntype = \"spin\"\npath = \"a.db\"\n",
        Some(Path::new("/etc/app")),
    )
    .unwrap();
    let dbs = Databases::from_config(&config, Some(Path::new("/unused"))).unwrap();
    // `[sqlite_database.default]` without a path: in memory, not the state dir.
    assert_eq!(
        dbs.get("default").unwrap().summary(),
        "a temporary in-memory database"
    );
    // (Its directory, the working directory, exists: nothing is created.)
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        dbs.get("analytics").unwrap().summary(),
        format!("\"{}\"", cwd.join("a.db").display())
    );
}

#[test]
fn components_listing_undefined_databases_are_refused_in_spins_words() {
    let dbs = Databases::from_config(&RuntimeConfig::default(), None).unwrap();
    let ok = ["default".to_string()];
    let bad = ["default".to_string(), "analytics".to_string()];
    assert!(dbs.check_components([("a", &ok[..])]).is_ok());
    let err = dbs
        .check_components([("a", &ok[..]), ("b", &bad[..])])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "One or more components use SQLite databases which are not defined.\n\
         Check the spelling, or pass a runtime configuration file that defines these stores.\n\
         See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration\n\
         Details:\n\
         - Component b uses database 'analytics'"
    );
}

#[test]
fn the_default_banner_is_printed_only_when_a_component_uses_default() {
    let dbs = Databases::from_config(&RuntimeConfig::default(), None).unwrap();
    let uses = ["default".to_string()];
    assert_eq!(
        dbs.default_banner([&uses[..]].into_iter()),
        Some("Storing default SQLite data to a temporary in-memory database.".to_string())
    );
    assert_eq!(dbs.default_banner([&[][..]].into_iter()), None);
}
