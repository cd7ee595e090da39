//! A TCP proxy in front of the broker that a test can cut and restore, to play a broker outage
//! without touching the broker other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards a loopback port to `target` while open; [`TcpProxy::cut`] drops every connection and
/// refuses new ones, as a dead broker would.
pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Option<JoinSet<()>>>>,
}

impl TcpProxy {
    /// Reserves a free port, closed until [`TcpProxy::restore`].
    pub async fn closed(target: SocketAddr) -> Self {
        Self {
            port: crate::process::free_port(),
            target,
            tasks: Arc::new(Mutex::new(None)),
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Opens the port and forwards connections.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind proxy port");
        let target = self.target;
        let mut set = JoinSet::new();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.tasks.lock().unwrap() = Some(set);
    }

    /// Closes the port and drops every forwarded connection.
    pub fn cut(&self) {
        // Dropping the JoinSet aborts the accept loop, whose own JoinSet aborts every connection.
        self.tasks.lock().unwrap().take();
    }
}
