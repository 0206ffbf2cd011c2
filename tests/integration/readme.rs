//! README.md stays true: its commands are the ones the project uses, and
//! every `$ curl` example is replayed against the app, its answer compared
//! with the one printed (ignoring `processed_at` and request ids, which
//! differ per run).

use serde_json::Value;

use crate::helpers::{Runner, root};

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// One `$ curl ...` line of the README and the answer printed under it.
struct Example {
    command: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    expected: String,
}

/// Splits a shell line into words, honouring single quotes (enough for the
/// README's curl lines).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn examples() -> Vec<Example> {
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(command) = line.strip_prefix("$ curl ") else {
            continue;
        };
        let words = shell_words(command);
        let mut method = "GET".to_string();
        let mut headers = Vec::new();
        let mut body = None;
        let mut url = None;
        let mut it = words.iter();
        while let Some(w) = it.next() {
            match w.as_str() {
                "-s" => {}
                "-X" => method = it.next().expect("-X value").clone(),
                "-H" => {
                    let h = it.next().expect("-H value");
                    let (k, v) = h.split_once(':').expect("header");
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                "-d" => body = Some(it.next().expect("-d value").clone()),
                other => url = Some(other.to_string()),
            }
        }
        if body.is_some() && method == "GET" {
            method = "POST".to_string();
        }
        let url = url.expect("curl URL");
        let path = url
            .strip_prefix("localhost:3000")
            .unwrap_or_else(|| panic!("README curl examples target localhost:3000: {url}"))
            .to_string();
        out.push(Example {
            command: command.to_string(),
            method,
            path,
            headers,
            body,
            expected: lines.get(i + 1).expect("answer line").to_string(),
        });
    }
    out
}

/// Blanks the values that differ from run to run.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "processed_at" || k == "request_id" {
                    *v = Value::Null;
                } else {
                    normalise(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

#[test]
fn the_readme_names_the_commands_ci_and_developers_run() {
    let text = readme();
    assert!(
        text.contains("cargo run -p edge-runner -- up\n"),
        "run command"
    );
    assert!(text.contains("\nscripts/test\n"), "test command");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.trim_end().ends_with("scripts/test"),
        ".ci/run must end by running the README's test command"
    );
    for script in ["scripts/test", "scripts/lint", "scripts/sizes", "bench/run"] {
        assert!(text.contains(script), "README mentions {script}");
        assert!(root().join(script).exists(), "{script} exists");
    }
}

#[test]
fn every_curl_example_in_the_readme_gives_the_answer_shown() {
    let examples = examples();
    assert!(examples.len() >= 6, "found {} examples", examples.len());
    // The README's admin example shows the 401 of a run with a token set.
    let r = Runner::app_with(&["--variable", "admin_token=readme-example-token"]);
    for ex in &examples {
        let headers: Vec<(&str, &str)> = ex
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let res = r.request(
            &ex.method,
            &ex.path,
            &headers,
            ex.body.as_deref().unwrap_or("").as_bytes(),
        );
        let mut got = res.json();
        let mut want: Value = serde_json::from_str(&ex.expected)
            .unwrap_or_else(|e| panic!("README answer of `{}` is not JSON: {e}", ex.command));
        normalise(&mut got);
        normalise(&mut want);
        assert_eq!(got, want, "README example `curl {}`", ex.command);
    }
}
