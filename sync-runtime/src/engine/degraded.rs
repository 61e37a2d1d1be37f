//! What a streaming mapping does while it cannot stream (pure decisions, no IO; the same for
//! every streaming transport).
//!
//! When the org refuses streaming ([`Refusal`]: the concurrent-client allocation used up, the
//! daily delivery allocation used up, a `403`, the object not enabled for Change Data Capture),
//! the mapping polls at a short **degraded interval** ([`degraded_interval`]: the setting, 10 s
//! by default, longer only when the mapping's daily API budget demands it) and tries streaming
//! again with a backoff from seconds up to a few minutes ([`retry_delay`], [`next_attempt`]).
//! When streaming is back it resumes from the stored replay id when polling applied nothing in
//! between, else from new events with a catch-up poll from the polling cursor ([`resume`]), so
//! nothing is missed and no event replays what polling already applied. The mapping's state
//! message says why it polls and when it tries streaming again ([`polling_message`]).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::hub::{ReplayId, Start};
use crate::salesforce::streaming::StreamError;

/// The degraded polling interval when nothing is set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The first retry of streaming after a refusal.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between two tries of streaming.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// Streaming that lasted this long counts as recovered: the next refusal starts the backoff over.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Why the org does not stream to a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `DurableStreamingApiConcurrentClients` used up (`403::Organization concurrent user limit
    /// exceeded`).
    ConcurrentClients,
    /// `DailyDeliveredPlatformEvents` used up (`403::Organization total events daily limit
    /// exceeded`).
    DailyDeliveries,
    /// The channel is unknown or not offered (the object not selected for Change Data Capture).
    NotEnabled,
    /// Another refusal (`403`s, the server closing the client).
    Other,
}

impl Refusal {
    /// The refusal an error means, `None` when it is no refusal (a network or API error, handled
    /// as an engine error; a replay id past retention, handled by catching up).
    pub fn of(error: &StreamError) -> Option<(Refusal, String)> {
        let (refusal, message) = match error {
            StreamError::Refused { message } => {
                let lower = message.to_ascii_lowercase();
                let refusal = if lower.contains("concurrent") {
                    Refusal::ConcurrentClients
                } else if lower.contains("daily limit") || lower.contains("events daily") {
                    Refusal::DailyDeliveries
                } else if lower.contains("does not exist")
                    || lower.contains("not enabled")
                    || lower.contains("unknown channel")
                    || lower.starts_with("400::")
                {
                    Refusal::NotEnabled
                } else {
                    Refusal::Other
                };
                (refusal, message.clone())
            }
            StreamError::Closed { message } => (Refusal::Other, message.clone()),
            StreamError::Protocol(message) => (Refusal::Other, message.clone()),
            StreamError::Unsupported { message } => (Refusal::Other, message.clone()),
            StreamError::ReplayIdUnavailable { .. } | StreamError::Api(_) => return None,
        };
        Some((refusal, message))
    }

    /// Why, in words for the state message.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::ConcurrentClients => {
                "the org's concurrent streaming clients (DurableStreamingApiConcurrentClients) are all in use"
            }
            Refusal::DailyDeliveries => {
                "the org's daily change event delivery allocation (DailyDeliveredPlatformEvents) is used up"
            }
            Refusal::NotEnabled => "Salesforce does not offer change events for this object (select it for Change Data Capture)",
            Refusal::Other => "Salesforce refused streaming",
        }
    }
}

/// How long to wait before the `attempt`-th try of streaming after refusals (1 = the first):
/// [`FIRST_RETRY`] doubling up to [`MAX_RETRY`].
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1u32 << doublings).min(MAX_RETRY)
}

/// The attempt number after a refusal that came `streamed_for` after the previous try started:
/// back to 1 when streaming had recovered ([`STABLE_AFTER`]), else one more.
pub fn next_attempt(attempt: u32, streamed_for: Duration) -> u32 {
    if streamed_for >= STABLE_AFTER {
        1
    } else {
        attempt.saturating_add(1)
    }
}

/// The mapping's API budget as the interval decision sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// `max_daily_api_calls` (0: no budget).
    pub max_daily: u64,
    /// Budgeted calls the mapping made today.
    pub used_today: u64,
    /// Seconds until the budget starts over (midnight UTC).
    pub seconds_left_today: u64,
}

/// The degraded polling interval: `setting`, or longer when polling every `setting` would spend
/// more of the mapping's remaining budget than is left for the rest of the day. Half of what is
/// left is given to degraded polling (the writer and repairs need the rest); a poll costs
/// `calls_per_poll` calls (at least one).
pub fn degraded_interval(setting: Duration, calls_per_poll: u64, budget: Budget) -> Duration {
    let setting = setting.max(Duration::from_secs(1));
    if budget.max_daily == 0 {
        return setting;
    }
    let share = budget.max_daily.saturating_sub(budget.used_today) / 2;
    let polls = share / calls_per_poll.max(1);
    if polls == 0 {
        return setting.max(Duration::from_secs(budget.seconds_left_today.max(1)));
    }
    let spread = Duration::from_secs(budget.seconds_left_today.div_ceil(polls));
    setting.max(spread)
}

/// Where streaming starts again after degraded polling (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// From the stored replay id: polling applied nothing since it.
    Replay(Start),
    /// From new events, then a catch-up poll from the polling cursor (which polling moved past
    /// the stored replay id; replaying those events would only repeat what polling applied and
    /// spend the daily delivery allocation).
    NewWithCatchUp,
}

/// Where to resume: `stored` replay id, and whether degraded polling ran since it was stored.
pub fn resume(stored: Option<ReplayId>, polled_since: bool) -> Resume {
    match stored {
        Some(id) if !polled_since => Resume::Replay(Start::After(id)),
        _ => Resume::NewWithCatchUp,
    }
}

/// The state message of a mapping polling because streaming is refused.
pub fn polling_message(
    refusal: &Refusal,
    detail: &str,
    interval: Duration,
    retry_at: DateTime<Utc>,
) -> String {
    format!(
        "polling every {} s because {} ({detail}); trying streaming again at {}",
        interval.as_secs(),
        refusal.reason(),
        retry_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_is_retried_from_seconds_doubling_to_a_few_minutes() {
        let delays: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(0), FIRST_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn the_backoff_starts_over_only_after_streaming_recovered() {
        assert_eq!(next_attempt(0, Duration::ZERO), 1);
        assert_eq!(next_attempt(3, Duration::from_secs(2)), 4);
        assert_eq!(next_attempt(6, STABLE_AFTER), 1);
    }

    #[test]
    fn the_degraded_interval_grows_only_when_the_budget_demands_it() {
        let ten = Duration::from_secs(10);
        let day = 86_400;
        let unlimited = Budget {
            max_daily: 0,
            used_today: 0,
            seconds_left_today: day,
        };
        assert_eq!(degraded_interval(ten, 1, unlimited), ten);
        // 100,000 calls: half is 50,000 polls in a day, one every 1.7 s: the setting holds.
        let ample = Budget {
            max_daily: 100_000,
            ..unlimited
        };
        assert_eq!(degraded_interval(ten, 1, ample), ten);
        // 2,000 calls, 200 used: 900 polls for the day, one every 96 s.
        let tight = Budget {
            max_daily: 2_000,
            used_today: 200,
            seconds_left_today: day,
        };
        assert_eq!(degraded_interval(ten, 1, tight), Duration::from_secs(96));
        // Two calls a poll: half as many polls.
        assert_eq!(degraded_interval(ten, 2, tight), Duration::from_secs(192));
        // Nothing left: wait for the day to end.
        let spent = Budget {
            max_daily: 2_000,
            used_today: 2_000,
            seconds_left_today: 3_600,
        };
        assert_eq!(degraded_interval(ten, 1, spent), Duration::from_secs(3_600));
        // A zero setting is taken as one second.
        assert_eq!(
            degraded_interval(Duration::ZERO, 1, unlimited),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn refusals_are_told_apart_from_errors() {
        let refused = |m: &str| StreamError::Refused {
            message: m.to_owned(),
        };
        assert_eq!(
            Refusal::of(&refused("403::Organization concurrent user limit exceeded"))
                .unwrap()
                .0,
            Refusal::ConcurrentClients
        );
        assert_eq!(
            Refusal::of(&refused(
                "403::Organization total events daily limit exceeded"
            ))
            .unwrap()
            .0,
            Refusal::DailyDeliveries
        );
        assert_eq!(
            Refusal::of(&refused(
                "400::The channel you requested to subscribe to does not exist {/data/XChangeEvent}"
            ))
            .unwrap()
            .0,
            Refusal::NotEnabled
        );
        assert_eq!(
            Refusal::of(&refused("403::Forbidden")).unwrap().0,
            Refusal::Other
        );
        assert!(Refusal::of(&StreamError::ReplayIdUnavailable {
            replay_id: 3,
            message: String::new()
        })
        .is_none());
    }

    #[test]
    fn streaming_resumes_from_the_replay_id_only_when_polling_applied_nothing_since() {
        assert_eq!(
            resume(Some(ReplayId::Cometd(42)), false),
            Resume::Replay(Start::After(ReplayId::Cometd(42)))
        );
        assert_eq!(
            resume(Some(ReplayId::PubSub(vec![0, 7])), false),
            Resume::Replay(Start::After(ReplayId::PubSub(vec![0, 7])))
        );
        assert_eq!(
            resume(Some(ReplayId::Cometd(42)), true),
            Resume::NewWithCatchUp
        );
        assert_eq!(resume(None, false), Resume::NewWithCatchUp);
    }

    #[test]
    fn the_state_message_says_why_and_when() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let message = polling_message(
            &Refusal::ConcurrentClients,
            "403::Organization concurrent user limit exceeded",
            Duration::from_secs(10),
            at,
        );
        assert!(message
            .starts_with("polling every 10 s because the org's concurrent streaming clients"));
        assert!(message.ends_with("trying streaming again at 2026-01-01T10:00:05Z"));
    }
}
