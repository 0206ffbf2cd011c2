//! Buffered console output for the per-request path.
//!
//! Every request logs a line (ours, and usually the guest's), and a write
//! syscall per line showed up in the profile (3.5 % of the CPU on the
//! processor alone). Lines are appended to an in-memory buffer instead, and
//! a background thread writes it out every [`FLUSH_EVERY`] (sooner when it
//! grows past [`FLUSH_AT`]), so lines reach the console at most a few
//! milliseconds late, whole and in order. [`flush`] empties the buffers at
//! exit.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

/// How often the background thread writes buffered lines out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Buffer size that makes a writer flush inline.
pub const FLUSH_AT: usize = 32 * 1024;

static STDOUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static STDERR: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: Once = Once::new();
static FILES: Mutex<Vec<Weak<Mutex<BufWriter<File>>>>> = Mutex::new(Vec::new());

/// A log file written through a buffer that the flusher empties with the
/// console's (component logs under `<state-dir>/logs/`).
pub type BufferedFile = Arc<Mutex<BufWriter<File>>>;

/// Buffers `file` and flushes it with the console.
pub fn buffered_file(file: File) -> BufferedFile {
    let file = Arc::new(Mutex::new(BufWriter::new(file)));
    FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&file));
    start_flusher();
    file
}

fn start_flusher() {
    FLUSHER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("console-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
    });
}

/// Which console stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

fn buffer(stream: Stream) -> &'static Mutex<Vec<u8>> {
    match stream {
        Stream::Stdout => &STDOUT,
        Stream::Stderr => &STDERR,
    }
}

/// Appends `parts` and a newline to `stream` as one line.
pub fn line(stream: Stream, parts: &[&[u8]]) {
    start_flusher();
    let full = {
        let mut buf = buffer(stream).lock().unwrap_or_else(|e| e.into_inner());
        for part in parts {
            buf.extend_from_slice(part);
        }
        buf.push(b'\n');
        buf.len() >= FLUSH_AT
    };
    if full {
        flush_stream(stream);
    }
}

/// Writes out everything buffered.
pub fn flush() {
    flush_stream(Stream::Stdout);
    flush_stream(Stream::Stderr);
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    files.retain(|weak| match weak.upgrade() {
        Some(file) => {
            let _ = file.lock().unwrap_or_else(|e| e.into_inner()).flush();
            true
        }
        None => false,
    });
}

fn flush_stream(stream: Stream) {
    let pending = {
        let mut buf = buffer(stream).lock().unwrap_or_else(|e| e.into_inner());
        if buf.is_empty() {
            return;
        }
        std::mem::take(&mut *buf)
    };
    // A closed console is not a reason to fail a request: errors are ignored.
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(&pending),
        Stream::Stderr => std::io::stderr().lock().write_all(&pending),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_buffered_whole_until_flushed() {
        line(Stream::Stderr, &[b"[t] ", b"hello"]);
        {
            let buf = STDERR.lock().unwrap();
            let text = String::from_utf8_lossy(&buf);
            // The flusher thread may have written it out already.
            assert!(text.is_empty() || text.contains("[t] hello\n"), "{text}");
        }
        flush();
        assert!(STDERR.lock().unwrap().is_empty());
    }
}
