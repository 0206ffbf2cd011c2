//! bench-native: the app's API and rule served by hyper on tokio, with an
//! in-memory TTL cache — the near-limit baseline of bench/run.
//!
//! `bench-native --listen 127.0.0.1:PORT` prints `Serving http://ADDR` once
//! it accepts connections, and serves until killed.

mod app;
mod cache;

use std::cell::Cell;
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use edge_core::Reply;
use edge_core::internal::REQUEST_ID_HEADER;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use app::{App, Incoming};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = parse_listen(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(listen))
}

fn parse_listen(mut args: impl Iterator<Item = String>) -> Result<SocketAddr, String> {
    let mut listen: SocketAddr = "127.0.0.1:3000".parse().unwrap();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs ADDR:PORT")?;
                listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: bench-native --listen ADDR:PORT"
                ));
            }
        }
    }
    Ok(listen)
}

async fn serve(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(listen).await?;
    let app = Arc::new(App::with_defaults());
    println!("Serving http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, req).await) }
            });
            // A client closing mid-request is not the server's error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(app: &App, req: Request<Body>) -> Response<Full<Bytes>> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let request_id = edge_core::request_id::resolve(header(REQUEST_ID_HEADER), entropy);
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let content_type = header("content-type").map(str::to_owned);
    if let Err(e) = app.precheck(&method, &path, header("content-length")) {
        return into_response(Reply::error(&e, &request_id));
    }
    let body = match read_bounded(req.into_body(), app.max_body()).await {
        Ok(body) => body,
        Err(e) => return into_response(Reply::error(&e, &request_id)),
    };
    let incoming = Incoming {
        method: &method,
        path: &path,
        content_type: content_type.as_deref(),
        body: &body,
    };
    into_response(app.handle(&incoming, &request_id))
}

/// The body, failing with 413 as soon as it passes `max` bytes.
async fn read_bounded(mut body: Body, max: usize) -> Result<Vec<u8>, edge_core::AppError> {
    let mut buf = app::bounded(max);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| edge_core::AppError::MalformedJson {
            detail: "the request body could not be read".into(),
        })?;
        if let Some(data) = frame.data_ref() {
            buf.push(data)?;
        }
    }
    Ok(buf.into_bytes())
}

fn into_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
}

/// 16 bytes for a request id (xorshift64*, seeded per thread from the
/// std hasher's random keys): unique enough for ids, not for secrets.
fn entropy() -> [u8; 16] {
    RNG.with(|state| {
        let next = || {
            let mut x = state.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            state.set(x);
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&next().to_le_bytes());
        out[8..].copy_from_slice(&next().to_le_bytes());
        out
    })
}
