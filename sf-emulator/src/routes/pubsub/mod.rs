//! The Pub/Sub API: `eventbus.v1.PubSub` over gRPC (HTTP/2) on its own listener, serving the
//! org's Change Data Capture log — the same events, replay positions and faults as CometD.
//! Auth from the `accesstoken`, `instanceurl` and `tenantid` metadata; `GetTopic` and
//! `GetSchema` for `/data/ChangeEvents` and `/data/<Object>ChangeEvent`; `Subscribe` with
//! replay presets and flow control (`subscribe`). Errors carry Salesforce's trailers
//! `error-code` and `rpc-id`. `Publish`/`PublishStream` refuse change-event topics (they are
//! read-only); `ManagedSubscribe` (beta) is not served.

pub mod proto;
mod subscribe;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::org::cdc::ChannelFilter;
use crate::org::{Org, Session};
use proto::pub_sub_server::{PubSub, PubSubServer};
use proto::{
    FetchRequest, ManagedFetchRequest, ManagedFetchResponse, PublishRequest, PublishResponse,
    SchemaInfo, SchemaRequest, TopicInfo, TopicRequest,
};

/// `error-code` trailer values (Pub/Sub API Developer Guide, "Handling Errors").
pub mod codes {
    pub const AUTH: &str = "sfdc.platform.eventbus.grpc.service.auth.error";
    pub const REPLAY_CORRUPTED: &str =
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
    pub const UNAVAILABLE: &str = "sfdc.platform.eventbus.grpc.service.unavailable";
    pub const CLIENT_LIMIT: &str =
        "sfdc.platform.eventbus.grpc.subscription.concurrent.client.limit.exceeded";
    pub const DELIVERY_LIMIT: &str = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded";
    pub const TOPIC: &str = "sfdc.platform.eventbus.grpc.topic.not.found";
    pub const SCHEMA: &str = "sfdc.platform.eventbus.grpc.schema.not.found";
    pub const INVALID_REQUEST: &str = "sfdc.platform.eventbus.grpc.subscription.invalid.request";
    pub const PUBLISH: &str = "sfdc.platform.eventbus.grpc.publish.permission.denied";
    pub const INTERNAL: &str = "sfdc.platform.eventbus.grpc.service.internal.error";
}

/// A new `rpc_id` (one per call).
fn rpc_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A failed call: status, message and the `error-code` / `rpc-id` trailers.
pub(crate) fn failure(code: Code, message: &str, error_code: &str, rpc_id: &str) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(error_code) {
        md.insert("error-code", v);
    }
    if let Ok(v) = MetadataValue::try_from(rpc_id) {
        md.insert("rpc-id", v);
    }
    Status::with_metadata(code, message, md)
}

/// The gRPC service of one org.
#[derive(Clone)]
pub struct PubSubService {
    org: Org,
}

/// The Pub/Sub API as an axum router (served on its own listener by `server`).
pub fn grpc_router(org: Org) -> axum::Router {
    let service = PubSubService { org };
    tonic::service::Routes::new(PubSubServer::new(service)).into_axum_router()
}

impl PubSubService {
    /// The session named by the call's metadata, checked as Salesforce checks it: a live
    /// access token, this org's id as `tenantid` (15 or 18 characters), this instance's URL.
    fn authenticate(&self, md: &MetadataMap, rpc_id: &str) -> Result<Session, Status> {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
        let refuse = |why: &str| {
            Err(failure(
                Code::Unauthenticated,
                &format!("An error occurred while trying to authenticate: {why}"),
                codes::AUTH,
                rpc_id,
            ))
        };
        let Some(token) = get("accesstoken").filter(|t| !t.is_empty()) else {
            return refuse("the accesstoken header is missing");
        };
        let Some(session) = self.org.session(token) else {
            return refuse("the access token is invalid or has expired");
        };
        let org_id = self.org.org_id().to_string();
        match get("tenantid") {
            Some(t) if !t.is_empty() && (t == org_id || t == &org_id[..15]) => {}
            Some(_) => return refuse("the tenantid header does not name this org"),
            None => return refuse("the tenantid header is missing"),
        }
        let base = self.org.base_url();
        match get("instanceurl") {
            Some(url) if url.trim_end_matches('/').eq_ignore_ascii_case(&base) => {}
            Some(_) => return refuse("the instanceurl header does not name this instance"),
            None => return refuse("the instanceurl header is missing"),
        }
        Ok(session)
    }

    /// A change-event topic of this org (`/data/ChangeEvents`, `/data/<Object>ChangeEvent`).
    fn topic(&self, name: &str, rpc_id: &str) -> Result<ChannelFilter, Status> {
        let schema = self.org.schema();
        ChannelFilter::parse(name, schema.objects.iter().map(|o| o.name.as_str())).ok_or_else(
            || {
                failure(
                    Code::NotFound,
                    &format!("Topic {name:?} not found or not accessible"),
                    codes::TOPIC,
                    rpc_id,
                )
            },
        )
    }
}

type BoxStream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl PubSub for PubSubService {
    type SubscribeStream = BoxStream<proto::FetchResponse>;
    type PublishStreamStream = BoxStream<PublishResponse>;
    type ManagedSubscribeStream = BoxStream<ManagedFetchResponse>;

    async fn subscribe(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        subscribe::start(self, request.into_inner(), rpc_id).await
    }

    async fn get_schema(
        &self,
        request: Request<SchemaRequest>,
    ) -> Result<Response<SchemaInfo>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let id = request.into_inner().schema_id;
        let schema = self
            .org
            .cdc()
            .schemas()
            .by_id(&self.org.schema(), &id)
            .ok_or_else(|| {
                failure(
                    Code::NotFound,
                    &format!("Schema {id:?} not found"),
                    codes::SCHEMA,
                    &rpc_id,
                )
            })?;
        Ok(Response::new(SchemaInfo {
            schema_json: schema.json.clone(),
            schema_id: schema.id.clone(),
            rpc_id,
        }))
    }

    async fn get_topic(
        &self,
        request: Request<TopicRequest>,
    ) -> Result<Response<TopicInfo>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let name = request.into_inner().topic_name;
        let filter = self.topic(&name, &rpc_id)?;
        // `/data/ChangeEvents` carries every object's events, each with its own schema.
        let schema_id = match &filter {
            ChannelFilter::All => String::new(),
            ChannelFilter::Entity(entity) => {
                match self
                    .org
                    .cdc()
                    .schemas()
                    .for_entity(&self.org.schema(), entity)
                {
                    Some(Ok(s)) => s.id.clone(),
                    Some(Err(e)) => {
                        return Err(failure(Code::Internal, &e, codes::INTERNAL, &rpc_id))
                    }
                    None => String::new(),
                }
            }
        };
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: self.org.org_id().to_string(),
            can_publish: false,
            can_subscribe: true,
            schema_id,
            rpc_id,
        }))
    }

    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let name = request.into_inner().topic_name;
        self.topic(&name, &rpc_id)?;
        Err(publish_denied(&name, &rpc_id))
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let mut inbound = request.into_inner();
        let name = match inbound.message().await {
            Ok(Some(first)) => first.topic_name,
            Ok(None) => String::new(),
            Err(status) => return Err(status),
        };
        self.topic(&name, &rpc_id)?;
        Err(publish_denied(&name, &rpc_id))
    }

    async fn managed_subscribe(
        &self,
        request: Request<Streaming<ManagedFetchRequest>>,
    ) -> Result<Response<Self::ManagedSubscribeStream>, Status> {
        let rpc_id = rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        Err(failure(
            Code::Unimplemented,
            "Managed subscriptions (beta) are not available in this org",
            codes::INVALID_REQUEST,
            &rpc_id,
        ))
    }
}

/// Change-event topics are published by the platform only.
fn publish_denied(topic: &str, rpc_id: &str) -> Status {
    failure(
        Code::PermissionDenied,
        &format!(
            "Publishing to {topic:?} is not allowed: change events are published by Salesforce"
        ),
        codes::PUBLISH,
        rpc_id,
    )
}
