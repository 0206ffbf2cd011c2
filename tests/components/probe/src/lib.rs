//! A probe component for edge-runner's tests: each route exercises one host
//! feature and answers 200 with what it saw, or 500/502 with the error, so a
//! test can assert on exactly what the guest observed.
//!
//! Routes (path info after the component's route):
//! - `GET /hello`                   → 200 `hello`
//! - `GET /count`                   → 200 `served=<n>`: requests this instance has taken
//! - `GET /headers`                 → 200, one `name: value` line per `spin-*` header
//! - `GET /trap`                    → panics (a trap)
//! - `GET /loop`                    → never returns (busy loop)
//! - `GET /fetch?url=<url>`         → the outbound response `<status> <body>`, or 502 `<error>`
//! - `GET /var?name=<n>`            → the variable's value, or 500 `<error>`
//! - `GET /env?name=<n>`            → the WASI environment variable, or 404
//! - `GET /kv?store=<s>&op=<op>&key=<k>&value=<v>` → key-value result, or 500 `<error>`
//! - `GET /print`                   → writes a line to stdout and stderr
//! - `POST /echo`                   → the request body
//! - `GET /sleep?ms=<n>`            → 200 `slept` after n milliseconds (a monotonic-clock wait)
//! - `GET /alloc?mb=<n>`           → 200 `allocated <n> MiB (...)` after allocating and touching n MiB; a failed growth traps
//! - `GET /tcp?addr=<ip:port>&msg=<m>` → connects with wasi:sockets, writes m, answers 200 with
//!   what it reads back (m's length), or 500 `<call>: <error>` (`start-connect: access-denied (error 1)`)
//! - `GET /tcp-bind?addr=<ip:port>` → binds a TCP socket: 200 `bound`, or 500 `<call>: <error>`
//! - `GET /udp?bind=<ip:port>&addr=<ip:port>&msg=<m>` → binds, sends m to addr, answers 200 with
//!   the first datagram back, or 500 `<step>: <error>`
//! - `GET /resolve?name=<n>`        → ip-name-lookup: 200 with the addresses, or 500 with the error
//! - `GET /sqlite?db=<label>&sql=<statement>&arg=<text>...` → opens the database
//!   and runs the statement (each `arg` bound as text, in order): 200 with the
//!   result as JSON, `{"columns":[...],"rows":[[...],...]}` (integers and
//!   reals as numbers, text as strings, blobs as arrays of bytes, null as
//!   null), or 500 with the error's Debug text (e.g. `Error::AccessDenied`)
//! - `GET /redis?addr=<redis://...>&op=<op>&key=<k>&value=<v>` → opens the
//!   connection, then `op`: `open` (nothing more), `get`, `set`, `incr`,
//!   `del` (of `key`), `sadd`/`srem` (of `value`), `smembers`, `publish`
//!   (`value` to channel `key`), `execute` (command `key`, each `value` an
//!   argument): 200 with the result as text, or 500 with the error's Debug text
//! - `GET /mqtt?addr=<mqtt://...>&user=<u>&password=<p>&topic=<t>&payload=<b>&qos=<0|1|2>`
//!   → opens the connection (keep-alive 30 s) and publishes unless `topic`
//!   is absent: 200 `published` (or `opened`), or 500 with the error's Debug
//!   text (e.g. `Error::ConnectionFailed("address ... is not permitted")`)

mod query;
mod sockets;

use query::{percent_decode, query_param};

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

/// Requests this instance has taken (a static lives as long as the instance).
static SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[http_component]
async fn handle(req: Request) -> Response {
    let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let path = req
        .header("spin-path-info")
        .and_then(|v| v.as_str())
        .unwrap_or(req.path())
        .to_string();
    let query = req.query().to_string();
    let param = |name: &str| query_param(&query, name);
    match (req.method(), path.as_str()) {
        (_, "/hello") => text(200, "hello"),
        (_, "/count") => text(200, &format!("served={served}")),
        (_, "/headers") => {
            let mut lines: Vec<String> = req
                .headers()
                .filter(|(k, _)| k.starts_with("spin-"))
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("<binary>")))
                .collect();
            lines.sort();
            text(200, &lines.join("\n"))
        }
        (_, "/trap") => panic!("the probe was asked to trap"),
        (_, "/loop") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        (_, "/fetch") => fetch(&param("url").unwrap_or_default()).await,
        (_, "/var") => match spin_sdk::variables::get(&param("name").unwrap_or_default()) {
            Ok(v) => text(200, &v),
            Err(e) => text(500, &format!("{e:?}")),
        },
        (_, "/env") => match std::env::var(param("name").unwrap_or_default()) {
            Ok(v) => text(200, &v),
            Err(_) => text(404, "unset"),
        },
        (_, "/kv") => kv(
            &param("store").unwrap_or_default(),
            &param("op").unwrap_or_default(),
            param("key"),
            param("value"),
        ),
        (_, "/print") => {
            println!("probe says hello on stdout");
            eprintln!("probe says hello on stderr");
            text(200, "printed")
        }
        (_, "/sleep") => {
            let ms: u64 = param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            text(200, "slept")
        }
        (_, "/alloc") => {
            // Grows linear memory by `mb` MiB and touches every page: a
            // failed growth aborts (a trap), as any allocation failure does.
            let mb: usize = param("mb").and_then(|v| v.parse().ok()).unwrap_or(0);
            let block = vec![1u8; mb << 20];
            let touched: usize = block.iter().step_by(4096).map(|&b| b as usize).sum();
            text(200, &format!("allocated {mb} MiB ({touched} pages)"))
        }
        (_, "/sqlite") => sqlite(
            &param("db").unwrap_or_default(),
            &param("sql").unwrap_or_default(),
            query_params(&query, "arg"),
        ),
        (_, "/redis") => redis(
            &param("addr").unwrap_or_default(),
            &param("op").unwrap_or_default(),
            &param("key").unwrap_or_default(),
            query_params(&query, "value"),
        ),
        (_, "/mqtt") => mqtt(
            &param("addr").unwrap_or_default(),
            &param("user").unwrap_or_default(),
            &param("password").unwrap_or_default(),
            param("topic"),
            param("payload").unwrap_or_default(),
            param("qos").as_deref(),
        ),
        (Method::Post, "/echo") => text(200, &String::from_utf8_lossy(req.body())),
        (_, "/tcp") => answer(sockets::tcp_echo(
            &param("addr").unwrap_or_default(),
            &param("msg").unwrap_or_default(),
        )),
        (_, "/tcp-bind") => answer(sockets::tcp_bind(&param("addr").unwrap_or_default())),
        (_, "/udp") => answer(sockets::udp_echo(
            &param("bind").unwrap_or_default(),
            &param("addr").unwrap_or_default(),
            &param("msg").unwrap_or_default(),
        )),
        (_, "/resolve") => answer(sockets::resolve(&param("name").unwrap_or_default())),
        _ => text(404, "no such probe route"),
    }
}

/// 200 with the route's result, or 500 with its error as the guest sees it.
fn answer(result: Result<String, String>) -> Response {
    match result {
        Ok(v) => text(200, &v),
        Err(e) => text(500, &e),
    }
}

async fn fetch(url: &str) -> Response {
    let request = Request::get(url);
    match spin_sdk::http::send::<_, Response>(request).await {
        Ok(resp) => text(
            200,
            &format!("{} {}", resp.status(), String::from_utf8_lossy(resp.body())),
        ),
        Err(e) => text(502, &format!("{e:?}")),
    }
}

fn kv(store: &str, op: &str, key: Option<String>, value: Option<String>) -> Response {
    let store = match spin_sdk::key_value::Store::open(store) {
        Ok(s) => s,
        Err(e) => return text(500, &format!("{e:?}")),
    };
    let key = key.unwrap_or_default();
    let result = match op {
        "get" => store.get(&key).map(|v| {
            v.map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|| "<none>".into())
        }),
        "set" => store
            .set(&key, value.unwrap_or_default().as_bytes())
            .map(|_| "ok".into()),
        "delete" => store.delete(&key).map(|_| "ok".into()),
        "exists" => store.exists(&key).map(|b| b.to_string()),
        "keys" => store.get_keys().map(|mut k| {
            k.sort();
            k.join(",")
        }),
        _ => return text(400, "unknown op"),
    };
    match result {
        Ok(v) => text(200, &v),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn sqlite(db: &str, sql: &str, args: Vec<String>) -> Response {
    use spin_sdk::sqlite::{Connection, Value};
    let conn = match Connection::open(db) {
        Ok(c) => c,
        Err(e) => return text(500, &format!("{e:?}")),
    };
    let args: Vec<Value> = args.into_iter().map(Value::Text).collect();
    let result = match conn.execute(sql, &args) {
        Ok(r) => r,
        Err(e) => return text(500, &format!("{e:?}")),
    };
    let value = |v: &Value| match v {
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => format!("{r:?}"),
        Value::Text(t) => json_string(t),
        Value::Blob(b) => format!(
            "[{}]",
            b.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
        ),
        Value::Null => "null".to_string(),
    };
    let columns: Vec<String> = result.columns.iter().map(|c| json_string(c)).collect();
    let rows: Vec<String> = result
        .rows
        .iter()
        .map(|r| {
            format!(
                "[{}]",
                r.values.iter().map(value).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    text(
        200,
        &format!(
            "{{\"columns\":[{}],\"rows\":[{}]}}",
            columns.join(","),
            rows.join(",")
        ),
    )
}

fn redis(addr: &str, op: &str, key: &str, values: Vec<String>) -> Response {
    use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
    let conn = match Connection::open(addr) {
        Ok(c) => c,
        Err(e) => return text(500, &format!("{e:?}")),
    };
    let value = values.first().cloned().unwrap_or_default().into_bytes();
    let result: Result<String, spin_sdk::redis::Error> = match op {
        "open" => Ok("opened".into()),
        "get" => conn.get(key).map(|v| {
            v.map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|| "<none>".into())
        }),
        "set" => conn.set(key, &value).map(|_| "ok".into()),
        "incr" => conn.incr(key).map(|n| n.to_string()),
        "del" => conn.del(&[key.to_string()]).map(|n| n.to_string()),
        "sadd" => conn.sadd(key, &values).map(|n| n.to_string()),
        "srem" => conn.srem(key, &values).map(|n| n.to_string()),
        "smembers" => conn.smembers(key).map(|mut m| {
            m.sort();
            m.join(",")
        }),
        "publish" => conn.publish(key, &value).map(|_| "ok".into()),
        "execute" => {
            let args: Vec<RedisParameter> = values
                .into_iter()
                .map(|v| RedisParameter::Binary(v.into_bytes()))
                .collect();
            conn.execute(key, &args).map(|results| {
                results
                    .iter()
                    .map(|r| match r {
                        RedisResult::Nil => "nil".to_string(),
                        RedisResult::Status(s) => format!("status:{s}"),
                        RedisResult::Int64(i) => format!("int:{i}"),
                        RedisResult::Binary(b) => format!("binary:{}", String::from_utf8_lossy(b)),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
        }
        _ => return text(400, "unknown op"),
    };
    match result {
        Ok(v) => text(200, &v),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn mqtt(
    addr: &str,
    user: &str,
    password: &str,
    topic: Option<String>,
    payload: String,
    qos: Option<&str>,
) -> Response {
    use spin_sdk::mqtt::{Connection, Qos};
    let conn = match Connection::open(addr, user, password, 30) {
        Ok(c) => c,
        Err(e) => return text(500, &format!("{e:?}")),
    };
    let Some(topic) = topic else {
        return text(200, "opened");
    };
    let qos = match qos {
        Some("1") => Qos::AtLeastOnce,
        Some("2") => Qos::ExactlyOnce,
        _ => Qos::AtMostOnce,
    };
    match conn.publish(&topic, &payload.into_bytes(), qos) {
        Ok(()) => text(200, "published"),
        Err(e) => text(500, &format!("{e:?}")),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn query_params(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
        .collect()
}

fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .build()
        .into_response()
}
