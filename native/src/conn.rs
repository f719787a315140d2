//! Per-connection I/O tasks: outgoing connects (TCP or WebSocket client),
//! and the reader and writer of a live connection over TCP or WebSocket.
//!
//! Readers feed the kernel with large reads (64 KiB) or whole WebSocket
//! messages. Writers write each [`Transmit`](crate::kernel::Transmit)
//! buffer with one write (one WebSocket message), so the kernel's packet
//! coalescing carries through to the socket.

use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::driver::{Next, OutQueue, Shared};
use crate::kernel::{ConnId, Kernel, Transport};

/// Size of a TCP read.
const READ_BUF: usize = 64 * 1024;

/// How long a closed connection keeps draining input so that the peer gets
/// our last bytes and a FIN instead of a reset.
const LINGER: Duration = Duration::from_secs(2);

/// Socket options for every TCP connection: TCP_NODELAY as configured and
/// TCP keepalive (spec §5.6).
pub(crate) fn tune_socket(s: &TcpStream, nodelay: bool) {
    if let Err(e) = s.set_nodelay(nodelay) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    if let Err(e) = socket2::SockRef::from(s).set_keepalive(true) {
        tracing::debug!("SO_KEEPALIVE: {e}");
    }
}

/// Carries out `Action::Connect`: opens the connection, then reports
/// `handle_connected` (and starts its tasks) or `handle_closed`.
pub(crate) async fn connect<K: Kernel>(
    sh: Rc<Shared<K>>,
    conn: ConnId,
    addr: String,
    out: Rc<OutQueue>,
) {
    let timeout = sh.opts.handshake_timeout;
    let lower = addr.to_ascii_lowercase();
    if lower.starts_with("wss://") {
        sh.failed(conn, "wss:// is not supported by this build");
        return;
    }
    if lower.starts_with("ws://") {
        let r = tokio::time::timeout(timeout, ws_connect(&addr)).await;
        match r {
            Err(_) => sh.failed(conn, "connect timeout"),
            Ok(Err(e)) => sh.failed(conn, &e),
            Ok(Ok(ws)) => {
                if !sh.is_live(conn) {
                    return;
                }
                tune_socket(ws.get_ref(), sh.opts.nodelay);
                sh.connected(conn, Transport::WebSocket);
                start_ws(&sh, conn, ws, out);
            }
        }
        return;
    }
    match tokio::time::timeout(timeout, TcpStream::connect(addr.as_str())).await {
        Err(_) => sh.failed(conn, "connect timeout"),
        Ok(Err(e)) => sh.failed(conn, &e.to_string()),
        Ok(Ok(s)) => {
            if !sh.is_live(conn) {
                return;
            }
            tune_socket(&s, sh.opts.nodelay);
            sh.connected(conn, Transport::Tcp);
            start_tcp(&sh, conn, s, out);
        }
    }
}

/// Opens a WebSocket client connection to a `ws://` URL.
async fn ws_connect(url: &str) -> Result<WebSocketStream<TcpStream>, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let s = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (ws, _resp) = tokio_tungstenite::client_async(url, s)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Starts the reader and writer tasks of a TCP connection.
pub(crate) fn start_tcp<K: Kernel>(
    sh: &Rc<Shared<K>>,
    conn: ConnId,
    s: TcpStream,
    out: Rc<OutQueue>,
) {
    let (rd, wr) = s.into_split();
    let r = tokio::task::spawn_local(read_stream(sh.clone(), conn, rd));
    sh.set_reader(conn, r.abort_handle());
    tokio::task::spawn_local(write_stream(sh.clone(), conn, wr, out));
}

async fn read_stream<K: Kernel, R: AsyncRead + Unpin>(sh: Rc<Shared<K>>, conn: ConnId, mut rd: R) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => return sh.failed(conn, "eof"),
            Ok(n) => {
                if !sh.data(conn, &buf[..n]) {
                    break;
                }
            }
            Err(e) => return sh.failed(conn, &e.to_string()),
        }
    }
    // Closed by the kernel: drain and discard for a while.
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn write_stream<K: Kernel, W: AsyncWrite + Unpin>(
    sh: Rc<Shared<K>>,
    conn: ConnId,
    mut wr: W,
    out: Rc<OutQueue>,
) {
    loop {
        match out.next().await {
            Next::Write(buf, _) => {
                if let Err(e) = wr.write_all(&buf).await {
                    return sh.failed(conn, &e.to_string());
                }
                out.written(buf.len());
            }
            Next::Close => {
                let _ = wr.shutdown().await;
                return;
            }
            Next::Stop => return,
        }
    }
}

/// Starts the reader and writer tasks of a WebSocket connection.
pub(crate) fn start_ws<K: Kernel, S>(
    sh: &Rc<Shared<K>>,
    conn: ConnId,
    ws: WebSocketStream<S>,
    out: Rc<OutQueue>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (sink, stream) = ws.split();
    let r = tokio::task::spawn_local(read_ws(sh.clone(), conn, stream));
    sh.set_reader(conn, r.abort_handle());
    tokio::task::spawn_local(write_ws(sh.clone(), conn, sink, out));
}

async fn read_ws<K: Kernel, St>(sh: Rc<Shared<K>>, conn: ConnId, mut stream: St)
where
    St: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let live = match stream.next().await {
            None => return sh.failed(conn, "eof"),
            Some(Err(e)) => return sh.failed(conn, &e.to_string()),
            Some(Ok(Message::Text(t))) => sh.data(conn, t.as_bytes()),
            Some(Ok(Message::Binary(b))) => sh.data(conn, &b),
            Some(Ok(Message::Close(_))) => return sh.failed(conn, "eof"),
            Some(Ok(_)) => sh.is_live(conn), // ping/pong/raw frames
        };
        if !live {
            break;
        }
    }
    let _ = tokio::time::timeout(LINGER, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

async fn write_ws<K: Kernel, Si>(sh: Rc<Shared<K>>, conn: ConnId, mut sink: Si, out: Rc<OutQueue>)
where
    Si: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    loop {
        match out.next().await {
            Next::Write(buf, text) => {
                let n = buf.len();
                let msg = if text {
                    match String::from_utf8(buf) {
                        Ok(s) => Message::text(s),
                        Err(e) => Message::binary(e.into_bytes()),
                    }
                } else {
                    Message::binary(buf)
                };
                if let Err(e) = sink.send(msg).await {
                    return sh.failed(conn, &e.to_string());
                }
                out.written(n);
            }
            Next::Close => {
                let _ = sink.close().await;
                return;
            }
            Next::Stop => return,
        }
    }
}
