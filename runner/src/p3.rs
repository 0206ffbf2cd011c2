//! WASI 0.3 (`wasi:http/handler@0.3.0`) components with Spin 4's instance
//! reuse: one instance serves up to `--max-instance-reuse-count` requests,
//! up to `--max-instance-concurrent-reuse-count` at once, is dropped after
//! `--idle-instance-timeout` without work, and each request has
//! `--request-timeout` (see [`crate::reuse`]).
//!
//! Spin 4.0.2 runs these components through wasmtime 44's
//! `wasmtime_wasi_http::handler::ProxyHandler`; its worker loop is what
//! defines Spin's behaviour, so it is ported here (from wasmtime v44.0.0
//! `crates/wasi-http/src/handler.rs`, Apache-2.0 WITH LLVM-exception) onto
//! wasmtime 48, whose own `ProxyHandler` has a different contract (a
//! request leaves its slot when the response head is out, not when the
//! body is sent; expirations are measured from the latest request). The
//! task each request runs is Spin's (`crates/trigger-http/src/wasip3.rs`):
//! the request goes in, the response comes out, and the task holds its slot
//! until the server has read the whole body.
//!
//! What follows from it, as on Spin:
//! - the values are picked per instance when it starts;
//! - a request past its timeout is dropped (its caller gets an empty 500),
//!   the instance takes no new request and ends once the others are done;
//!   a guest that never yields is ended at twice the timeout after its
//!   oldest request started;
//! - a trap ends the instance and every request it held (each an empty
//!   500); the next request gets a fresh instance.

use std::collections::VecDeque;
use std::collections::btree_map::{BTreeMap, Entry};
use std::future::{self, Future};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use http_body_util::BodyExt;
use tokio::sync::{Notify, oneshot};
use wasmtime::component::Accessor;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::errors::GuestFailure;
use crate::reuse::ReuseConfig;
use crate::state::HostState;
use crate::telemetry::Trace;

/// What the workers need from the app: a fresh store for the component
/// (its host state, limits and deadline callback), and its id for the logs.
pub(crate) trait Instances: Send + Sync + 'static {
    /// The component id from spin.toml.
    fn component_id(&self) -> &str;
    /// A fresh store, and the receiver of a trap the outbound hook may raise.
    fn new_store(
        &self,
    ) -> (
        wasmtime::Store<HostState>,
        tokio::sync::oneshot::Receiver<String>,
    );
}

/// One request's work in an instance (Spin's `TaskFn`).
type Task = Box<
    dyn for<'a> FnOnce(
            &'a Accessor<HostState>,
            &'a Service,
        ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
        + Send,
>;

/// A WASI 0.3 component's instances: the queue of requests and the workers
/// (one per instance) that take them.
pub struct P3Handler(Arc<Inner>);

struct Inner {
    pre: ServicePre<HostState>,
    reuse: ReuseConfig,
    /// Why no instance can start (an empty range, a reuse count of 0).
    invalid: Option<String>,
    queue: Queue<Task>,
    /// Workers that would take a request now.
    worker_count: AtomicUsize,
}

impl Clone for P3Handler {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl P3Handler {
    /// The handler of a component whose pre-instance serves `wasi:http/handler@0.3.0`.
    pub fn new(pre: ServicePre<HostState>, reuse: ReuseConfig) -> Self {
        Self(Arc::new(Inner {
            pre,
            reuse,
            invalid: reuse.pick().err(),
            queue: Queue::default(),
            worker_count: AtomicUsize::new(0),
        }))
    }

    /// Runs one request in an instance of `component`: a waiting worker
    /// takes it, or a new one starts for it.
    pub(crate) async fn handle(
        &self,
        instances: Arc<dyn Instances>,
        request: http::Request<WasiBody>,
        depth: u32,
        span: &Trace,
    ) -> Result<http::Response<WasiBody>, GuestFailure> {
        let id = instances.component_id().to_owned();
        if let Some(why) = &self.0.invalid {
            // Spin panics in `random_range` here; the request fails.
            return Err(GuestFailure::Host(format!(
                "component `{id}`: no instance can start: {why}"
            )));
        }
        let (tx, rx) = oneshot::channel();
        let span = span.clone();
        let task: Task = Box::new(move |accessor, guest| {
            Box::pin(async move {
                let id = accessor.with(|mut store| store.data_mut().hooks.component.id.clone());
                if let Err(error) = serve(accessor, guest, request, depth, span, tx).await {
                    eprintln!("error: [{id}] Component error handling request: {error:?}");
                }
            })
        });
        self.spawn(&instances, task);
        rx.await.map_err(|_| {
            GuestFailure::Trap(format!(
                "component `{id}` gave no response: its instance trapped, failed, or ran past \
                 the request timeout (see above)"
            ))
        })
    }

    fn spawn(&self, instances: &Arc<dyn Instances>, task: Task) {
        if self.0.worker_count.load(Relaxed) == 0 {
            // No worker waits: a new one takes the task directly.
            self.start_worker(instances, Some(task));
        } else {
            self.0.queue.push(task);
            // If the last waiting worker just left, start one (see
            // `Worker::set_available` for the other side of this race).
            if self.0.worker_count.load(SeqCst) == 0 {
                self.start_worker(instances, None);
            }
        }
    }

    fn start_worker(&self, instances: &Arc<dyn Instances>, task: Option<Task>) {
        let worker = Worker {
            handler: self.clone(),
            instances: instances.clone(),
            available: false,
        };
        tokio::spawn(worker.run(task));
    }
}

/// Spin's task (`Wasip3HttpExecutor::execute`): the request in, the
/// response to the server, then wait until the server has read its body.
async fn serve(
    accessor: &Accessor<HostState>,
    guest: &Service,
    request: http::Request<WasiBody>,
    depth: u32,
    span: Trace,
    tx: oneshot::Sender<http::Response<WasiBody>>,
) -> anyhow::Result<()> {
    let (request, request_io) = accessor.with(|mut store| {
        let data = store.data_mut();
        // What this request's calls see (the latest request's, when the
        // instance serves several at once).
        data.hooks.depth = depth;
        data.hooks.trace = span.clone();
        data.key_value.trace = span.clone();
        data.variables.trace = span.clone();
        data.sqlite.trace = span.clone();
        data.redis.trace = span.clone();
        data.mqtt.trace = span.clone();
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(&mut data.hooks, request);
        let io: RequestIo = Box::pin(io);
        anyhow::Ok((data.table.push(request)?, io))
    })?;
    let response = guest
        .wasi_http_handler()
        .call_handle(accessor, request)
        .await
        .map_err(wasm_error)?
        .map_err(|code| anyhow::anyhow!("the handler answered with an error: {code:?}"))?;
    let response = accessor.with(|mut store| {
        let response = store.data_mut().table.delete(response)?;
        response
            .into_http_with_getter(&mut store, request_io, HostState::http)
            .map_err(wasm_error)
    })?;
    let (body_done, body_read) = oneshot::channel();
    let response = response.map(|body| NotifyOnDrop::new(body, body_done).boxed_unsync());
    if tx.send(response).is_ok() {
        // The instance must not leave its event loop before the server has
        // read the body, or the guest could not finish writing it.
        let _ = body_read.await;
    }
    drop(span);
    Ok(())
}

/// What becomes of the request body (declared `'static` by wasmtime).
type RequestIo = Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>>;

fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into_boxed_dyn_error())
}

/// A body that says when the server is done with it (Spin's
/// `NotifyOnDropBody`).
struct NotifyOnDrop {
    body: WasiBody,
    _done: oneshot::Sender<()>,
}

impl NotifyOnDrop {
    fn new(body: WasiBody, done: oneshot::Sender<()>) -> Self {
        Self { body, _done: done }
    }
}

impl http_body::Body for NotifyOnDrop {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Async MPMC queue: each task goes to one worker.
struct Queue<T> {
    queue: Mutex<VecDeque<T>>,
    notify: Notify,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            queue: Default::default(),
            notify: Default::default(),
        }
    }
}

impl<T> Queue<T> {
    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }

    fn push(&self, item: T) {
        self.queue.lock().unwrap().push_back(item);
        self.notify.notify_one();
    }

    fn try_pop(&self) -> Option<T> {
        self.queue.lock().unwrap().pop_front()
    }

    async fn pop(&self) -> T {
        let mut notified = pin!(self.notify.notified());
        loop {
            notified.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.as_mut().await;
            notified.set(self.notify.notified());
        }
    }
}

/// The deadlines of the tasks an instance holds, to end it from outside
/// its event loop when a guest never yields.
#[derive(Default)]
struct StartTimes(BTreeMap<Instant, usize>);

impl StartTimes {
    fn add(&mut self, time: Instant) {
        *self.0.entry(time).or_insert(0) += 1;
    }

    fn remove(&mut self, time: Instant) {
        let Entry::Occupied(mut entry) = self.0.entry(time) else {
            unreachable!()
        };
        if *entry.get() == 1 {
            entry.remove();
        } else {
            *entry.get_mut() -= 1;
        }
    }

    fn earliest(&self) -> Option<Instant> {
        self.0.first_key_value().map(|(&k, _)| k)
    }
}

/// One instance and the loop that feeds it requests.
struct Worker {
    handler: P3Handler,
    instances: Arc<dyn Instances>,
    available: bool,
}

impl Worker {
    fn set_available(&mut self, available: bool) {
        if available != self.available {
            self.available = available;
            let inner = &self.handler.0;
            if available {
                inner.worker_count.fetch_add(1, Relaxed);
            } else {
                let count = inner.worker_count.fetch_sub(1, SeqCst);
                // The last waiting worker leaves while tasks wait: start one.
                if count == 1 && !inner.queue.is_empty() {
                    self.handler.start_worker(&self.instances, None);
                }
            }
        }
    }

    async fn run(mut self, task: Option<Task>) {
        if let Err(error) = self.run_(task).await {
            // Spin: `tracing::warn!("worker error: {error:?}")`.
            eprintln!(
                "error: [{}] worker error: {error:?}",
                self.instances.component_id()
            );
        }
    }

    async fn run_(&mut self, task: Option<Task>) -> wasmtime::Result<()> {
        let inner = self.handler.0.clone();
        let reuse = inner.reuse.pick().map_err(wasmtime::Error::msg)?;
        let request_timeout = reuse.request_timeout;
        let idle_instance_timeout = reuse.idle_timeout;
        let max_instance_reuse_count = reuse.max_reuse;
        let max_instance_concurrent_reuse_count = reuse.max_concurrent;

        let (mut store, trapped) = self.instances.new_store();
        let proxy = &inner.pre.instantiate_async(&mut store).await?;
        if store.data().usage.is_some() {
            let grown = store.data().limits.memory_consumed();
            if let Some(usage) = store.data_mut().usage.as_mut() {
                usage.memory_on_init = grown;
            }
        }
        let accept_concurrent = AtomicBool::new(true);
        let task_start_times = Mutex::new(StartTimes::default());

        let mut future = pin!(store.run_concurrent(async |accessor| {
            let mut reuse_count = 0;
            let mut timed_out = false;
            let mut futures = FuturesUnordered::new();

            let accept_task =
                |task: Task, futures: &mut FuturesUnordered<_>, reuse_count: &mut usize| {
                    // Assume the new task is CPU-bound until the event loop
                    // says otherwise: take no other task meanwhile.
                    accept_concurrent.store(false, Relaxed);
                    *reuse_count += 1;
                    let start_time = Instant::now().checked_add(request_timeout);
                    if let Some(start_time) = start_time {
                        task_start_times.lock().unwrap().add(start_time);
                    }
                    futures.push(tokio::time::timeout(request_timeout, async move {
                        (task)(accessor, proxy).await;
                        start_time
                    }));
                };

            if let Some(task) = task {
                accept_task(task, &mut futures, &mut reuse_count);
            }

            let handler = self.handler.clone();
            while !(futures.is_empty() && reuse_count >= max_instance_reuse_count) {
                let new_task = {
                    let future_count = futures.len();
                    let mut next_future = pin!(async {
                        if futures.is_empty() {
                            future::pending().await
                        } else {
                            futures.next().await.unwrap()
                        }
                    });
                    let mut next_task = pin!(tokio::time::timeout(
                        if future_count == 0 {
                            idle_instance_timeout
                        } else {
                            Duration::MAX
                        },
                        handler.0.queue.pop()
                    ));
                    // The tasks first (a timed-out one stops the intake),
                    // then, if every task waits, a new task.
                    future::poll_fn(|cx| match next_future.as_mut().poll(cx) {
                        Poll::Pending => {
                            self.set_available(
                                reuse_count < max_instance_reuse_count
                                    && future_count < max_instance_concurrent_reuse_count
                                    && (future_count == 0 || accept_concurrent.load(Relaxed)),
                            );
                            if self.available {
                                next_task.as_mut().poll(cx).map(Some)
                            } else {
                                Poll::Pending
                            }
                        }
                        Poll::Ready(Ok(start_time)) => {
                            if let Some(start_time) = start_time {
                                task_start_times.lock().unwrap().remove(start_time);
                            }
                            Poll::Ready(None)
                        }
                        Poll::Ready(Err(_)) => {
                            // A task ran past the timeout: no new task; the
                            // others may finish, then the instance ends.
                            timed_out = true;
                            reuse_count = max_instance_reuse_count;
                            Poll::Ready(None)
                        }
                    })
                    .await
                };

                match new_task {
                    Some(Ok(task)) => accept_task(task, &mut futures, &mut reuse_count),
                    // Idle past the idle timeout.
                    Some(Err(_)) => break,
                    None => {}
                }
            }
            self.set_available(false);

            if timed_out {
                Err(wasmtime::format_err!("guest timed out"))
            } else {
                wasmtime::error::Ok(())
            }
        }));

        let mut sleep = pin!(tokio::time::sleep(Duration::MAX));
        let mut trapped = Some(trapped);

        future::poll_fn(|cx| {
            // The outbound hook ends the guest where it waits (a chaining
            // host naming no component), as a host trap would on Spin.
            if let Some(rx) = trapped.as_mut() {
                match Pin::new(rx).poll(cx) {
                    Poll::Ready(Ok(why)) => return Poll::Ready(Err(wasmtime::Error::msg(why))),
                    Poll::Ready(Err(_)) => trapped = None,
                    Poll::Pending => {}
                }
            }
            let poll = future.as_mut().poll(cx).map(|r| r.and_then(|r| r));
            if poll.is_pending() {
                // A guest that never yields, or a host call holding the
                // store, keeps the event loop (and the timeouts inside it)
                // from running: end the instance at twice the timeout
                // after its oldest task started.
                if let Some(deadline) = task_start_times
                    .lock()
                    .unwrap()
                    .earliest()
                    .and_then(|v| v.checked_add(request_timeout.saturating_mul(2)))
                {
                    sleep.as_mut().reset(deadline.into());
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(wasmtime::format_err!("guest timed out")));
                    }
                }
                if !accept_concurrent.swap(true, Relaxed) {
                    return future.as_mut().poll(cx).map(|r| r.and_then(|r| r));
                }
            }
            poll
        })
        .await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.set_available(false);
    }
}
