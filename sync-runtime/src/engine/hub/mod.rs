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
//! [`cometd`] is the CometD (Streaming API) transport. Another (the Pub/Sub API) plugs in as a
//! module beside it with its own `drive` and a [`Transport`] variant; nothing else changes. What
//! a mapping does when its channel is refused (degraded polling, retry with backoff) is decided
//! by [`super::degraded`], whatever the transport.

pub mod cometd;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use crate::salesforce::streaming::{ReplayFrom, StreamError, StreamEvent};
use crate::salesforce::Client;

/// One event, or the error that ended the channel.
pub type Delivery = Result<StreamEvent, StreamError>;

/// The wire protocol of a hub.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// CometD long-polling (Streaming API, `/cometd/<version>`).
    #[default]
    Cometd,
}

/// What a mapping asks of the transport task.
#[derive(Debug)]
pub enum Command {
    Subscribe {
        channel: String,
        from: ReplayFrom,
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
    transport: Transport,
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
            .field("transport", &self.inner.transport)
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
                transport,
                commands: Mutex::new(None),
                task: Mutex::new(None),
                tokens: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                status: watch::channel(HubStatus::default()).0,
            }),
        }
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
        from: ReplayFrom,
        capacity: usize,
    ) -> Result<ChannelEvents, StreamError> {
        let commands = self.commands()?;
        let token = self.inner.tokens.fetch_add(1, Ordering::Relaxed) + 1;
        let (events_tx, events) = mpsc::channel(capacity.max(1));
        let (ack, acked) = oneshot::channel();
        commands
            .send(Command::Subscribe {
                channel: channel.to_owned(),
                from,
                token,
                events: events_tx,
                ack,
            })
            .map_err(|_| closed())?;
        acked.await.map_err(|_| closed())??;
        Ok(ChannelEvents {
            channel: channel.to_owned(),
            token,
            events,
            commands,
        })
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

    /// The command channel of the running transport task, started when there is none.
    fn commands(&self) -> Result<mpsc::UnboundedSender<Command>, StreamError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let mut commands = self.inner.commands.lock().expect("hub");
        if let Some(sender) = commands.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.inner.client.clone();
        let status = self.inner.status.clone();
        let task = match self.inner.transport {
            Transport::Cometd => tokio::spawn(cometd::drive(client, rx, status)),
        };
        *self.inner.task.lock().expect("hub") = Some(task);
        *commands = Some(tx.clone());
        Ok(tx)
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
