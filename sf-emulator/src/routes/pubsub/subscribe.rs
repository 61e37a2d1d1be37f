//! `Subscribe`: one bidirectional stream per subscription (Pub/Sub API Developer Guide, "Flow
//! Control" and "Subscribe"). The first `FetchRequest` names the topic and the replay start
//! (`LATEST`, `EARLIEST`, `CUSTOM` after an opaque replay id); every request adds its
//! `num_requested` to what the server owes, at most 100 in all. Owed events are delivered as
//! they are committed (woken by the CDC log, no polling); while events are owed but none
//! exist, an empty `FetchResponse` with `latest_replay_id` goes out every keepalive interval;
//! a stream owed nothing for the idle interval is closed. A replay id that is corrupt or past
//! retention fails with `INVALID_ARGUMENT` and `…replayid.corrupted`. Subscriptions count
//! against the concurrent-client allocation with CometD's clients, and each delivered event
//! against the daily delivery allocation; the CometD fault knobs apply (refused subscribe,
//! 503 → `UNAVAILABLE`, dropped clients → `UNAVAILABLE` mid-stream).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Response, Status, Streaming};

use super::proto::{ConsumerEvent, FetchRequest, FetchResponse, ProducerEvent, ReplayPreset};
use super::{codes, failure, BoxStream, PubSubService};
use crate::org::cdc::faults::take;
use crate::org::cdc::{ChangeEvent, ChannelFilter};
use crate::org::Org;

/// Most events owed at once across a subscription's requests.
pub const MAX_OWED: i32 = 100;
/// The `/limits` entry counting delivered change events (shared with CometD).
const DELIVERY_ALLOCATION: &str = "DailyDeliveredPlatformEvents";
/// How long the server waits for the first `FetchRequest`.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A replay id as the opaque bytes the Pub/Sub API carries (8 bytes, big-endian).
pub fn replay_bytes(replay_id: i64) -> Vec<u8> {
    replay_id.to_be_bytes().to_vec()
}

/// The replay id in opaque bytes, if they are one this server issued the shape of.
pub fn replay_from_bytes(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_be_bytes(raw)).filter(|id| *id >= 0)
}

fn corrupted(rpc_id: &str) -> Status {
    failure(
        Code::InvalidArgument,
        "The Replay ID validation failed. Subscribe again with the EARLIEST or LATEST replay preset, or with a valid replay ID.",
        codes::REPLAY_CORRUPTED,
        rpc_id,
    )
}

fn unavailable(rpc_id: &str) -> Status {
    failure(
        Code::Unavailable,
        "The service is unavailable. Try again later.",
        codes::UNAVAILABLE,
        rpc_id,
    )
}

/// Events the daily delivery allocation still allows.
fn deliveries_left(org: &Org) -> usize {
    org.limit(DELIVERY_ALLOCATION)
        .map_or(usize::MAX, |(max, used)| {
            usize::try_from(max.saturating_sub(used)).unwrap_or(usize::MAX)
        })
}

/// Validates the first request and starts the stream's task.
pub(super) async fn start(
    service: &PubSubService,
    mut inbound: Streaming<FetchRequest>,
    rpc_id: String,
) -> Result<Response<BoxStream<FetchResponse>>, Status> {
    let org = service.org.clone();
    let cdc = org.cdc();
    if cdc.with_faults(|f| take(&mut f.streaming_503_next)) {
        return Err(unavailable(&rpc_id));
    }
    let first = match tokio::time::timeout(FIRST_REQUEST_TIMEOUT, inbound.message()).await {
        Ok(Ok(Some(first))) => first,
        Ok(Ok(None)) | Err(_) => {
            return Err(failure(
                Code::InvalidArgument,
                "The subscription needs a FetchRequest naming its topic",
                codes::INVALID_REQUEST,
                &rpc_id,
            ))
        }
        Ok(Err(status)) => return Err(status),
    };
    let filter = service.topic(&first.topic_name, &rpc_id)?;
    let preset = ReplayPreset::try_from(first.replay_preset).map_err(|_| {
        failure(
            Code::InvalidArgument,
            &format!("Unknown replay preset {}", first.replay_preset),
            codes::INVALID_REQUEST,
            &rpc_id,
        )
    })?;
    if cdc.with_faults(|f| take(&mut f.cdc_fail_next_subscribe)) {
        return Err(corrupted(&rpc_id));
    }
    let cursor = match preset {
        ReplayPreset::Latest => cdc.latest_replay_id(),
        ReplayPreset::Earliest => -2,
        ReplayPreset::Custom => {
            let id = replay_from_bytes(&first.replay_id).ok_or_else(|| corrupted(&rpc_id))?;
            cdc.read(id, &filter, org.now_ms(), 0)
                .map_err(|_| corrupted(&rpc_id))?;
            id
        }
    };
    let hub = org.streaming();
    let others = hub.clients.live(hub.client_expiry());
    let Some(open) = hub
        .pubsub
        .try_open(others, crate::routes::streaming::max_clients(&org))
    else {
        return Err(failure(
            Code::ResourceExhausted,
            "The maximum number of concurrent subscription clients for this org was exceeded",
            codes::CLIENT_LIMIT,
            &rpc_id,
        ));
    };
    let (tx, rx) = mpsc::channel(4);
    let mut stream = Subscription {
        org,
        filter,
        topic: first.topic_name.clone(),
        cursor,
        owed: 0,
        rpc_id,
        tx,
    };
    stream.request(&first);
    tokio::spawn(async move {
        let _open = open;
        stream.run(inbound).await;
    });
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

struct Subscription {
    org: Org,
    filter: ChannelFilter,
    topic: String,
    /// Replay id the next read starts after (`-2`: the oldest retained event).
    cursor: i64,
    owed: i32,
    rpc_id: String,
    tx: mpsc::Sender<Result<FetchResponse, Status>>,
}

/// Why a stream ends.
enum End {
    /// The client went away or stopped asking (closed without a status).
    Quiet,
    Fail(Status),
}

impl Subscription {
    /// Adds a request's events to what is owed (at most `MAX_OWED` in all).
    fn request(&mut self, request: &FetchRequest) {
        if request.num_requested > 0 {
            self.owed = self
                .owed
                .saturating_add(request.num_requested)
                .min(MAX_OWED);
        }
    }

    /// The replay id a client may resume after: where reading got to.
    fn position(&self) -> i64 {
        if self.cursor < 0 {
            // Nothing read yet from EARLIEST.
            self.org.cdc().earliest_position(self.org.now_ms())
        } else {
            self.cursor
        }
    }

    async fn send(&self, response: FetchResponse) -> Result<(), End> {
        self.tx.send(Ok(response)).await.map_err(|_| End::Quiet)
    }

    fn empty_response(&self) -> FetchResponse {
        FetchResponse {
            events: Vec::new(),
            latest_replay_id: replay_bytes(self.position()),
            rpc_id: self.rpc_id.clone(),
            pending_num_requested: self.owed,
        }
    }

    fn consumer_event(&self, event: &ChangeEvent) -> Result<ConsumerEvent, Status> {
        let internal = |m: String| failure(Code::Internal, &m, codes::INTERNAL, &self.rpc_id);
        // The schema the event was published with (it keeps it after the object's fields
        // change); the current one only for an event of an object the log was not told about.
        let schema = match &event.schema {
            Some(s) => s.clone(),
            None => match self
                .org
                .cdc()
                .schemas()
                .for_entity(&self.org.schema(), &event.entity)
            {
                Some(Ok(s)) => s,
                Some(Err(e)) => return Err(internal(e)),
                None => return Err(internal(format!("no schema for {}", event.entity))),
            },
        };
        let payload = schema.encode(event).map_err(|e| internal(e.to_string()))?;
        Ok(ConsumerEvent {
            event: Some(ProducerEvent {
                id: uuid::Uuid::from_u64_pair(0x5f5f_5f5f_0000_0000, event.replay_id as u64)
                    .to_string(),
                schema_id: schema.id.clone(),
                payload,
                headers: Vec::new(),
            }),
            replay_id: replay_bytes(event.replay_id),
        })
    }

    /// Delivers what is owed and available; true when something was sent.
    async fn deliver(&mut self) -> Result<bool, End> {
        if self.owed <= 0 {
            return Ok(false);
        }
        let allowed = deliveries_left(&self.org);
        if allowed == 0 {
            return Err(End::Fail(failure(
                Code::ResourceExhausted,
                "Organization total events daily limit exceeded",
                codes::DELIVERY_LIMIT,
                &self.rpc_id,
            )));
        }
        let limit = (self.owed as usize).min(allowed);
        let batch = self
            .org
            .cdc()
            .read(self.cursor, &self.filter, self.org.now_ms(), limit)
            .map_err(|_| End::Fail(corrupted(&self.rpc_id)))?;
        self.cursor = batch.scanned_to;
        if batch.events.is_empty() {
            return Ok(false);
        }
        let events = batch
            .events
            .iter()
            .map(|e| self.consumer_event(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(End::Fail)?;
        // Counted whatever the outcome: a delivered event is spent.
        let _ = self
            .org
            .consume_limit(DELIVERY_ALLOCATION, events.len() as u64);
        self.owed -= events.len() as i32;
        let response = FetchResponse {
            events,
            latest_replay_id: replay_bytes(self.position()),
            rpc_id: self.rpc_id.clone(),
            pending_num_requested: self.owed,
        };
        self.send(response).await?;
        Ok(true)
    }

    async fn run(mut self, inbound: Streaming<FetchRequest>) {
        let end = self.serve(inbound).await;
        if let End::Fail(status) = end {
            let _ = self.tx.send(Err(status)).await;
        }
    }

    async fn serve(&mut self, mut inbound: Streaming<FetchRequest>) -> End {
        let org = self.org.clone();
        let hub = org.streaming();
        let mut feed = self.org.cdc().subscribe();
        let mut feed_open = true;
        let mut drops = hub.pubsub.drops();
        drops.borrow_and_update();
        let mut inbound_open = true;
        let mut last_sent = Instant::now();
        let mut idle_since = (self.owed == 0).then(Instant::now);
        loop {
            feed.borrow_and_update();
            match self.deliver().await {
                Ok(true) => {
                    last_sent = Instant::now();
                    if self.owed == 0 {
                        idle_since = Some(Instant::now());
                    }
                    continue;
                }
                Ok(false) => {}
                Err(end) => return end,
            }
            let keepalive_at = last_sent + hub.pubsub.keepalive();
            let idle_close_at = idle_since.map(|t| t + hub.pubsub.idle_close());
            tokio::select! {
                message = inbound.message(), if inbound_open => match message {
                    Ok(Some(request)) => {
                        if !request.topic_name.is_empty() && request.topic_name != self.topic {
                            return End::Fail(failure(
                                Code::InvalidArgument,
                                &format!(
                                    "The topic of a subscription cannot change: {:?} was subscribed, not {:?}",
                                    self.topic, request.topic_name
                                ),
                                codes::INVALID_REQUEST,
                                &self.rpc_id,
                            ));
                        }
                        let was_idle = self.owed == 0;
                        self.request(&request);
                        if self.owed > 0 {
                            idle_since = None;
                            if was_idle {
                                last_sent = Instant::now();
                            }
                        }
                    }
                    // The client sends no more requests; what is owed is still delivered.
                    Ok(None) => inbound_open = false,
                    Err(_) => return End::Quiet,
                },
                changed = feed.changed(), if feed_open && self.owed > 0 => {
                    feed_open = changed.is_ok();
                }
                _ = drops.changed() => return End::Fail(unavailable(&self.rpc_id)),
                _ = tokio::time::sleep_until(keepalive_at), if self.owed > 0 => {
                    if let Err(end) = self.send(self.empty_response()).await {
                        return end;
                    }
                    last_sent = Instant::now();
                }
                _ = async {
                    match idle_close_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => return End::Quiet,
                _ = self.tx.closed() => return End::Quiet,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_ids_round_trip_through_opaque_bytes_and_garbage_is_refused() {
        assert_eq!(replay_from_bytes(&replay_bytes(10_042)), Some(10_042));
        assert_eq!(replay_from_bytes(b"garbage"), None);
        assert_eq!(replay_from_bytes(&[]), None);
        assert_eq!(replay_from_bytes(&(-1i64).to_be_bytes()), None);
    }
}
