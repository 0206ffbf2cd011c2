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
            ensure_targets(command, &workdir, &Toolchain::default())?;
            eprintln!("Building component {id} with `{command}`");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
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

/// The programs [`ensure_targets`] asks: `rustc` and `rustup` from `PATH`
/// (rustup's proxies, so the workdir's rust-toolchain.toml applies).
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The compiler, asked where a target's standard library lives.
    pub rustc: PathBuf,
    /// The installer, asked to add a missing target.
    pub rustup: PathBuf,
}

impl Default for Toolchain {
    fn default() -> Self {
        Self {
            rustc: PathBuf::from("rustc"),
            rustup: PathBuf::from("rustup"),
        }
    }
}

/// The `--target` triples a build command names (`--target x` or
/// `--target=x`).
pub fn targets_of(command: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut words = command.split_whitespace();
    while let Some(w) = words.next() {
        if w == "--target" {
            out.extend(words.next());
        } else if let Some(t) = w.strip_prefix("--target=") {
            out.push(t);
        }
    }
    out
}

/// Adds the Rust targets a build command needs when the toolchain used in
/// `workdir` lacks them.
///
/// rustup installs the `targets` of rust-toolchain.toml only when it
/// installs the toolchain itself: on a machine whose stable toolchain is
/// already there, `cargo build --target wasm32-wasip2` fails with "can't
/// find crate for `core`". So before a command that names a target, ask
/// rustc where that target's library lives; when it is absent, run `rustup
/// target add` (saying so), or stop with the exact command when rustup is
/// not there. A rustc that cannot answer leaves the build to fail on its
/// own.
pub fn ensure_targets(command: &str, workdir: &Path, tools: &Toolchain) -> anyhow::Result<()> {
    for target in targets_of(command) {
        let out = Command::new(&tools.rustc)
            .args(["--print", "target-libdir", "--target", target])
            .current_dir(workdir)
            .output();
        let Ok(out) = out else { continue };
        if !out.status.success() {
            continue;
        }
        let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if libdir.is_dir() {
            continue;
        }
        eprintln!(
            "The Rust target `{target}` is not installed for this toolchain; installing it with `rustup target add {target}`"
        );
        let status = Command::new(&tools.rustup)
            .args(["target", "add", target])
            .current_dir(workdir)
            .status();
        match status {
            Ok(s) if s.success() && libdir.is_dir() => {}
            Ok(s) => bail!(
                "`rustup target add {target}` failed ({s}); run it yourself, then build again"
            ),
            Err(e) => bail!(
                "the Rust target `{target}` is not installed and rustup cannot be run ({e}); install the target (with rustup: `rustup target add {target}`), then build again"
            ),
        }
    }
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
    fn targets_are_read_from_both_flag_spellings() {
        assert_eq!(
            targets_of("cargo build --target wasm32-wasip2 --profile wasm -p router"),
            vec!["wasm32-wasip2"]
        );
        assert_eq!(
            targets_of("cargo build --target=wasm32-wasip1 && true"),
            vec!["wasm32-wasip1"]
        );
        assert!(targets_of("tinygo build -o app.wasm").is_empty());
    }

    /// A fake toolchain in `dir`: rustc prints `dir/libdir`, rustup records
    /// its arguments and creates that directory when `install` is true.
    fn fake_toolchain(dir: &Path, install: bool) -> Toolchain {
        use std::os::unix::fs::PermissionsExt;
        let libdir = dir.join("libdir");
        let write = |name: &str, body: String| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let rustc = write("rustc", format!("echo {}", libdir.display()));
        let mkdir = if install {
            format!("mkdir -p {}", libdir.display())
        } else {
            "exit 1".to_string()
        };
        let rustup = write(
            "rustup",
            format!(
                "echo \"$@\" >> {}\n{mkdir}",
                dir.join("rustup.log").display()
            ),
        );
        Toolchain { rustc, rustup }
    }

    #[test]
    fn a_missing_target_is_added_with_rustup_once() {
        let dir = tempfile::tempdir().unwrap();
        let tools = fake_toolchain(dir.path(), true);
        let command = "cargo build --target wasm32-wasip2 -p router";
        ensure_targets(command, dir.path(), &tools).unwrap();
        let log = std::fs::read_to_string(dir.path().join("rustup.log")).unwrap();
        assert_eq!(log, "target add wasm32-wasip2\n");
        // Installed now: rustup is not asked again.
        ensure_targets(command, dir.path(), &tools).unwrap();
        let log = std::fs::read_to_string(dir.path().join("rustup.log")).unwrap();
        assert_eq!(log.lines().count(), 1);
    }

    #[test]
    fn a_target_rustup_cannot_add_stops_with_the_command_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let tools = fake_toolchain(dir.path(), false);
        let e = ensure_targets("cargo build --target wasm32-wasip2", dir.path(), &tools)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rustup target add wasm32-wasip2"), "{e}");
        let mut no_rustup = tools.clone();
        no_rustup.rustup = dir.path().join("absent");
        let e = ensure_targets("cargo build --target wasm32-wasip2", dir.path(), &no_rustup)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rustup target add wasm32-wasip2"), "{e}");
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
