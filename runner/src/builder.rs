//! `spin build`: run each component's `[component.<id>.build]` command in
//! its workdir with its output shown, and find components whose Wasm file is
//! missing or older than the files their `watch` globs name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::manifest::LoadedManifest;

/// Runs the build commands of `ids` (all components with a build section
/// when `ids` is `None`), stopping at the first failure.
pub fn build(manifest: &LoadedManifest, ids: Option<&[String]>) -> anyhow::Result<()> {
    for (id, component) in &manifest.manifest.component {
        if ids.is_some_and(|ids| !ids.contains(id)) {
            continue;
        }
        let Some(build) = &component.build else {
            eprintln!("{id}: no [component.{id}.build] section, skipping");
            continue;
        };
        let workdir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        for command in build.command.commands() {
            eprintln!("Building component {id} with `{command}`");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .envs(&build.environment)
                .status()
                .with_context(|| format!("cannot run the build command of component `{id}`"))?;
            if !status.success() {
                bail!("build command for component `{id}` failed ({status}): `{command}`");
            }
        }
    }
    eprintln!("Finished building all Spin components");
    Ok(())
}

/// Components whose Wasm file is missing, or older than a watched file.
pub fn stale_components(manifest: &LoadedManifest) -> Vec<String> {
    let mut stale = Vec::new();
    for (id, component) in &manifest.manifest.component {
        let Ok(source) = manifest.source_path(id) else {
            continue;
        };
        let built = std::fs::metadata(&source).and_then(|m| m.modified()).ok();
        let Some(built) = built else {
            stale.push(id.clone());
            continue;
        };
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        let newest = build
            .watch
            .iter()
            .flat_map(|pattern| glob(&workdir, pattern))
            .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .max();
        if newest.is_some_and(|t: SystemTime| t > built) {
            stale.push(id.clone());
        }
    }
    stale
}

/// The files under `dir` matching `pattern` (`*` within a segment, `**`
/// across directories), enough for Spin's `watch` globs.
pub fn glob(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    walk(dir, &segments, &mut out);
    out
}

fn walk(dir: &Path, segments: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if *first == "**" {
        walk(dir, rest, out);
        for entry in read_dir(dir) {
            if entry.is_dir() {
                walk(&entry, segments, out);
            }
        }
        return;
    }
    for entry in read_dir(dir) {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !matches_segment(first, name) {
            continue;
        }
        if rest.is_empty() {
            if entry.is_file() {
                out.push(entry);
            }
        } else if entry.is_dir() {
            walk(&entry, rest, out);
        }
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// `*` matches any run of characters within one path segment.
fn matches_segment(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && matches_segment(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_match_stars() {
        assert!(matches_segment("*.rs", "lib.rs"));
        assert!(!matches_segment("*.rs", "lib.rs.bak"));
        assert!(matches_segment("Cargo.toml", "Cargo.toml"));
        assert!(matches_segment("a*b*c", "aXXbYc"));
        assert!(!matches_segment("a*b*c", "aXXbY"));
    }

    fn manifest_in(dir: &Path, command: &str) -> LoadedManifest {
        let text = format!(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[[trigger.http]]
route = "/..."
component = "app"
[component.app]
source = "out/app.wasm"
[component.app.build]
command = "{command}"
watch = ["src/**/*.rs"]
"#
        );
        std::fs::write(dir.join("spin.toml"), text).unwrap();
        LoadedManifest::load(&dir.join("spin.toml")).unwrap()
    }

    #[test]
    fn a_missing_or_older_component_is_stale_and_building_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        let m = manifest_in(dir.path(), "mkdir -p out && touch out/app.wasm");
        assert_eq!(stale_components(&m), vec!["app".to_string()]);
        build(&m, None).unwrap();
        assert!(stale_components(&m).is_empty());
        // A watched file changed after the build: stale again.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join("src/lib.rs"))
            .unwrap();
        f.set_modified(later).unwrap();
        assert_eq!(stale_components(&m), vec!["app".to_string()]);
    }

    #[test]
    fn a_failing_build_command_is_an_error_naming_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest_in(dir.path(), "exit 3");
        let e = format!("{:#}", build(&m, None).unwrap_err());
        assert!(e.contains("component `app`"), "{e}");
    }

    #[test]
    fn globs_descend_with_double_stars() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/handlers")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        std::fs::write(dir.path().join("src/handlers/a.rs"), "").unwrap();
        std::fs::write(dir.path().join("src/handlers/notes.txt"), "").unwrap();
        let mut found = glob(dir.path(), "src/**/*.rs");
        found.sort();
        assert_eq!(
            found,
            vec![
                dir.path().join("src/handlers/a.rs"),
                dir.path().join("src/lib.rs")
            ]
        );
    }
}
