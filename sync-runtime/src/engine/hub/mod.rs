//! The per-instance streaming hub: **one** streaming client per engine instance and org, carrying
//! the channel of every streaming mapping the instance holds.
//!
//! Salesforce counts streaming *clients* against the org's allocation
//! (`DurableStreamingApiConcurrentClients`: 20 in a Developer Edition org, shared with every other
//! integration), so a client per mapping would use the allocation up after a few restarts. The
//! hub owns the one client; each mapping loop asks it for its channel ([`StreamHub::subscribe`],
//! from the mapping's own replay position) and reads [`ChannelEvents`]. Dropping the
//! `ChannelEvents` (a mapping given up, paused, falling back to polling) unsubscribes the channel
//! on the same client; when no channel is left the client disconnects, and
//! [`StreamHub::shutdown`] (clean stop) disconnects it, giving its place back at once.
//!
//! ## Transports
//!
//! The hub is independent of the wire protocol. A transport is a module with one function,
//! `drive(client, commands, status)`, that runs as a task and serves [`Command`]s:
//!
//! - `Subscribe`: start delivering `channel` from `from` into `events` (in order), then answer
//!   `ack` (`Ok`, or the [`StreamError`] that refused it; a refused channel is not kept). A
//!   channel subscribed again replaces the older subscription (its `token` is newer).
//! - `Unsubscribe`: stop the channel if its current subscription has this `token` (an older
//!   token is ignored).
//! - A failure of the whole client (allocation used up, the server closing it) is sent as
//!   `Err` to every channel's `events`, which are then dropped.
//! - A channel whose `events` is full is dropped (its sender closes): the mapping catches up
//!   from its stored position, so a busy mapping never holds up the others.
//! - No channel left: release the client. `Shutdown`: release it and answer `done`.
//! - Keep [`HubStatus`] current.
//!
//! [`cometd`] is the CometD (Streaming API) transport, [`pubsub`] the Pub/Sub API's (one gRPC
//! channel, one `Subscribe` stream per mapping channel). Events carry a [`ReplayId`] in the
//! transport's own form; a stored position of the other transport is refused as unavailable. What
//! a mapping does when its channel is refused (degraded polling, retry with backoff) is decided
//! by [`super::degraded`], whatever the transport.
//!
//! ## Falling back to CometD
//!
//! A hub asked for the Pub/Sub API streams over CometD for the rest of the run when the org does
//! not offer it: a subscription refused as [`StreamError::Unsupported`] (`UNIMPLEMENTED`, or no
//! stream could be opened at the endpoint) stops the Pub/Sub task and is made again over CometD.
//! The replay-position rules still hold: a position stored by the Pub/Sub API means nothing to
//! CometD, so a mapping resuming from one catches up by polling. [`StreamHub::transport`] is the
//! transport in use now, [`StreamHub::fallback`] says why it is not the one asked for.

pub mod cometd;
pub mod pubsub;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::salesforce::streaming::StreamError;
use crate::salesforce::Client;

/// A replay id, in the form of the transport that delivered the event: CometD's numbers, the
/// Pub/Sub API's opaque bytes. A position of one transport means nothing to the other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplayId {
    Cometd(i64),
    PubSub(Vec<u8>),
}

/// Where a channel's delivery starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Only events published from now on.
    New,
    /// The events after a stored replay id. One the transport cannot use (stored by the other
    /// transport) is refused as [`StreamError::ReplayIdUnavailable`]: the mapping catches up by
    /// polling.
    After(ReplayId),
}

/// One change event delivered on a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct HubEvent {
    pub channel: String,
    pub replay_id: ReplayId,
    /// The CDC payload (the changed fields and `ChangeEventHeader`, CometD's shape whatever the
    /// transport). A Pub/Sub event whose payload could not be read has no header but an
    /// `undecodable` member saying why: applying it records a read error.
    pub payload: Value,
}

/// One event, or the error that ended the channel.
pub type Delivery = Result<HubEvent, StreamError>;

/// The wire protocol of a hub: CometD long-polling (Streaming API, `/cometd/<version>`), or the
/// Pub/Sub API (gRPC, Avro) at the client's `Config::pubsub_url` (`forcesync.toml`'s
/// `streaming_transport`; one definition, the mapping language's).
pub use crate::adapter::StreamingTransport as Transport;

/// What a mapping asks of the transport task.
#[derive(Debug)]
pub enum Command {
    Subscribe {
        channel: String,
        from: Start,
        /// Identifies this subscription of the channel (newer subscriptions have larger ones).
        token: u64,
        events: mpsc::Sender<Delivery>,
        ack: oneshot::Sender<Result<(), StreamError>>,
    },
    Unsubscribe {
        channel: String,
        token: u64,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// What the hub's client is doing now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubStatus {
    /// Whether the client holds a place in the org's concurrent-client allocation.
    pub connected: bool,
    /// Channels delivered now.
    pub channels: Vec<String>,
    /// Handshakes (or equivalent session starts) made so far.
    pub sessions_started: u64,
    /// The last refusal of the whole client, if any.
    pub last_refusal: Option<String>,
}

struct Inner {
    client: Client,
    /// The transport in use: the one asked for, until a fallback to CometD.
    transport: Mutex<Transport>,
    /// Why the hub streams over CometD when it was asked for the Pub/Sub API.
    fallback: Mutex<Option<String>>,
    commands: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tokens: AtomicU64,
    closed: AtomicBool,
    status: watch::Sender<HubStatus>,
}

/// The instance's streaming client, shared by its mapping loops. Cheap to clone. The transport
/// task starts with the first subscription.
#[derive(Clone)]
pub struct StreamHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub")
            .field("transport", &self.transport())
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

impl StreamHub {
    /// A hub for `client`'s org (no call, no task yet).
    pub fn new(client: &Client, transport: Transport) -> StreamHub {
        StreamHub {
            inner: Arc::new(Inner {
                client: client.clone(),
                transport: Mutex::new(transport),
                fallback: Mutex::new(None),
                commands: Mutex::new(None),
                task: Mutex::new(None),
                tokens: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                status: watch::channel(HubStatus::default()).0,
            }),
        }
    }

    /// The wire protocol this hub streams over now.
    pub fn transport(&self) -> Transport {
        *self.inner.transport.lock().expect("hub")
    }

    /// Why the hub streams over CometD although it was asked for the Pub/Sub API (`None`: it
    /// streams over the transport asked for).
    pub fn fallback(&self) -> Option<String> {
        self.inner.fallback.lock().expect("hub").clone()
    }

    /// What the client is doing now.
    pub fn status(&self) -> HubStatus {
        self.inner.status.borrow().clone()
    }

    /// Changes of [`StreamHub::status`].
    pub fn watch(&self) -> watch::Receiver<HubStatus> {
        self.inner.status.subscribe()
    }

    /// Subscribes `channel` from `from` on the instance's client; up to `capacity` events wait
    /// for the mapping before the channel is dropped (and must be subscribed again).
    pub async fn subscribe(
        &self,
        channel: &str,
        from: Start,
        capacity: usize,
    ) -> Result<ChannelEvents, StreamError> {
        loop {
            let (commands, transport) = self.commands()?;
            let token = self.inner.tokens.fetch_add(1, Ordering::Relaxed) + 1;
            let (events_tx, events) = mpsc::channel(capacity.max(1));
            let (ack, acked) = oneshot::channel();
            commands
                .send(Command::Subscribe {
                    channel: channel.to_owned(),
                    from: from.clone(),
                    token,
                    events: events_tx,
                    ack,
                })
                .map_err(|_| closed())?;
            match acked.await.map_err(|_| closed())? {
                Ok(()) => {
                    return Ok(ChannelEvents {
                        channel: channel.to_owned(),
                        token,
                        events,
                        commands,
                    })
                }
                Err(StreamError::Unsupported { message }) if transport == Transport::PubSub => {
                    self.fall_back(&message);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Streams over CometD for the rest of the run: the Pub/Sub API is not offered. The Pub/Sub
    /// task stops (a channel it still carried ends, and its mapping subscribes again, now over
    /// CometD). Nothing happens when the hub does not stream over the Pub/Sub API.
    pub fn fall_back(&self, why: &str) {
        let mut commands = self.inner.commands.lock().expect("hub");
        let mut transport = self.inner.transport.lock().expect("hub");
        if *transport != Transport::PubSub {
            return;
        }
        *transport = Transport::Cometd;
        let reason =
            format!("the Pub/Sub API is not available ({why}); streaming over CometD for this run");
        tracing::warn!("{reason}");
        *self.inner.fallback.lock().expect("hub") = Some(reason);
        commands.take();
        if let Some(task) = self.inner.task.lock().expect("hub").take() {
            task.abort();
        }
    }

    /// Disconnects the client (clean stop), giving its place back; later subscriptions fail.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let commands = self.inner.commands.lock().expect("hub").take();
        let task = self.inner.task.lock().expect("hub").take();
        if let Some(commands) = commands {
            let (done, finished) = oneshot::channel();
            if commands.send(Command::Shutdown { done }).is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(15), finished).await;
            }
        }
        if let Some(task) = task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }

    /// The command channel of the running transport task (started when there is none), and
    /// its transport.
    fn commands(&self) -> Result<(mpsc::UnboundedSender<Command>, Transport), StreamError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let mut commands = self.inner.commands.lock().expect("hub");
        let transport = self.transport();
        if let Some(sender) = commands.as_ref().filter(|s| !s.is_closed()) {
            return Ok((sender.clone(), transport));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.inner.client.clone();
        let status = self.inner.status.clone();
        let task = match transport {
            Transport::Cometd => tokio::spawn(cometd::drive(client, rx, status)),
            Transport::PubSub => tokio::spawn(pubsub::drive(client, rx, status)),
        };
        *self.inner.task.lock().expect("hub") = Some(task);
        *commands = Some(tx.clone());
        Ok((tx, transport))
    }
}

fn closed() -> StreamError {
    StreamError::Closed {
        message: "the engine is stopping".to_owned(),
    }
}

/// One mapping's channel on the hub's client. Dropping it unsubscribes the channel.
#[derive(Debug)]
pub struct ChannelEvents {
    channel: String,
    token: u64,
    events: mpsc::Receiver<Delivery>,
    commands: mpsc::UnboundedSender<Command>,
}

impl ChannelEvents {
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next delivery; `None` when the hub dropped the channel (it fell behind, or the client
    /// stopped): subscribe again from the stored position.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.events.recv().await
    }

    /// A delivery already waiting, if any.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        self.events.try_recv().ok()
    }
}

impl Drop for ChannelEvents {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe {
            channel: std::mem::take(&mut self.channel),
            token: self.token,
        });
    }
}
