//! Flow control and failure handling for a Pub/Sub subscription (pure).
//!
//! The server owes at most 100 events across a stream's outstanding requests (Pub/Sub API
//! Developer Guide, "Flow Control"). [`top_up`] keeps events owed so the stream never idles
//! while changes exist, and never holds more than one batch between the server and the engine:
//! once what is owed plus what waits in the client's buffer falls to half a batch, it asks for
//! the rest. Stalls reported against other clients (after 100 or 200 events) came from asking
//! only when a request was fully served, or from counting keepalives as events; here the count
//! is what the server says is still pending.
//!
//! [`classify`] reads a failed call's status and `error-code` trailer into what the subscription
//! does next.

use tonic::Code;

/// The most events one stream may have owed (the server treats more as this).
pub const MAX_OWED: i32 = 100;

/// How many events to request now, if any: `owed` is what the server still owes (its last
/// `pending_num_requested`, plus requests sent since), `buffered` what the client holds but has
/// not handed to the engine, `batch` the most to hold at once (1..=100).
pub fn top_up(owed: i32, buffered: usize, batch: i32) -> Option<i32> {
    let batch = batch.clamp(1, MAX_OWED);
    let held = i64::from(owed.max(0)) + buffered as i64;
    let want = i64::from(batch) - held;
    (held * 2 <= i64::from(batch) && want > 0).then_some(want as i32)
}

/// What a failed Pub/Sub call means for the subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The replay id is corrupt or past retention: catch up by polling, subscribe again.
    ReplayId,
    /// The session is not accepted: log in again, then reconnect.
    Auth,
    /// The org refuses (an allocation is used up, no access to the topic): fall back to polling.
    Refused,
    /// The endpoint does not serve the Pub/Sub API (`UNIMPLEMENTED`): stream over CometD.
    NotOffered,
    /// Worth another try after a backoff (unavailable, internal, the stream ended).
    Retry,
}

/// Classifies a failed call by its status code and `error-code` trailer.
pub fn classify(code: Code, error_code: &str) -> Failure {
    if error_code.contains("replayid") {
        return Failure::ReplayId;
    }
    if error_code.contains("auth") {
        return Failure::Auth;
    }
    match code {
        Code::Unauthenticated => Failure::Auth,
        Code::Unimplemented => Failure::NotOffered,
        Code::InvalidArgument
        | Code::PermissionDenied
        | Code::NotFound
        | Code::ResourceExhausted
        | Code::FailedPrecondition => Failure::Refused,
        _ => Failure::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_never_stalls_and_never_holds_more_than_a_batch() {
        // Simulate a server with 10,000 events and a client handing them out one by one.
        let (mut available, mut owed, mut buffered, mut delivered) = (10_000, 0, 0usize, 0);
        let mut requests = 0;
        while delivered < 10_000 {
            if let Some(n) = top_up(owed, buffered, 100) {
                owed += n;
                requests += 1;
            }
            assert!((0..=MAX_OWED).contains(&owed), "never more than 100 owed");
            assert!(
                owed as usize + buffered <= 100,
                "never more than a batch held"
            );
            // The server sends what it owes, in chunks of up to 30.
            let sent = owed.min(available).min(30);
            assert!(sent > 0 || buffered > 0, "stalled at {delivered}");
            available -= sent;
            owed -= sent;
            buffered += sent as usize;
            // The engine applies one.
            if buffered > 0 {
                buffered -= 1;
                delivered += 1;
            }
        }
        assert!(requests >= 100);
    }

    #[test]
    fn asks_for_the_rest_once_half_a_batch_is_left() {
        assert_eq!(top_up(0, 0, 100), Some(100));
        assert_eq!(top_up(51, 0, 100), None);
        assert_eq!(top_up(30, 20, 100), Some(50));
        assert_eq!(top_up(0, 0, 500), Some(100));
        assert_eq!(top_up(-5, 0, 10), Some(10));
    }

    #[test]
    fn failures_are_told_apart_by_trailer_then_status() {
        let corrupted = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
        assert_eq!(
            classify(Code::InvalidArgument, corrupted),
            Failure::ReplayId
        );
        assert_eq!(
            classify(
                Code::Unauthenticated,
                "sfdc.platform.eventbus.grpc.service.auth.error"
            ),
            Failure::Auth
        );
        assert_eq!(classify(Code::ResourceExhausted, ""), Failure::Refused);
        assert_eq!(classify(Code::Unimplemented, ""), Failure::NotOffered);
        assert_eq!(
            classify(
                Code::Unavailable,
                "sfdc.platform.eventbus.grpc.service.unavailable"
            ),
            Failure::Retry
        );
        assert_eq!(classify(Code::Internal, ""), Failure::Retry);
    }
}
