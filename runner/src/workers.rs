//! The threads that serve connections: one single-threaded Tokio runtime
//! per core.
//!
//! A request crosses several tasks: the connection, the guest's instance,
//! a chained call's instance, its response. On one thread, handing work
//! between them is a queue push; on Tokio's work-stealing runtime it often
//! meant waking the other core (a futex and a context switch), and
//! bench/README.md measured that as the largest single cost of a request.
//! So each connection lives on one worker for its whole life, and the
//! acceptor gives each new connection to the worker with the fewest open
//! ones (sharing one listening socket instead let whichever worker woke
//! first take a whole burst of connections).
//!
//! The workers know nothing of the server: the accept loop above them
//! ([`crate::server`]) gives them the function that turns a stream into an
//! HTTP connection (for HTTPS, a future that first does the TLS handshake,
//! run on the connection's own task), so the dependency goes one way,
//! server -> workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::{mpsc, oneshot, watch};

/// The default number of workers: one per available core.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The open-connection count of a worker that is gone: never the least busy.
const GONE: usize = usize::MAX / 2;

/// One worker thread, seen from the acceptor.
struct Worker {
    connections: mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>,
    /// Connections open on this worker.
    open: Arc<AtomicUsize>,
    /// Whether every connection finished within the grace period.
    finished: oneshot::Receiver<bool>,
    thread: JoinHandle<()>,
}

/// The running workers.
pub struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least busy worker starts: spreads ties.
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` threads (at least one), each serving the streams it
    /// is handed as `connection(stream, client)`; at stop, each lets its
    /// connections finish for up to `grace`.
    pub fn start<F, C>(count: usize, grace: Duration, connection: F) -> anyhow::Result<Self>
    where
        F: Fn(tokio::net::TcpStream, SocketAddr) -> C + Send + Sync + 'static,
        C: GracefulConnection + Send + 'static,
        C::Error: Send,
    {
        Self::start_with(count, grace, move |stream, client, graceful, _stopping| {
            let conn = graceful.watch(connection(stream, client));
            async move {
                // Errors here are the client's (reset, malformed request,
                // head too large): the connection just ends.
                let _ = conn.await;
            }
        })
    }

    /// As [`Workers::start`], for streams that go through an asynchronous
    /// step before they are HTTP connections (a TLS handshake):
    /// `connection(stream, client)` resolves to the connection, or to
    /// `None` to drop the stream (a failed handshake). The step runs on the
    /// connection's own task, so a slow one holds up no other connection.
    /// It counts as in flight for the shutdown; if the acceptor stops
    /// before the step is done, it is abandoned and the stream closed, as
    /// an idle HTTP connection is closed at shutdown.
    pub fn start_handshaking<F, H, C>(
        count: usize,
        grace: Duration,
        connection: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(tokio::net::TcpStream, SocketAddr) -> H + Send + Sync + 'static,
        H: Future<Output = Option<C>> + Send + 'static,
        C: GracefulConnection + Send + 'static,
        C::Error: Send,
    {
        Self::start_with(count, grace, move |stream, client, graceful, stopping| {
            // Watched from the start: the shutdown waits for the step too.
            let watcher = graceful.watcher();
            let mut stopping = stopping.clone();
            let step = connection(stream, client);
            async move {
                let conn = tokio::select! {
                    conn = step => conn,
                    _ = stopping.wait_for(|stopping| *stopping) => None,
                };
                if let Some(conn) = conn {
                    let _ = watcher.watch(conn).await;
                }
            }
        })
    }

    /// Starts the threads; each gives every stream it is handed to
    /// `serve(stream, client, graceful, stopping)` and runs the task it
    /// returns. `graceful` is the worker's shutdown, which the task's
    /// connection must be watched by; `stopping` turns true when the
    /// acceptor stops, just before that shutdown starts.
    fn start_with<S, T>(count: usize, grace: Duration, serve: S) -> anyhow::Result<Self>
    where
        S: Fn(
                tokio::net::TcpStream,
                SocketAddr,
                &hyper_util::server::graceful::GracefulShutdown,
                &watch::Receiver<bool>,
            ) -> T
            + Send
            + Sync
            + 'static,
        T: Future<Output = ()> + Send + 'static,
    {
        let serve = Arc::new(serve);
        let mut workers = Vec::new();
        for n in 0..count.max(1) {
            let (connections, mut incoming) = mpsc::unbounded_channel();
            let (done, finished) = oneshot::channel();
            let open = Arc::new(AtomicUsize::new(0));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let serve = Arc::clone(&serve);
            let count = Arc::clone(&open);
            let thread = std::thread::Builder::new()
                .name(format!("edge-worker-{n}"))
                .spawn(move || {
                    let all_done = runtime.block_on(async move {
                        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
                        let (stop, stopping) = watch::channel(false);
                        while let Some((stream, client)) = incoming.recv().await {
                            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                                count.fetch_sub(1, Ordering::Relaxed);
                                continue;
                            };
                            let task = serve(stream, client, &graceful, &stopping);
                            let count = Arc::clone(&count);
                            tokio::spawn(async move {
                                task.await;
                                count.fetch_sub(1, Ordering::Relaxed);
                            });
                        }
                        // The acceptor stopped: let in-flight requests end.
                        let _ = stop.send(true);
                        tokio::time::timeout(grace, graceful.shutdown())
                            .await
                            .is_ok()
                    });
                    // Tasks still running past the grace period end with
                    // the runtime here.
                    drop(runtime);
                    let _ = done.send(all_done);
                })?;
            workers.push(Worker {
                connections,
                open,
                finished,
                thread,
            });
        }
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Gives an accepted connection to the worker with the fewest open ones.
    /// A worker that is gone (its thread panicked) refuses it: it is marked
    /// so it is never chosen again and the next one is tried; with none
    /// left, the connection closes.
    pub fn hand_over(&self, stream: tokio::net::TcpStream, client: SocketAddr) {
        let Ok(mut stream) = stream.into_std() else {
            return;
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for _ in 0..self.workers.len() {
            let open: Vec<usize> = self
                .workers
                .iter()
                .map(|w| w.open.load(Ordering::Relaxed))
                .collect();
            let worker = &self.workers[least_busy(&open, start)];
            worker.open.fetch_add(1, Ordering::Relaxed);
            match worker.connections.send((stream, client)) {
                Ok(()) => return,
                Err(mpsc::error::SendError((refused, _))) => {
                    worker.open.store(GONE, Ordering::Relaxed);
                    stream = refused;
                }
            }
        }
    }

    /// Stops the workers once their connections end (each waits up to the
    /// grace period) and waits for their threads. Whether every request
    /// finished in time.
    pub async fn stop(self) -> bool {
        let mut all_done = true;
        let workers: Vec<_> = self
            .workers
            .into_iter()
            .map(|w| {
                drop(w.connections);
                (w.finished, w.thread)
            })
            .collect();
        for (finished, thread) in workers {
            // A worker that panicked never says: count it as not done.
            all_done &= finished.await.unwrap_or(false);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        all_done
    }
}

/// The index of the smallest count, searching from `start` (modulo the
/// length) so that ties go round the workers. `counts` is not empty.
fn least_busy(counts: &[usize], start: usize) -> usize {
    let n = counts.len();
    (0..n)
        .map(|i| (start + i) % n)
        .min_by_key(|&i| counts[i])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose receiving end is `alive` or already dropped.
    fn worker(
        alive: bool,
    ) -> (
        Worker,
        Option<mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>>,
    ) {
        let (connections, incoming) = mpsc::unbounded_channel();
        let (_done, finished) = oneshot::channel();
        let w = Worker {
            connections,
            open: Arc::new(AtomicUsize::new(0)),
            finished,
            thread: std::thread::spawn(|| {}),
        };
        (w, alive.then_some(incoming))
    }

    #[tokio::test]
    async fn a_worker_that_is_gone_is_skipped_and_never_chosen_again() {
        let (dead, _) = worker(false);
        let (live, incoming) = worker(true);
        let mut incoming = incoming.unwrap();
        let workers = Workers {
            workers: vec![dead, live],
            next: AtomicUsize::new(0),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..3 {
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            workers.hand_over(stream, peer);
            let (_, got) = incoming
                .try_recv()
                .expect("the live worker got the connection");
            assert_eq!(got, peer);
        }
        assert_eq!(workers.workers[0].open.load(Ordering::Relaxed), GONE);
        assert_eq!(workers.workers[1].open.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_connection_still_in_its_handshake_is_abandoned_at_stop() {
        // A handshake that never ends: the stop must not wait out the grace.
        let workers = Workers::start_handshaking(1, Duration::from_secs(60), |stream, _| async {
            std::future::pending::<()>().await;
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                    bytes::Bytes,
                >::new()))
            });
            Some(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            )
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        workers.hand_over(stream, peer);
        assert_eq!(workers.workers[0].open.load(Ordering::Relaxed), 1);
        let stopped = tokio::time::timeout(Duration::from_secs(10), workers.stop()).await;
        assert_eq!(stopped, Ok(true), "the stop waited on the handshake");
    }

    #[test]
    fn a_new_connection_goes_to_the_worker_with_the_fewest() {
        assert_eq!(least_busy(&[3, 1, 2], 0), 1);
        assert_eq!(least_busy(&[3, 1, 2], 2), 1);
        assert_eq!(least_busy(&[0, 5], 1), 0);
    }

    #[test]
    fn ties_go_round_the_workers() {
        let mut open = [0usize; 3];
        for start in 0..9 {
            let w = least_busy(&open, start);
            open[w] += 1;
        }
        assert_eq!(open, [3, 3, 3]);
        // With equal counts the search start decides.
        assert_eq!(least_busy(&[2, 2, 2], 4), 1);
    }

    #[test]
    fn a_single_worker_takes_everything() {
        assert_eq!(least_busy(&[7], 0), 0);
        assert_eq!(least_busy(&[7], 41), 0);
    }
}
