//! `up --sqlite`: statements run against the app's databases before it
//! serves, as Spin's `SqlStatementExecutorHook`
//! (crates/trigger/src/cli/sqlite_statements.rs): a plain statement runs on
//! the `default` database; `@file` runs the file's statements as a batch on
//! `default`, `@file:label` on database `label`. Spin's messages.

use anyhow::{Context as _, bail};

use super::{DEFAULT_LABEL, Databases, MAX_RESULT_BYTES};

/// Runs `statements` in order; the first failure stops startup.
pub async fn run(databases: &Databases, statements: &[String]) -> anyhow::Result<()> {
    for statement in statements {
        if let Some(config) = statement.strip_prefix('@') {
            let (file, label) = parse_file_and_label(config)?;
            let database = databases.get(label).with_context(|| {
                format!(
                    "based on the '@{config}' a registered database named '{label}' was expected but not found."
                )
            })?;
            let sql = std::fs::read_to_string(file).with_context(|| {
                format!("could not read file '{file}' containing sql statements")
            })?;
            database
                .connect()
                .execute_batch(&sql)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| {
                    format!("failed to execute sql against database '{label}' from file '{file}'")
                })?;
        } else {
            let default = databases
                .get(DEFAULT_LABEL)
                .context("the 'default' sqlite database is always defined")?;
            default
                .connect()
                .query(statement, Vec::new(), MAX_RESULT_BYTES)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| {
                    format!(
                        "failed to execute following sql statement against default database: '{statement}'"
                    )
                })?;
        }
    }
    Ok(())
}

/// `file[:label]` of an `@` statement, as Spin's `parse_file_and_label`.
fn parse_file_and_label(config: &str) -> anyhow::Result<(&str, &str)> {
    let config = config.trim();
    if config.is_empty() {
        bail!("database configuration is empty in the '@{config}' sqlite statement");
    }
    Ok(match config.split_once(':') {
        Some((_, label)) if label.trim().is_empty() => {
            bail!("database label is empty in the '@{config}' sqlite statement")
        }
        Some((file, _)) if file.trim().is_empty() => {
            bail!("file path is empty in the '@{config}' sqlite statement")
        }
        Some((file, label)) => (file.trim(), label.trim()),
        None => (config, DEFAULT_LABEL),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{Database, Location};

    fn file_databases(dir: &std::path::Path) -> Databases {
        Databases::new([
            (
                "default".to_string(),
                Database::new(Location::File(dir.join("default.db")), false),
            ),
            (
                "other".to_string(),
                Database::new(Location::File(dir.join("other.db")), false),
            ),
        ])
    }

    async fn count(databases: &Databases, label: &str, table: &str) -> String {
        let rows = databases
            .get(label)
            .unwrap()
            .connect()
            .query(
                &format!("SELECT COUNT(*) FROM {table}"),
                vec![],
                MAX_RESULT_BYTES,
            )
            .await
            .unwrap();
        format!("{:?}", rows.rows[0].values[0])
    }

    #[test]
    fn an_at_statement_names_a_file_and_optionally_a_label() {
        assert_eq!(parse_file_and_label("m.sql").unwrap(), ("m.sql", "default"));
        assert_eq!(
            parse_file_and_label(" m.sql : db ").unwrap(),
            ("m.sql", "db")
        );
        for (config, message) in [
            (
                "",
                "database configuration is empty in the '@' sqlite statement",
            ),
            (
                "m.sql:",
                "database label is empty in the '@m.sql:' sqlite statement",
            ),
            (":db", "file path is empty in the '@:db' sqlite statement"),
        ] {
            assert_eq!(
                parse_file_and_label(config).unwrap_err().to_string(),
                message
            );
        }
    }

    #[tokio::test]
    async fn statements_and_files_run_in_order_on_their_databases() {
        let dir = tempfile::tempdir().unwrap();
        let databases = file_databases(dir.path());
        let migration = dir.path().join("m.sql");
        std::fs::write(
            &migration,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
        )
        .unwrap();
        let statements = vec![
            "CREATE TABLE d (x INTEGER)".to_string(),
            "INSERT INTO d VALUES (7)".to_string(),
            format!("@{}:other", migration.display()),
        ];
        run(&databases, &statements).await.unwrap();
        assert_eq!(count(&databases, "default", "d").await, "Value::Integer(1)");
        assert_eq!(count(&databases, "other", "t").await, "Value::Integer(2)");
    }

    #[tokio::test]
    async fn a_failing_statement_stops_startup_in_spins_words() {
        let dir = tempfile::tempdir().unwrap();
        let databases = file_databases(dir.path());
        let err = run(&databases, &["NOT SQL".to_string()]).await.unwrap_err();
        assert!(
            format!("{err:#}").starts_with(
                "failed to execute following sql statement against default database: 'NOT SQL'"
            ),
            "{err:#}"
        );
        let err = run(&databases, &["@m.sql:nope".to_string()])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "based on the '@m.sql:nope' a registered database named 'nope' was expected but not found."
        );
        let err = run(&databases, &["@/no/such/file.sql".to_string()])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not read file '/no/such/file.sql' containing sql statements"
        );
    }
}
