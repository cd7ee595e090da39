//! The TCP proxy that plays a broker outage: closed, forwarding, cut, forwarding again.

use std::time::Duration;

use testkit::TcpProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free port.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(text).await?;
    let mut buf = vec![0; text.len()];
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buf)).await??;
    Ok(buf)
}

#[tokio::test]
async fn the_proxy_forwards_only_while_open_and_a_cut_drops_open_connections() {
    let proxy = TcpProxy::closed(echo().await).await;
    let addr = ("127.0.0.1", proxy.port());
    assert!(TcpStream::connect(addr).await.is_err(), "closed at first");

    proxy.restore().await;
    let mut stream = TcpStream::connect(addr).await.expect("open");
    assert_eq!(
        round_trip(&mut stream, b"ping").await.expect("echo"),
        b"ping"
    );

    proxy.cut();
    assert!(
        round_trip(&mut stream, b"lost").await.is_err(),
        "a cut drops the forwarded connection"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "and refuses new ones"
    );

    proxy.restore().await;
    let mut stream = TcpStream::connect(addr).await.expect("open again");
    assert_eq!(
        round_trip(&mut stream, b"back").await.expect("echo"),
        b"back"
    );
}
