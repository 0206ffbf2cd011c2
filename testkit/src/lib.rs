//! Test helpers shared by the runner's unit tests and the integration
//! tests. Real servers, never mocks: [`RedisServer`] is Debian's
//! `redis-server` on a free loopback port; [`MosquittoServer`] is Debian's
//! `mosquitto` MQTT broker, when installed (its tests are skipped without it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A loopback listener that counts the connections it is offered (and
/// never answers): a test sees whether anything dialled the port.
pub fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, hits)
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running (or stopped) redis-server owned by one test: its own port and
/// directory, no persistence (`--save "" --appendonly no`), stoppable,
/// pausable and restartable on the same port, killed on drop. A missing
/// `redis-server` fails the test with instructions; it never skips (CI
/// installs Debian's package).
pub struct RedisServer {
    /// The loopback port it listens on.
    pub port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            binary: find_redis_server(),
            dir: tempfile::tempdir().expect("temp dir for redis-server"),
            child: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("redis log file");
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("redis log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {:?}: {err}", self.binary));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers_ping() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "redis-server exited at startup with {status} (port {}): {}",
                    self.port,
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {} within 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown; its data is gone,
    /// nothing is persisted) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server must be able to die.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// The number of keys in the database, straight from Redis.
    pub fn dbsize(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        stream.write_all(b"DBSIZE\r\n").expect("DBSIZE");
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).expect("DBSIZE reply");
            reply.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&reply);
        text.trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("DBSIZE answered {text:?}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$REDIS_SERVER`, else `redis-server` on `PATH` or in `/usr/bin`.
fn find_redis_server() -> PathBuf {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "redis-server not found on PATH or in /usr/bin: the Redis tests need a real \
             server. Install it (`sudo apt-get install redis-server`; CI does) or point \
             REDIS_SERVER at the binary."
        )
    })
}

/// A component (binary format, layer 1) that imports one instance `name`
/// exporting one function `run: func()`, and nothing else: the smallest
/// component that needs an interface from its host.
pub fn component_importing(name: &str) -> Vec<u8> {
    fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
        out.push(id);
        out.push(u8::try_from(body.len()).expect("a small section"));
        out.extend_from_slice(body);
    }
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    // Type section: one instance type { type (func); export "run" (func 0) }.
    let types = [
        0x01, // one type
        0x42, 0x02, // an instance type of two declarations
        0x01, 0x40, 0x00, 0x01, 0x00, // type 0: func, no params, no result
        0x04, 0x00, 0x03, b'r', b'u', b'n', 0x01, 0x00, // export "run": func of type 0
    ];
    section(&mut bytes, 7, &types);
    // Import section: one import `name`, an instance of type 0.
    let mut import = vec![0x01, 0x00, u8::try_from(name.len()).expect("a short name")];
    import.extend_from_slice(name.as_bytes());
    import.extend_from_slice(&[0x05, 0x00]);
    section(&mut bytes, 10, &import);
    bytes
}

/// A mosquitto MQTT broker owned by one test: its own loopback port and
/// config (anonymous clients allowed, no persistence), killed on drop.
pub struct MosquittoServer {
    /// The loopback port it listens on.
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl MosquittoServer {
    /// Starts a broker and waits until it accepts connections; `None` (with
    /// a note on stderr) when `mosquitto` is not installed, so its tests
    /// skip as the conformance suite skips a missing optional service.
    pub fn start() -> Option<Self> {
        let Some(binary) = find_mosquitto() else {
            eprintln!(
                "skipped: mosquitto is not installed (`apt-get install mosquitto`; CI installs it)"
            );
            return None;
        };
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir for mosquitto");
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("mosquitto config");
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("mosquitto log");
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("mosquitto log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {binary:?}: {err}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("mosquitto.log"));
                panic!("mosquitto exited with {status}: {log:?}");
            }
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self {
            port,
            _dir: dir,
            child,
        })
    }

    /// `mqtt://127.0.0.1:<port>?client_id=<client_id>`.
    pub fn url(&self, client_id: &str) -> String {
        format!("mqtt://127.0.0.1:{}?client_id={client_id}", self.port)
    }

    /// A raw MQTT 3.1.1 subscriber to `topic` (at-most-once), connected and
    /// subscribed when this returns.
    pub fn subscribe(&self, topic: &str) -> MqttSubscriber {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to mosquitto");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut connect = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
        push_string(&mut connect, "edge-testkit-subscriber");
        write_packet(&mut stream, 0x10, &connect);
        let (kind, body) = read_packet(&mut stream);
        assert_eq!((kind >> 4, body.as_slice()), (2, &[0, 0][..]), "CONNACK");
        let mut subscribe = vec![0, 1];
        push_string(&mut subscribe, topic);
        subscribe.push(0);
        write_packet(&mut stream, 0x82, &subscribe);
        let (kind, _) = read_packet(&mut stream);
        assert_eq!(kind >> 4, 9, "SUBACK");
        MqttSubscriber { stream }
    }
}

impl Drop for MosquittoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A subscriber made by [`MosquittoServer::subscribe`].
pub struct MqttSubscriber {
    stream: TcpStream,
}

impl MqttSubscriber {
    /// The next message `(topic, payload)`; panics after 10 s without one.
    pub fn next_message(&mut self) -> (String, Vec<u8>) {
        loop {
            let (kind, body) = read_packet(&mut self.stream);
            if kind >> 4 != 3 {
                continue;
            }
            let len = u16::from_be_bytes([body[0], body[1]]) as usize;
            let topic = String::from_utf8_lossy(&body[2..2 + len]).into_owned();
            // At-most-once: no packet id before the payload.
            return (topic, body[2 + len..].to_vec());
        }
    }
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_packet(stream: &mut TcpStream, header: u8, body: &[u8]) {
    let mut packet = vec![header];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(body);
    stream.write_all(&packet).expect("write an MQTT packet");
}

fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).expect("read an MQTT packet");
    let kind = byte[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        stream.read_exact(&mut byte).expect("read an MQTT length");
        len |= ((byte[0] & 0x7f) as usize) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read an MQTT body");
    (kind, body)
}

/// `$MOSQUITTO`, else `mosquitto` on `PATH` or in `/usr/sbin`.
fn find_mosquitto() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOSQUITTO") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("mosquitto"))
        .find(|path| path.is_file())
}
