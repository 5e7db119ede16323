//! The HTTP server under the router: HTTP/1.1 connections with a header-read timeout, an idle
//! keep-alive timeout, a body-read timeout (applied where bodies are read, see
//! [`BodyReadTimeout`]) and a bound on concurrent connections, all from
//! [`HttpLimits`] (the department file's `[supervisor]` table).
//!
//! `axum::serve` has none of these: a client that declared a 10 MiB body and sent 10 bytes,
//! one that never finished its headers, and idle keep-alive connections all stayed open for
//! minutes, each holding a task and its buffers. This module owns connections only; what a
//! request means is the router's business.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::model::HttpLimits;

/// How long a shutdown waits for requests in flight before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The body-read timeout of the server, attached to every request it serves: body readers
/// ([`super::error::JsonBody`]) give up after it with a 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyReadTimeout(pub Duration);

impl BodyReadTimeout {
    /// The timeout attached to `request`, or the default one (requests built by hand in tests).
    pub fn of<B>(request: &axum::http::Request<B>) -> Duration {
        request
            .extensions()
            .get::<Self>()
            .map(|t| t.0)
            .unwrap_or(HttpLimits::default().body_read_timeout)
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes, then lets requests in
/// flight finish (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "Cannot accept an HTTP connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let app = app.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, closed).await;
            drop(permit);
        });
    }
    let _ = closing.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTP connections still open {}s after shutdown; stopping anyway.",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// Answers a connection over the bound with a 503 in the managed error shape, and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = serde_json::json!({"error": {"code": 503, "message": format!(
        "the supervisor serves at most {max} connections at once (supervisor.max_connections); \
         retry in a moment, or reuse a keep-alive connection"
    )}})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// What a connection is doing, as the watchdog sees it.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    clock: Mutex<Clock>,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Since when no request is in flight and nothing was read.
    idle_since: Instant,
    /// When the first byte of the next request arrived (headers being read).
    head_started: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            clock: Mutex::new(Clock {
                idle_since: Instant::now(),
                head_started: None,
            }),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().expect("connection clock lock")
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            self.clock().head_started.get_or_insert_with(Instant::now);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.clock().head_started = None;
    }

    fn request_ended(&self) {
        let mut clock = self.clock();
        clock.idle_since = Instant::now();
        clock.head_started = None;
        drop(clock);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection must be closed now, if it must.
    fn overdue(&self, limits: &HttpLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let clock = *self.clock();
        match clock.head_started {
            Some(at) if at.elapsed() >= limits.header_read_timeout => {
                Some("request headers not received within supervisor.header_read_timeout")
            }
            Some(_) => None,
            None if clock.idle_since.elapsed() >= limits.idle_timeout => {
                Some("idle for supervisor.idle_timeout")
            }
            None => None,
        }
    }
}

/// Ends a request in [`Activity`] however its future ends (answered, or dropped because the
/// connection closed).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its request in flight until it is sent (or dropped), so a body
/// still being written never counts as an idle connection.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that tells [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    mut closed: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let app = app.clone();
            activity.request_started();
            let in_flight = InFlight(Arc::clone(&activity));
            request
                .extensions_mut()
                .insert(BodyReadTimeout(limits.body_read_timeout));
            async move {
                let response = app.oneshot(request.map(Body::new)).await;
                response.map(|r| {
                    r.map(|inner| TrackedBody {
                        inner,
                        _in_flight: in_flight,
                    })
                })
            }
        })
    };
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let tick = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(tick);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error.");
                }
                return;
            }
            _ = watchdog.tick() => {
                if let Some(why) = activity.overdue(&limits) {
                    tracing::debug!(reason = why, "Closing an HTTP connection.");
                    // Dropping the connection closes the socket; no request is in flight.
                    return;
                }
            }
            changed = closed.changed(), if !shutting_down => {
                if changed.is_err() || *closed.borrow() {
                    shutting_down = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_closes_idle_and_slow_header_connections_but_never_mid_request() {
        let limits = HttpLimits {
            header_read_timeout: Duration::from_millis(30),
            body_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_millis(60),
            max_connections: 1,
        };
        let a = Activity::new();
        assert_eq!(a.overdue(&limits), None);
        std::thread::sleep(Duration::from_millis(70));
        assert_eq!(a.overdue(&limits), Some("idle for supervisor.idle_timeout"));
        a.request_started();
        std::thread::sleep(Duration::from_millis(70));
        assert_eq!(a.overdue(&limits), None, "a request is in flight");
        a.request_ended();
        assert_eq!(a.overdue(&limits), None);
        a.bytes_read();
        std::thread::sleep(Duration::from_millis(40));
        assert!(a.overdue(&limits).unwrap().contains("header_read_timeout"));
    }
}
