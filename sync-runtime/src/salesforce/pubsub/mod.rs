//! A client for Salesforce's Pub/Sub API (gRPC over HTTP/2, `eventbus.v1.PubSub`), used for
//! Change Data Capture topics such as `/data/AccountChangeEvent`.
//!
//! [`Client::pubsub_subscribe`] opens a subscription from a [`PubSubStart`]; then
//! [`PubSubSubscription::next`] hands out one [`PubSubEvent`] at a time: its opaque replay id
//! (bytes, to store with the change it ends) and its payload decoded from Avro into the CDC
//! payload the engine already applies (`avro`), with the schema fetched by `schema_id` and
//! cached by id, never by topic. A payload that cannot be read is that event's error, never the
//! subscription's. Flow control keeps at most one batch between the server and the engine
//! (`flow`). The subscription reconnects by itself — with backoff after `UNAVAILABLE` and other
//! retryable failures, when the server ends the stream, and when the stream stays silent (no event
//! and no keepalive) past the watchdog interval — resuming after the last event handed out (or
//! the last keepalive's position), so nothing is lost or handed out twice; it logs in again when
//! the session is refused. Two failures end it so the engine can fall back to polling: a replay id
//! that is corrupt or past retention ([`PubSubError::ReplayIdUnavailable`]) and a refusal
//! ([`PubSubError::Refused`]). A third says the org does not offer the API here
//! ([`PubSubError::Unreachable`]: `UNIMPLEMENTED`, or no stream could be opened in the first
//! [`PubSubPolicy::first_attempts`] attempts before the endpoint first answered), so the engine
//! can stream over CometD instead.
//!
//! Auth is the `accesstoken`, `instanceurl` and `tenantid` metadata; the org id is read from the
//! access token (`<15-character org id>!…`), as other Pub/Sub clients do.

pub mod avro;
pub mod bitmap;
pub mod datum;
pub mod flow;
mod proto;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status, Streaming};

use super::error::{ErrorClass, SfError, SfErrorKind};
use super::http::RetryPolicy;
use super::{CallKind, Client};
use avro::EventSchema;
use datum::PayloadError;
use flow::Failure;
use proto::pub_sub_client::PubSubClient;
use proto::{ConsumerEvent, FetchRequest, FetchResponse, ReplayPreset, SchemaRequest};

/// Salesforce's Pub/Sub API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.pubsub.salesforce.com:7443";

/// Where a subscription starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PubSubStart {
    /// Only events published from now on.
    Latest,
    /// Every event still retained (up to 72 hours for CDC).
    Earliest,
    /// The events after this stored replay id.
    After(Vec<u8>),
}

/// One event handed to the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct PubSubEvent {
    pub topic: String,
    /// Opaque; store it with the change it ends and resume after it.
    pub replay_id: Vec<u8>,
    pub schema_id: String,
    /// The CDC payload (CometD's shape), or why it cannot be read.
    pub payload: Result<Value, PayloadError>,
}

/// Why a subscription stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum PubSubError {
    /// The replay id is corrupt or older than what the org retains: catch up by polling, then
    /// subscribe again.
    ReplayIdUnavailable { message: String },
    /// The org refuses to stream to us (allocation used up, unknown topic, no access).
    Refused { message: String },
    /// The Pub/Sub API is not offered at the endpoint (`UNIMPLEMENTED`), or the first attempts
    /// to open a stream all failed (nothing listening, not gRPC): stream over CometD instead.
    Unreachable { message: String },
    /// Calls kept failing (network, unavailable, login) beyond the reconnect policy.
    Api(SfError),
}

impl fmt::Display for PubSubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PubSubError::ReplayIdUnavailable { message } => {
                write!(f, "the replay id is no longer available: {message}")
            }
            PubSubError::Refused { message } => write!(f, "Pub/Sub API refused: {message}"),
            PubSubError::Unreachable { message } => {
                write!(f, "the Pub/Sub API is not available: {message}")
            }
            PubSubError::Api(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PubSubError {}

/// How a subscription paces itself.
#[derive(Clone, Debug, PartialEq)]
pub struct PubSubPolicy {
    /// The Pub/Sub API endpoint (`https://api.pubsub.salesforce.com:7443`; `http://…` for a
    /// local org).
    pub endpoint: String,
    /// Most events held between the server and the engine (1..=100).
    pub batch: i32,
    /// Reconnect delays and how many consecutive failures are tolerated.
    pub reconnect: RetryPolicy,
    /// The watchdog: a stream with no event and no keepalive for this long is reconnected
    /// (Salesforce sends a keepalive within 270 s).
    pub silence: Duration,
    /// Attempts before the endpoint's first answer after which the API counts as unreachable
    /// ([`PubSubError::Unreachable`]); once it answered, failures follow `reconnect`.
    pub first_attempts: usize,
}

impl Default for PubSubPolicy {
    fn default() -> Self {
        PubSubPolicy {
            endpoint: DEFAULT_ENDPOINT.into(),
            batch: flow::MAX_OWED,
            reconnect: RetryPolicy::doubling(
                30,
                Duration::from_millis(500),
                Duration::from_secs(30),
            ),
            silence: Duration::from_secs(300),
            first_attempts: 3,
        }
    }
}

/// Adds the session's metadata to every call.
#[derive(Clone)]
struct Auth {
    token: MetadataValue<tonic::metadata::Ascii>,
    instance: MetadataValue<tonic::metadata::Ascii>,
    tenant: MetadataValue<tonic::metadata::Ascii>,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let md = request.metadata_mut();
        md.insert("accesstoken", self.token.clone());
        md.insert("instanceurl", self.instance.clone());
        md.insert("tenantid", self.tenant.clone());
        Ok(request)
    }
}

type Grpc = PubSubClient<InterceptedService<Channel, Auth>>;

/// One open `Subscribe` call.
struct Stream {
    requests: mpsc::Sender<FetchRequest>,
    responses: Streaming<FetchResponse>,
    /// What the server still owes.
    owed: i32,
}

/// A subscription to one topic. See the module header.
pub struct PubSubSubscription {
    client: Client,
    policy: PubSubPolicy,
    topic: String,
    start: PubSubStart,
    /// Where a reconnect resumes after: the last event handed out, or the last keepalive's
    /// position when nothing was waiting.
    position: Option<Vec<u8>>,
    grpc: Option<Grpc>,
    stream: Option<Stream>,
    buffered: VecDeque<ConsumerEvent>,
    schemas: Arc<Mutex<HashMap<String, Arc<EventSchema>>>>,
    failures: usize,
    /// The session generation a refusal was last seen with (log in again once per session).
    refused_session: Option<u64>,
    /// Whether the endpoint ever answered a `FetchResponse` (before that, failures are probes of
    /// whether it serves the Pub/Sub API at all: a plain HTTP server accepts the stream and
    /// fails only its first read).
    opened: bool,
}

impl fmt::Debug for PubSubSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSubSubscription")
            .field("topic", &self.topic)
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

fn transport_error(message: String) -> SfError {
    SfError::new(
        SfErrorKind::Transport,
        ErrorClass::Indefinite,
        "TRANSPORT",
        message,
    )
}

/// The org id (15 characters) an access token starts with.
pub fn tenant_of(token: &str) -> Option<&str> {
    let (org, _) = token.split_once('!')?;
    (org.len() == 15 || org.len() == 18).then_some(org)
}

fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

impl Client {
    /// Opens a Pub/Sub subscription to `topic` (`/data/AccountChangeEvent`, `/data/ChangeEvents`).
    /// Fails at once when the topic is refused or the replay id is unavailable.
    pub async fn pubsub_subscribe(
        &self,
        topic: &str,
        start: PubSubStart,
        policy: PubSubPolicy,
    ) -> Result<PubSubSubscription, PubSubError> {
        let mut sub = PubSubSubscription {
            client: self.clone(),
            policy,
            topic: topic.to_string(),
            start,
            position: None,
            grpc: None,
            stream: None,
            buffered: VecDeque::new(),
            schemas: Arc::new(Mutex::new(HashMap::new())),
            failures: 0,
            refused_session: None,
            opened: false,
        };
        sub.ensure_stream().await?;
        Ok(sub)
    }
}

impl PubSubSubscription {
    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next event, waiting as long as it takes; reconnects as described in the module header.
    pub async fn next(&mut self) -> Result<PubSubEvent, PubSubError> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                self.position = Some(event.replay_id.clone());
                return self.hand_out(event).await;
            }
            self.ensure_stream().await?;
            self.request_more().await;
            let silence = self.policy.silence;
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match tokio::time::timeout(silence, stream.responses.message()).await {
                Ok(Ok(Some(response))) => {
                    self.failures = 0;
                    self.opened = true;
                    stream.owed = response.pending_num_requested;
                    if response.events.is_empty() {
                        // A keepalive: everything up to its position was delivered or skipped.
                        if !response.latest_replay_id.is_empty() {
                            self.position = Some(response.latest_replay_id);
                        }
                    }
                    self.buffered.extend(response.events);
                }
                Ok(Ok(None)) => {
                    tracing::debug!(topic = %self.topic, "the Pub/Sub stream ended; reconnecting");
                    self.stream = None;
                }
                Ok(Err(status)) => {
                    self.stream = None;
                    self.failed(status).await?;
                }
                Err(_) => {
                    tracing::warn!(topic = %self.topic, ?silence, "the Pub/Sub stream is silent; reconnecting");
                    self.stream = None;
                }
            }
        }
    }

    /// Handles a failed call: an error that ends the subscription, or after a backoff `Ok` to
    /// try again.
    async fn failed(&mut self, status: Status) -> Result<(), PubSubError> {
        let code = error_code(&status);
        let message = format!("{}: {} ({code})", status.code(), status.message());
        match flow::classify(status.code(), &code) {
            Failure::ReplayId => Err(PubSubError::ReplayIdUnavailable { message }),
            Failure::Refused => Err(PubSubError::Refused { message }),
            Failure::NotOffered => Err(PubSubError::Unreachable {
                message: format!("{} answered {message}", self.policy.endpoint),
            }),
            Failure::Retry if !self.opened && self.failures + 1 >= self.policy.first_attempts => {
                Err(PubSubError::Unreachable {
                    message: format!(
                        "no stream could be opened at {} in {} attempts: {message}",
                        self.policy.endpoint,
                        self.failures + 1
                    ),
                })
            }
            Failure::Auth => {
                let session = self.client.session().await.map_err(PubSubError::Api)?;
                if self.refused_session == Some(session.generation) {
                    return Err(PubSubError::Api(SfError::new(
                        SfErrorKind::Auth,
                        ErrorClass::Definite,
                        "AUTH",
                        format!("the Pub/Sub API refuses a fresh session: {message}"),
                    )));
                }
                self.refused_session = Some(session.generation);
                self.client
                    .renew_session(Some(session.generation))
                    .await
                    .map_err(PubSubError::Api)?;
                self.grpc = None;
                Ok(())
            }
            Failure::Retry => self.back_off(message).await,
        }
    }

    /// Waits before the next attempt; fails once the policy's attempts are used up.
    async fn back_off(&mut self, message: String) -> Result<(), PubSubError> {
        let delay = self.policy.reconnect.schedule().nth(self.failures);
        self.failures += 1;
        match delay {
            Some(delay) => {
                tracing::debug!(topic = %self.topic, ?delay, %message, "Pub/Sub reconnect after backoff");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(PubSubError::Api(transport_error(format!(
                "the Pub/Sub API kept failing ({} attempts): {message}",
                self.failures
            )))),
        }
    }

    /// A gRPC client carrying the current session's metadata.
    async fn grpc(&mut self) -> Result<Grpc, PubSubError> {
        if let Some(grpc) = &self.grpc {
            return Ok(grpc.clone());
        }
        let session = self.client.session().await.map_err(PubSubError::Api)?;
        let token = session.token.expose().to_string();
        let tenant = tenant_of(&token)
            .ok_or_else(|| {
                PubSubError::Refused {
                    message: "the access token does not start with the org id (`<org id>!…`), which the Pub/Sub API needs as `tenantid`".into(),
                }
            })?
            .to_string();
        let bad = |what: &str| PubSubError::Refused {
            message: format!("the {what} cannot be sent as gRPC metadata"),
        };
        let token = MetadataValue::try_from(token.as_str()).map_err(|_| bad("access token"))?;
        let instance = MetadataValue::try_from(session.instance_url.as_str())
            .map_err(|_| bad("instance URL"))?;
        let tenant = MetadataValue::try_from(tenant.as_str()).map_err(|_| bad("org id"))?;
        let auth = Auth {
            token,
            instance,
            tenant,
        };
        let endpoint = Endpoint::from_shared(self.policy.endpoint.clone())
            .map_err(|e| PubSubError::Refused {
                message: format!(
                    "the Pub/Sub endpoint {:?} is not a URL: {e}",
                    self.policy.endpoint
                ),
            })?
            .connect_timeout(self.client.config().connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(60))
            .keep_alive_while_idle(true);
        let endpoint = if self.policy.endpoint.starts_with("https://") {
            endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| PubSubError::Api(transport_error(format!("Pub/Sub TLS: {e}"))))?
        } else {
            endpoint
        };
        let channel = endpoint.connect_lazy();
        let grpc = PubSubClient::with_interceptor(channel, auth);
        self.grpc = Some(grpc.clone());
        Ok(grpc)
    }

    /// Opens the `Subscribe` call if none is open, resuming after `position` when there is one.
    async fn ensure_stream(&mut self) -> Result<(), PubSubError> {
        while self.stream.is_none() {
            let mut grpc = self.grpc().await?;
            let (preset, replay_id) = match (&self.position, &self.start) {
                (Some(id), _) | (None, PubSubStart::After(id)) => {
                    (ReplayPreset::Custom, id.clone())
                }
                (None, PubSubStart::Latest) => (ReplayPreset::Latest, Vec::new()),
                (None, PubSubStart::Earliest) => (ReplayPreset::Earliest, Vec::new()),
            };
            let want = flow::top_up(0, self.buffered.len(), self.policy.batch).unwrap_or(0);
            let (requests, rx) = mpsc::channel(8);
            let first = FetchRequest {
                topic_name: self.topic.clone(),
                replay_preset: preset as i32,
                replay_id,
                num_requested: want,
                auth_refresh: String::new(),
            };
            let _ = requests.send(first).await;
            self.client.count_call(CallKind::Streaming);
            match grpc.subscribe(ReceiverStream::new(rx)).await {
                Ok(response) => {
                    self.stream = Some(Stream {
                        requests,
                        responses: response.into_inner(),
                        owed: want,
                    });
                }
                Err(status) => self.failed(status).await?,
            }
        }
        Ok(())
    }

    /// Asks for more events when flow control says so.
    async fn request_more(&mut self) {
        let buffered = self.buffered.len();
        let batch = self.policy.batch;
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if let Some(n) = flow::top_up(stream.owed, buffered, batch) {
            let request = FetchRequest {
                num_requested: n,
                ..Default::default()
            };
            if stream.requests.send(request).await.is_ok() {
                stream.owed += n;
            }
        }
    }

    /// The event with its payload decoded (or the reason it cannot be).
    async fn hand_out(&mut self, event: ConsumerEvent) -> Result<PubSubEvent, PubSubError> {
        let Some(inner) = event.event else {
            return Ok(PubSubEvent {
                topic: self.topic.clone(),
                replay_id: event.replay_id,
                schema_id: String::new(),
                payload: Err(PayloadError("the event has no body".into())),
            });
        };
        let payload = match self.schema(&inner.schema_id).await? {
            Ok(schema) => schema.decode(&inner.payload),
            Err(e) => Err(e),
        };
        Ok(PubSubEvent {
            topic: self.topic.clone(),
            replay_id: event.replay_id,
            schema_id: inner.schema_id,
            payload,
        })
    }

    /// The schema `id` names, fetched once and cached by id. The outer error ends the
    /// subscription (the API kept failing); the inner one is this event's (no such schema, or
    /// not a schema).
    async fn schema(
        &mut self,
        id: &str,
    ) -> Result<Result<Arc<EventSchema>, PayloadError>, PubSubError> {
        if let Some(s) = self.schemas.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(Ok(s));
        }
        loop {
            let mut grpc = self.grpc().await?;
            self.client.count_call(CallKind::Streaming);
            match grpc
                .get_schema(SchemaRequest {
                    schema_id: id.to_string(),
                })
                .await
            {
                Ok(info) => {
                    let info = info.into_inner();
                    let parsed = match EventSchema::parse(id, &info.schema_json) {
                        Ok(s) => Arc::new(s),
                        Err(e) => return Ok(Err(e)),
                    };
                    if let Ok(mut m) = self.schemas.lock() {
                        m.insert(id.to_string(), parsed.clone());
                    }
                    return Ok(Ok(parsed));
                }
                Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                    return Ok(Err(PayloadError(format!(
                        "unknown schema id {id:?}: {}",
                        status.message()
                    ))));
                }
                Err(status) => self.failed(status).await?,
            }
        }
    }
}
