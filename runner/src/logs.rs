//! Component stdout/stderr: each line prefixed with the component id on the
//! console and appended to `<state-dir>/logs/<id>_stdout.txt` /
//! `<id>_stderr.txt`, the file names Spin uses for its log directory.
//!
//! Output is split into lines per instance, so two concurrent instances
//! never interleave within a line; a partial last line is written when the
//! instance ends. With OpenTelemetry logs or traces on, each write also
//! goes out as Spin sends it ([`crate::telemetry::Telemetry::app_log`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::telemetry::{Telemetry, Trace};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which console stream a log goes to.
#[derive(Debug, Clone, Copy)]
pub enum Console {
    /// The runner's stdout.
    Stdout,
    /// The runner's stderr.
    Stderr,
}

/// One component's stdout or stderr: shared by all its instances.
pub struct ComponentLog {
    prefix: String,
    console: Console,
    /// Whether lines reach the console (they always reach the file).
    echo: bool,
    file: Option<crate::console::BufferedFile>,
}

/// Spin's `FollowComponents` (crates/trigger/src/cli/stdio.rs): whose output
/// is shown on the console when it also goes to a log file. `-q/--quiet` is
/// `None`, `--follow <id>...` is `Named`, neither is `All`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FollowComponents {
    /// No component's output (`--quiet`).
    None,
    /// Only these components' output (`--follow`).
    Named(std::collections::BTreeSet<String>),
    /// Every component's output (the default).
    #[default]
    All,
}

impl FollowComponents {
    /// From `--quiet` and the `--follow` ids, as Spin's
    /// `FactorsTriggerCommand::follow_components`.
    pub fn from_flags(quiet: bool, follow: &[String]) -> Self {
        if quiet {
            Self::None
        } else if follow.is_empty() {
            Self::All
        } else {
            Self::Named(follow.iter().cloned().collect())
        }
    }

    /// Whether `component_id`'s output is shown on the console.
    pub fn should_follow(&self, component_id: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Named(ids) => ids.contains(component_id),
        }
    }

    /// Spin's `validate_follows`: every `--follow` id must be a component
    /// of the (selected) application.
    pub fn validate<'a>(
        &self,
        components: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<()> {
        let Self::Named(names) = self else {
            return Ok(());
        };
        let existing: std::collections::BTreeSet<&str> = components.into_iter().collect();
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !existing.contains(n))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let bullets = |items: &mut dyn Iterator<Item = &str>| {
            items
                .map(|i| format!("  - {i}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        anyhow::bail!(
            "The following component(s) specified in --follow do not exist in the application:\n{}\nThe following components exist:\n{}",
            bullets(&mut unknown.into_iter()),
            bullets(&mut existing.into_iter())
        )
    }
}

/// Spin's `--truncate-logs`: every `*_stdout.txt` and `*_stderr.txt` in
/// `dir` emptied (errors ignored, as Spin ignores them).
pub fn truncate_log_files(dir: &Path) {
    let Ok(entries) = dir.read_dir() else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_log = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("_stdout.txt") || n.ends_with("_stderr.txt"));
        if is_log {
            let _ = std::fs::File::create(&path);
        }
    }
}

impl ComponentLog {
    /// A log for `component` that writes to `console` and, when `log_dir` is
    /// given, to `<log_dir>/<component>_<stdout|stderr>.txt`. With a log
    /// file, the console gets the lines only if `follow` says so; without
    /// one, always (Spin's `ComponentStdioWriter::new_inherit` ignores
    /// `--quiet` and `--follow`).
    pub fn new(
        component: &str,
        console: Console,
        log_dir: Option<&Path>,
        follow: &FollowComponents,
    ) -> anyhow::Result<Self> {
        let echo = log_dir.is_none() || follow.should_follow(component);
        let file = match log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let name = match console {
                    Console::Stdout => format!("{component}_stdout.txt"),
                    Console::Stderr => format!("{component}_stderr.txt"),
                };
                Some(crate::console::buffered_file(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(dir.join(name))?,
                ))
            }
            None => None,
        };
        Ok(Self {
            prefix: format!("[{component}] "),
            console,
            echo,
            file,
        })
    }

    fn write_line(&self, line: &[u8]) {
        // Console and file failures are not the guest's problem: a closed
        // stdout must not trap the component, so errors are ignored.
        let stream = match self.console {
            Console::Stdout => crate::console::Stream::Stdout,
            Console::Stderr => crate::console::Stream::Stderr,
        };
        if self.echo {
            crate::console::line(stream, &[self.prefix.as_bytes(), line]);
        }
        if let Some(file) = &self.file
            && let Ok(mut f) = file.lock()
        {
            let _ = f.write_all(line).and_then(|_| f.write_all(b"\n"));
        }
    }
}

/// A WASI stdout/stderr for one instance of a component.
#[derive(Clone)]
pub struct InstanceOutput {
    log: Arc<ComponentLog>,
    telemetry: Option<AppLog>,
}

impl InstanceOutput {
    /// Output to `log`, and to OpenTelemetry when `telemetry` is given.
    pub fn new(log: Arc<ComponentLog>, telemetry: Option<AppLog>) -> Self {
        Self { log, telemetry }
    }
}

/// Where one instance's writes go in OpenTelemetry: its component, and its
/// `execute_wasm_component` span.
#[derive(Clone)]
pub struct AppLog {
    telemetry: Arc<Telemetry>,
    component_id: Arc<str>,
    span: Trace,
}

impl AppLog {
    /// The writes of an instance of `component_id` whose span is `span`.
    pub fn new(telemetry: Arc<Telemetry>, component_id: &str, span: Trace) -> Self {
        Self {
            telemetry,
            component_id: component_id.into(),
            span,
        }
    }
}

impl IsTerminal for InstanceOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for InstanceOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.log.clone(), self.telemetry.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.log.clone(), self.telemetry.clone()))
    }
}

/// Longest line kept before it is written out unterminated: a guest that
/// never writes a newline cannot grow the buffer without bound.
const MAX_LINE: usize = 16 * 1024;

struct LineWriter {
    log: Arc<ComponentLog>,
    telemetry: Option<AppLog>,
    buf: Vec<u8>,
}

impl LineWriter {
    fn new(log: Arc<ComponentLog>, telemetry: Option<AppLog>) -> Self {
        Self {
            log,
            telemetry,
            buf: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        // Spin sends each write as it comes (not split into lines).
        if let Some(t) = &self.telemetry {
            t.telemetry.app_log(&t.component_id, bytes, &t.span);
        }
        self.buf.extend_from_slice(bytes);
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.log.write_line(line);
        }
        if self.buf.len() > MAX_LINE {
            let line = std::mem::take(&mut self.buf);
            self.log.write_line(&line);
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.log.write_line(&self.buf);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_whole_to_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(
            ComponentLog::new(
                "probe",
                Console::Stderr,
                Some(dir.path()),
                &FollowComponents::All,
            )
            .unwrap(),
        );
        {
            let mut w = LineWriter::new(log.clone(), None);
            w.push(b"hel");
            w.push(b"lo\nwor");
            w.push(b"ld");
        }
        crate::console::flush();
        let text = std::fs::read_to_string(dir.path().join("probe_stderr.txt")).unwrap();
        assert_eq!(text, "hello\nworld\n");
    }

    #[test]
    fn a_line_without_newline_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(
            ComponentLog::new(
                "p",
                Console::Stderr,
                Some(dir.path()),
                &FollowComponents::All,
            )
            .unwrap(),
        );
        let mut w = LineWriter::new(log, None);
        w.push(&vec![b'x'; MAX_LINE + 10]);
        assert!(w.buf.is_empty());
    }
}
