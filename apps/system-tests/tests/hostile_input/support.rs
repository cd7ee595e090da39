//! What the hostile-input suite needs around the binaries: raw sockets that misbehave on a
//! timer, log-service as a child process on four free ports, the three services on the shared
//! broker with their topology removed afterwards, and a process's resident memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::LogDir;
use testkit::process::{Service, Stack, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `HTTP_HEADER_TIMEOUT_MS`, `HTTP_BODY_TIMEOUT_MS` and `HTTP_IDLE_TIMEOUT_MS` of every server
/// the suite starts: short, so that an attack is over in seconds, and far enough apart that the
/// moment a connection ends tells which of them ended it.
pub const HEADER_TIMEOUT: Duration = Duration::from_millis(1000);
pub const BODY_TIMEOUT: Duration = Duration::from_millis(2000);
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(5000);

/// The timeouts as environment pairs.
pub fn limits_env() -> [(&'static str, String); 3] {
    [
        (
            "HTTP_HEADER_TIMEOUT_MS",
            HEADER_TIMEOUT.as_millis().to_string(),
        ),
        ("HTTP_BODY_TIMEOUT_MS", BODY_TIMEOUT.as_millis().to_string()),
        ("HTTP_IDLE_TIMEOUT_MS", IDLE_TIMEOUT.as_millis().to_string()),
    ]
}

/// Names the timeout closest to `elapsed`, for the printed figures.
pub fn closest_timeout(elapsed: Duration) -> &'static str {
    if elapsed < HEADER_TIMEOUT / 2 {
        return "before any timeout";
    }
    [
        ("header timeout", HEADER_TIMEOUT),
        ("body timeout", BODY_TIMEOUT),
        ("idle timeout", IDLE_TIMEOUT),
    ]
    .into_iter()
    .min_by_key(|(_, t)| t.abs_diff(elapsed))
    .map(|(name, _)| name)
    .unwrap_or("?")
}

/// A client that never goes through a proxy, with a bound on every request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// How a hostile peer behaves on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Sends a request head one byte every [`TRICKLE_GAP`], never finishing it.
    Slowloris,
    /// Connects and sends nothing.
    Idle,
    /// Sends a whole head announcing 1000 bytes of body, then 10 of them, then nothing.
    HalfBody,
}

/// The pause between two bytes of a slowloris head.
pub const TRICKLE_GAP: Duration = Duration::from_millis(300);

/// How a hostile connection ended, and when.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    /// From the connect to the first byte of an answer, the close, or giving up.
    pub elapsed: Duration,
    /// The status line's code, when the server answered before closing.
    pub status: Option<u16>,
    /// False when the connection was still open when the peer gave up.
    pub ended: bool,
}

/// Runs `attack` against `addr`: for `HalfBody`, `method` and `path` with `content_type`; gives
/// up after `give_up`. Returns at the first byte the server sends or at the close (a reset
/// counts as one), whichever comes first.
pub async fn attack(
    addr: SocketAddr,
    attack: Attack,
    method: &str,
    path: &str,
    content_type: &str,
    give_up: Duration,
) -> Ending {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let (mut rd, mut wr) = stream.split();
    let (head, trickle): (Vec<u8>, Vec<u8>) = match attack {
        // A header line that never ends: the head is never complete, however long it takes.
        Attack::Slowloris => (
            Vec::new(),
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: {}",
                "a".repeat(200)
            )
            .into_bytes(),
        ),
        Attack::Idle => (Vec::new(), Vec::new()),
        Attack::HalfBody => {
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
                 Content-Length: 1000\r\n\r\n"
            )
            .into_bytes();
            // The first 10 bytes of the body open a gRPC frame (no compression, 995 bytes) and
            // start it, so a gRPC service too has to wait for the rest instead of refusing a
            // malformed frame at once; a JSON or protobuf route waits for the whole body anyway.
            head.extend_from_slice(&[0, 0, 0, 0x03, 0xe3, b'0', b'1', b'2', b'3', b'4']);
            (head, Vec::new())
        }
    };
    let ended = |status| Ending {
        elapsed: started.elapsed(),
        status,
        ended: true,
    };
    if !head.is_empty() && wr.write_all(&head).await.is_err() {
        return ended(None);
    }
    let mut next = trickle.iter();
    let mut tick = tokio::time::interval(TRICKLE_GAP);
    let give_up = tokio::time::sleep(give_up);
    tokio::pin!(give_up);
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => return match read {
                Ok(0) | Err(_) => ended(None),
                Ok(n) => ended(status_of(&buf[..n])),
            },
            _ = tick.tick(), if next.len() > 0 => {
                let byte = *next.next().expect("a byte is left");
                if wr.write_all(&[byte]).await.is_err() {
                    return ended(None);
                }
            }
            () = &mut give_up => return Ending { elapsed: started.elapsed(), status: None, ended: false },
        }
    }
}

/// The code of an HTTP/1 status line at the start of `bytes`.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

/// log-service as a child process, its four listeners on free loopback ports, its SQLite file,
/// output and JSON log in a temporary directory of its own.
pub struct LogServiceProcess {
    /// The process; its URL is the REST API's.
    pub service: Service,
    /// `OTLP_GRPC_ADDR`.
    pub otlp_grpc: SocketAddr,
    /// `OTLP_HTTP_ADDR`.
    pub otlp_http: SocketAddr,
    /// `GRPC_ADDR`.
    pub grpc: SocketAddr,
    // Declared after the process, so the process is killed before its directory goes.
    _dir: LogDir,
}

impl LogServiceProcess {
    /// Starts log-service with the suite's timeouts and waits until it is ready.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts log-service with `extra` on top of the suite's environment.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let dir = LogDir::new();
        let addr = || SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (otlp_grpc, otlp_http, grpc) = (addr(), addr(), addr());
        let mut env: BTreeMap<String, String> = [
            ("OTLP_GRPC_ADDR", otlp_grpc.to_string()),
            ("OTLP_HTTP_ADDR", otlp_http.to_string()),
            ("GRPC_ADDR", grpc.to_string()),
            (
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("logs.db").display()),
            ),
            ("LOG_DIR", dir.path().display().to_string()),
            ("LOG_STDOUT", "false".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(limits_env().map(|(k, v)| (k.to_owned(), v)));
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut service = Service::start("log-service", env, dir.path());
        service.wait_ready(&client(), Duration::from_secs(30)).await;
        Self {
            service,
            otlp_grpc,
            otlp_http,
            grpc,
            _dir: dir,
        }
    }

    /// The REST API's base URL.
    pub fn url(&self) -> String {
        self.service.url()
    }

    /// The REST API's address.
    pub fn rest(&self) -> SocketAddr {
        addr_of(&self.service)
    }
}

/// The loopback address a service's URL names.
pub fn addr_of(service: &Service) -> SocketAddr {
    service
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("a service URL is http://<ip>:<port>")
}

/// order-gateway, payment-service and email-service as processes on the shared broker, with
/// the suite's timeouts; dropping it kills them and removes their exchanges and queues, so a
/// failing test leaves the broker as it found it too.
pub struct Services {
    /// The three processes.
    pub stack: Stack,
}

impl Services {
    /// Starts the three services with `env` on top of the suite's timeouts.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let limits = limits_env();
        let mut all: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(env);
        let stack = Stack::start(&testkit::broker::amqp_url(), &all).await;
        Self { stack }
    }

    /// order-gateway's base URL.
    pub fn gateway(&self) -> String {
        self.stack.gateway.url()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        // The consumer would declare its queue again if it outlived the clean-up.
        self.stack.gateway.kill();
        self.stack.payment.kill();
        self.stack.email.kill();
        let prefix = self.stack.prefix.clone();
        // Drop cannot await, and may run inside the test's runtime: a runtime of its own, on a
        // thread of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(testkit::broker::delete_topology(
                    &testkit::broker::amqp_url(),
                    &prefix,
                ));
        })
        .join();
    }
}

/// One memory figure of `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets `VmHWM` to the current resident size, so the next peak is the next request's own.
/// Returns false when the kernel refuses.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// KiB as MiB, for the printed figures.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
