//! A connection that closes itself after a time without traffic, and the count of its requests
//! that tells traffic from a handler still at work.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The requests of one connection: how many started, and how many are being answered.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    started: AtomicUsize,
    in_flight: AtomicUsize,
    first: tokio::sync::Notify,
}

impl Requests {
    /// Marks a request as started; it counts as in flight until the guard is dropped (its
    /// answer is ready, or the request was abandoned).
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        if self.started.fetch_add(1, Ordering::AcqRel) == 0 {
            self.first.notify_one();
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Completes once the first request of the connection has started.
    pub(crate) async fn first_started(&self) {
        if self.started.load(Ordering::Acquire) == 0 {
            self.first.notified().await;
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// A request being answered; see [`Requests::start`].
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Requests>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wraps a stream so that a read or write waiting longer than `timeout` past the last byte
/// moved, either way, while no request is being answered, fails with `TimedOut`, and the server
/// drops the connection. A handler at work (a slow payment, a large commit) moves no byte, and
/// must not lose its answer for it.
///
/// The timer is re-armed only when it fires, from the time of the last byte, so a busy
/// connection pays one clock read per I/O call and no timer-wheel update.
#[derive(Debug)]
pub(crate) struct IdleTimeout<S> {
    stream: S,
    timeout: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    requests: Arc<Requests>,
}

impl<S> IdleTimeout<S> {
    pub(crate) fn new(stream: S, timeout: Duration, requests: Arc<Requests>) -> Self {
        let now = Instant::now();
        Self {
            stream,
            timeout,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
            requests,
        }
    }

    /// Ready with an error once the connection has been idle for the whole timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.requests.busy() {
                self.moved();
            }
            let deadline = self.last_activity + self.timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for longer than HTTP_IDLE_TIMEOUT_MS",
                ));
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    fn moved(&mut self) {
        self.last_activity = Instant::now();
    }

    /// Passes on the result of an I/O call, counting it as traffic when `traffic` says bytes
    /// went through; a call still pending waits on the idle timer too.
    fn after_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        traffic: impl FnOnce(&io::Result<T>) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                if traffic(&result) {
                    self.moved();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        let filled = buf.filled().len() > before;
        self.after_io(cx, read, |_| filled)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.after_io(cx, written, wrote_bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        self.after_io(cx, flushed, |_| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.after_io(cx, written, wrote_bytes)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Whether a write moved at least one byte.
fn wrote_bytes(result: &io::Result<usize>) -> bool {
    matches!(result, Ok(n) if *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn traffic_keeps_a_connection_and_silence_closes_it() {
        let (client, server) = tokio::io::duplex(64);
        let requests = Arc::new(Requests::default());
        let mut server = IdleTimeout::new(server, Duration::from_secs(10), requests.clone());
        let mut client = client;
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        }
        // A request being answered keeps a silent connection open.
        let in_flight = requests.start();
        let read = tokio::time::timeout(Duration::from_secs(25), server.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting, not closed: {read:?}");
        drop(in_flight);
        let started = Instant::now();
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() <= Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
