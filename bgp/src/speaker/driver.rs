//! The tokio driver: [`Speaker`].
//!
//! One task owns the [`SpeakerCore`]. Per connection, a reader task sends what it reads to
//! the core over a bounded channel (a slow core slows the peer down through TCP), and a
//! writer task writes what the core sends. A write that has not completed after
//! [`SEND_BLOCKED_AFTER`] is reported to the core as send-blocked (RFC 9687 send hold
//! timer) and progress afterwards as such. Outbound connects run in their own tasks.
//! Timers: one `sleep_until(core.poll_timeout())`.
//!
//! Memory: the reader channel is bounded; each connection's write queue is bounded in bytes
//! ([`SpeakerOptions::max_write_queue`]): a peer that stops reading while it makes us send
//! (ROUTE-REFRESH requests, churn from other peers) loses its connection as soon as the
//! bound is passed, instead of growing the queue until the send hold timer fires.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{NeighborConfig, SpeakerConfig};
use crate::speaker::core::{ConnKey, CoreOptions, Output, SpeakerCore};
use crate::speaker::subscription::{subscription, BestPathSender, BestPathSubscription};
use crate::speaker::{SpeakerError, SpeakerStatus};
use crate::transport::{self, Listener, PeerSecurity};
use crate::wire::PathAttributes;

/// A write pending this long is reported as send-blocked.
pub const SEND_BLOCKED_AFTER: Duration = Duration::from_secs(5);
/// Capacity of the channel from connection readers to the core.
const EVENT_QUEUE: usize = 1024;
/// Capacity of the command channel.
const COMMAND_QUEUE: usize = 64;
/// How long a closed connection's reader keeps draining the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(3);
/// Longest wait for NOTIFICATIONs to be flushed at shutdown.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Default of [`SpeakerOptions::max_write_queue`]: 64 MiB.
pub const MAX_WRITE_QUEUE: usize = 64 * 1024 * 1024;

/// Driver options.
#[derive(Clone, Debug)]
pub struct SpeakerOptions {
    pub core: CoreOptions,
    /// Most bytes queued for one connection and not yet written to its socket. Past it
    /// the connection is dropped as if TCP had failed (the peer is not reading). Default:
    /// [`MAX_WRITE_QUEUE`].
    pub max_write_queue: usize,
}

impl Default for SpeakerOptions {
    fn default() -> Self {
        SpeakerOptions {
            core: CoreOptions::default(),
            max_write_queue: MAX_WRITE_QUEUE,
        }
    }
}

enum Command {
    AddPeer(NeighborConfig, oneshot::Sender<Result<(), SpeakerError>>),
    RemovePeer(IpAddr, oneshot::Sender<Result<(), SpeakerError>>),
    UpdatePeer(NeighborConfig, oneshot::Sender<Result<(), SpeakerError>>),
    StopPeer(IpAddr, String, oneshot::Sender<Result<(), SpeakerError>>),
    StartPeer(IpAddr, oneshot::Sender<Result<(), SpeakerError>>),
    Originate(IpNet, Box<PathAttributes>, oneshot::Sender<()>),
    Withdraw(IpNet, oneshot::Sender<()>),
    Subscribe(oneshot::Sender<BestPathSubscription>),
    Status(oneshot::Sender<SpeakerStatus>),
    Refresh(IpAddr, oneshot::Sender<Result<(), SpeakerError>>),
    Shutdown(String, oneshot::Sender<()>),
}

enum IoEvent {
    Connected { conn: ConnKey, stream: TcpStream },
    ConnectFailed { conn: ConnKey, error: String },
    Data { conn: ConnKey, data: Bytes },
    Closed { conn: ConnKey },
    Blocked { conn: ConnKey, since: Instant },
    Progress { conn: ConnKey },
}

enum WriteCmd {
    Data(Bytes),
    Close,
}

struct ConnIo {
    writer: Option<mpsc::UnboundedSender<WriteCmd>>,
    /// Bytes handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    reader: Option<JoinHandle<()>>,
    connect: Option<JoinHandle<()>>,
    writer_task: Option<JoinHandle<()>>,
}

/// Handle to a running speaker. Cheap to clone; every method talks to the core task.
#[derive(Clone, Debug)]
pub struct Speaker {
    tx: mpsc::Sender<Command>,
    listen_addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Speaker {
    /// Start a speaker: bind the listener (if configured), create the core, start every
    /// static peer. Must be called inside a tokio runtime. The join handle finishes after
    /// [`Speaker::shutdown`].
    pub fn start(
        config: SpeakerConfig,
        options: SpeakerOptions,
    ) -> Result<(Speaker, JoinHandle<()>), SpeakerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpeakerError::NoRuntime)?;
        let now = Instant::now();
        let listener = match &config.listen {
            Some(l) => {
                let listener = Listener::bind(&l.socket_addrs())?;
                listener.sync_peers(config.listener_peers())?;
                Some(listener)
            }
            None => None,
        };
        let listen_addrs = listener
            .as_ref()
            .map(Listener::local_addrs)
            .unwrap_or_default();
        let mut core_options = options.core;
        if core_options.interface_lookup.is_none() {
            core_options.interface_lookup =
                Some(std::sync::Arc::new(transport::interface_addresses));
        }
        let mut core = SpeakerCore::new(config, core_options, now)?;
        core.start(now);
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (io_tx, io_rx) = mpsc::channel(EVENT_QUEUE);
        let driver = Driver {
            core,
            max_write_queue: options.max_write_queue.max(1),
            listener,
            io_tx,
            conns: HashMap::new(),
            subscribers: Vec::new(),
        };
        let handle = runtime.spawn(driver.run(rx, io_rx));
        Ok((Speaker { tx, listen_addrs }, handle))
    }

    /// The listener's bound addresses (useful with port 0).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Add a neighbour while running.
    pub async fn add_peer(&self, n: NeighborConfig) -> Result<(), SpeakerError> {
        self.call(|t| Command::AddPeer(n, t)).await?
    }

    /// Remove a neighbour (Cease / Peer De-configured).
    pub async fn remove_peer(&self, addr: IpAddr) -> Result<(), SpeakerError> {
        self.call(|t| Command::RemovePeer(addr, t)).await?
    }

    /// Change a neighbour's options (see [`SpeakerCore::update_peer`]).
    pub async fn update_peer(&self, n: NeighborConfig) -> Result<(), SpeakerError> {
        self.call(|t| Command::UpdatePeer(n, t)).await?
    }

    /// Administratively stop one peer with an RFC 9003 message.
    pub async fn stop_peer(&self, addr: IpAddr, message: &str) -> Result<(), SpeakerError> {
        let m = message.to_owned();
        self.call(|t| Command::StopPeer(addr, m, t)).await?
    }

    /// Start a stopped peer.
    pub async fn start_peer(&self, addr: IpAddr) -> Result<(), SpeakerError> {
        self.call(|t| Command::StartPeer(addr, t)).await?
    }

    /// Originate a prefix.
    pub async fn originate(
        &self,
        prefix: IpNet,
        attrs: PathAttributes,
    ) -> Result<(), SpeakerError> {
        self.call(|t| Command::Originate(prefix, Box::new(attrs), t))
            .await
    }

    /// Withdraw an originated prefix.
    pub async fn withdraw(&self, prefix: IpNet) -> Result<(), SpeakerError> {
        self.call(|t| Command::Withdraw(prefix, t)).await
    }

    /// Best-path changes: first the current table (one change per prefix), then every
    /// change as it happens. A subscriber that falls behind gets the latest change of each
    /// prefix (memory stays bounded by the table size however fast routes flap); the
    /// final state of every prefix is always delivered.
    pub async fn subscribe_best_paths(&self) -> Result<BestPathSubscription, SpeakerError> {
        self.call(Command::Subscribe).await
    }

    /// A status snapshot.
    pub async fn status(&self) -> Result<SpeakerStatus, SpeakerError> {
        self.call(Command::Status).await
    }

    /// Send ROUTE-REFRESH to an established peer (an error when it has no route refresh).
    pub async fn refresh(&self, addr: IpAddr) -> Result<(), SpeakerError> {
        self.call(|t| Command::Refresh(addr, t)).await?
    }

    /// Cease / Administrative Shutdown with `message` to every peer, flush, stop. Returns
    /// when the NOTIFICATIONs have been written (or after a few seconds).
    pub async fn shutdown(&self, message: &str) -> Result<(), SpeakerError> {
        let m = message.to_owned();
        self.call(|t| Command::Shutdown(m, t)).await
    }
}

struct Driver {
    core: SpeakerCore,
    max_write_queue: usize,
    listener: Option<Listener>,
    io_tx: mpsc::Sender<IoEvent>,
    conns: HashMap<ConnKey, ConnIo>,
    subscribers: Vec<BestPathSender>,
}

async fn accept_on(listener: &Option<Listener>) -> Option<transport::Accepted> {
    match listener {
        Some(l) => match l.accept().await {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            }
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut io_rx: mpsc::Receiver<IoEvent>,
    ) {
        let mut shutdown_reply: Vec<oneshot::Sender<()>> = Vec::new();
        let mut commands_open = true;
        loop {
            self.pump();
            if self.core.is_stopped() {
                break;
            }
            let deadline = self.core.poll_timeout();
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(Command::Shutdown(message, reply)) => {
                        tracing::info!(%message, "shutting down");
                        self.core.shutdown(&message, Instant::now());
                        shutdown_reply.push(reply);
                    }
                    Some(cmd) => self.command(cmd),
                    None => commands_open = false,
                },
                ev = io_rx.recv() => {
                    if let Some(ev) = ev {
                        self.io_event(ev);
                    }
                }
                acc = accept_on(&self.listener) => {
                    if let Some(acc) = acc {
                        self.accepted(acc);
                    }
                }
                () = sleep_until_opt(deadline) => {
                    self.core.handle_timeout(Instant::now());
                }
            }
        }
        self.pump();
        // Let the writers flush the NOTIFICATIONs.
        let writers: Vec<JoinHandle<()>> = self
            .conns
            .drain()
            .filter_map(|(_, mut c)| {
                c.writer.take();
                if let Some(r) = c.reader.take() {
                    r.abort();
                }
                if let Some(t) = c.connect.take() {
                    t.abort();
                }
                c.writer_task.take()
            })
            .collect();
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, futures_join_all(writers)).await;
        for r in shutdown_reply {
            let _ = r.send(());
        }
        tracing::info!("speaker stopped");
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::AddPeer(n, reply) => {
                let sec = (IpNet::from(n.address), n.options.security());
                let r = self.core.add_peer(n, now);
                if r.is_ok() {
                    self.listener_set(sec.0, sec.1);
                }
                let _ = reply.send(r);
            }
            Command::RemovePeer(a, reply) => {
                let r = self.core.remove_peer(a, now);
                if r.is_ok() {
                    if let Some(l) = &self.listener {
                        let _ = l.remove_peer(IpNet::from(a));
                    }
                }
                let _ = reply.send(r);
            }
            Command::UpdatePeer(n, reply) => {
                let sec = (IpNet::from(n.address), n.options.security());
                let r = self.core.update_peer(n, now);
                if r.is_ok() {
                    self.listener_set(sec.0, sec.1);
                }
                let _ = reply.send(r);
            }
            Command::StopPeer(a, m, reply) => {
                let _ = reply.send(self.core.stop_peer(a, &m, now));
            }
            Command::StartPeer(a, reply) => {
                let _ = reply.send(self.core.start_peer(a, now));
            }
            Command::Originate(p, attrs, reply) => {
                self.core.originate(p, *attrs);
                let _ = reply.send(());
            }
            Command::Withdraw(p, reply) => {
                self.core.withdraw(p);
                let _ = reply.send(());
            }
            Command::Subscribe(reply) => {
                // Deliver pending changes to existing subscribers first so the snapshot and
                // the stream line up.
                self.pump();
                let (tx, rx) = subscription();
                for c in self.core.best_paths() {
                    tx.send(c);
                }
                self.subscribers.push(tx);
                let _ = reply.send(rx);
            }
            Command::Status(reply) => {
                let mut s = self.core.status(now);
                let unix = unix_now();
                s.unix_time = Some(unix);
                for p in &mut s.peers {
                    p.since_unix = Some(unix - p.state_secs);
                }
                let _ = reply.send(s);
            }
            Command::Refresh(a, reply) => {
                let _ = reply.send(self.core.refresh(a, now));
            }
            Command::Shutdown(..) => {}
        }
    }

    fn listener_set(&self, net: IpNet, sec: PeerSecurity) {
        if let Some(l) = &self.listener {
            if let Err(e) = l.set_peer(net, sec) {
                tracing::warn!(peer = %net, error = %e, "cannot install peer in listener");
            }
        }
    }

    fn accepted(&mut self, acc: transport::Accepted) {
        let now = Instant::now();
        match self.core.accept(acc.peer, acc.local, now) {
            Some(conn) => {
                tracing::debug!(peer = %acc.peer, %conn, "accepted");
                self.spawn_io(conn, acc.stream);
            }
            None => {
                tracing::info!(peer = %acc.peer, "refused connection");
                drop(acc.stream);
            }
        }
    }

    fn io_event(&mut self, ev: IoEvent) {
        let now = Instant::now();
        match ev {
            IoEvent::Connected { conn, stream } => {
                let local = stream.local_addr();
                match (self.conns.contains_key(&conn), local) {
                    (true, Ok(local)) => {
                        self.spawn_io(conn, stream);
                        self.core.connected(conn, local, now);
                    }
                    _ => {
                        // The core gave up on this attempt meanwhile.
                        self.conns.remove(&conn);
                        self.core.connect_failed(conn, now);
                    }
                }
            }
            IoEvent::ConnectFailed { conn, error } => {
                tracing::debug!(%conn, %error, "connect failed");
                self.conns.remove(&conn);
                self.core.connect_failed(conn, now);
            }
            IoEvent::Data { conn, data } => self.core.received(conn, &data, now),
            IoEvent::Closed { conn } => {
                self.conns.remove(&conn);
                self.core.closed(conn, now);
            }
            IoEvent::Blocked { conn, since } => self.core.send_blocked(conn, since, now),
            IoEvent::Progress { conn } => self.core.send_progress(conn, now),
        }
    }

    fn spawn_io(&mut self, conn: ConnKey, stream: TcpStream) {
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let reader = tokio::spawn(read_loop(conn, rd, self.io_tx.clone()));
        let writer_task = tokio::spawn(write_loop(
            conn,
            wr,
            wrx,
            self.io_tx.clone(),
            Arc::clone(&queued),
        ));
        let entry = self.conns.entry(conn).or_insert(ConnIo {
            writer: None,
            queued: Arc::clone(&queued),
            reader: None,
            connect: None,
            writer_task: None,
        });
        entry.writer = Some(wtx);
        entry.queued = queued;
        entry.reader = Some(reader);
        entry.writer_task = Some(writer_task);
        entry.connect = None;
    }

    /// Carry out the core's outputs.
    fn pump(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Connect {
                    conn,
                    peer,
                    options,
                } => {
                    let io_tx = self.io_tx.clone();
                    let task = tokio::spawn(async move {
                        let ev = match transport::connect(&options).await {
                            Ok(stream) => IoEvent::Connected { conn, stream },
                            Err(e) => IoEvent::ConnectFailed {
                                conn,
                                error: e.to_string(),
                            },
                        };
                        let _ = io_tx.send(ev).await;
                    });
                    tracing::debug!(%peer, %conn, "connecting");
                    self.conns.insert(
                        conn,
                        ConnIo {
                            writer: None,
                            queued: Arc::new(AtomicUsize::new(0)),
                            reader: None,
                            connect: Some(task),
                            writer_task: None,
                        },
                    );
                }
                Output::Send { conn, data } => {
                    let mut over = None;
                    if let Some(c) = self.conns.get(&conn) {
                        if let Some(w) = c.writer.as_ref() {
                            let len = data.len();
                            let queued = c
                                .queued
                                .fetch_add(len, Ordering::Relaxed)
                                .saturating_add(len);
                            if queued > self.max_write_queue {
                                over = Some(queued);
                            } else {
                                let _ = w.send(WriteCmd::Data(data));
                            }
                        }
                    }
                    if let Some(queued) = over {
                        self.drop_unread(conn, queued);
                    }
                }
                Output::Close { conn } => {
                    if let Some(mut c) = self.conns.remove(&conn) {
                        if let Some(w) = c.writer.take() {
                            let _ = w.send(WriteCmd::Close);
                        }
                        // Keep reading (and discarding) for a while: closing a socket with
                        // unread data sends a RST, which can destroy the NOTIFICATION we
                        // just sent before the peer reads it.
                        if let Some(r) = c.reader.take() {
                            tokio::spawn(async move {
                                tokio::time::sleep(CLOSE_LINGER).await;
                                r.abort();
                            });
                        }
                        if let Some(t) = c.connect.take() {
                            t.abort();
                        }
                    }
                }
                Output::BestPath(change) => {
                    self.subscribers.retain(|s| s.send(change.clone()));
                }
                Output::PeerState { .. } | Output::SelectionDeferralDone => {}
            }
        }
    }
}

impl Driver {
    /// The peer on `conn` does not read what we send: drop the connection now (its queue
    /// with it) and tell the core as for a TCP failure.
    fn drop_unread(&mut self, conn: ConnKey, queued: usize) {
        tracing::warn!(
            %conn,
            queued,
            limit = self.max_write_queue,
            "the peer does not read: its write queue passed the limit, dropping the connection"
        );
        if let Some(mut c) = self.conns.remove(&conn) {
            c.writer.take();
            for t in [c.writer_task.take(), c.reader.take(), c.connect.take()]
                .into_iter()
                .flatten()
            {
                t.abort();
            }
        }
        self.core.closed(conn, Instant::now());
    }
}

async fn futures_join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

async fn read_loop(conn: ConnKey, mut rd: OwnedReadHalf, tx: mpsc::Sender<IoEvent>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        buf.reserve(16 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(IoEvent::Closed { conn }).await;
                return;
            }
            Ok(_) => {
                let data = buf.split().freeze();
                if tx.send(IoEvent::Data { conn, data }).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    conn: ConnKey,
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    tx: mpsc::Sender<IoEvent>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            WriteCmd::Data(data) => {
                let since = Instant::now();
                let mut blocked = false;
                let write = wr.write_all(&data);
                tokio::pin!(write);
                let result = loop {
                    match tokio::time::timeout(SEND_BLOCKED_AFTER, &mut write).await {
                        Ok(r) => break r,
                        Err(_) => {
                            if !blocked {
                                blocked = true;
                                let _ = tx.send(IoEvent::Blocked { conn, since }).await;
                            }
                        }
                    }
                };
                queued.fetch_sub(data.len(), Ordering::Relaxed);
                if blocked {
                    let _ = tx.send(IoEvent::Progress { conn }).await;
                }
                if result.is_err() {
                    let _ = tx.send(IoEvent::Closed { conn }).await;
                    return;
                }
            }
            WriteCmd::Close => break,
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that stops reading: the writer reports send-blocked (with the time the write
    /// started) after SEND_BLOCKED_AFTER, and progress once the peer reads again.
    #[tokio::test(start_paused = true)]
    async fn writer_reports_blocked_and_progress() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let (wtx, wrx) = mpsc::unbounded_channel();
        let (etx, mut erx) = mpsc::channel(8);
        let conn = ConnKey(7);
        let queued = Arc::new(AtomicUsize::new(1024));
        let task = tokio::spawn(write_loop(conn, ours, wrx, etx, Arc::clone(&queued)));
        let start = Instant::now();
        wtx.send(WriteCmd::Data(Bytes::from(vec![1u8; 1024])))
            .unwrap();
        let ev = erx.recv().await.unwrap();
        let IoEvent::Blocked { conn: c, since } = ev else {
            panic!("expected Blocked");
        };
        assert_eq!(c, conn);
        assert!(since.duration_since(start) < Duration::from_secs(1));
        // The peer reads everything: progress.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut got = 0;
            while got < 1024 {
                got += theirs.read(&mut buf).await.unwrap();
            }
            theirs
        });
        let ev = erx.recv().await.unwrap();
        assert!(matches!(ev, IoEvent::Progress { conn: c } if c == conn));
        let _theirs = reader.await.unwrap();
        assert_eq!(
            queued.load(Ordering::Relaxed),
            0,
            "written bytes leave the count"
        );
        wtx.send(WriteCmd::Close).unwrap();
        task.await.unwrap();
    }
}
