//! Exponential backoff with jitter, defined once: the client's retries of a call
//! ([`super::http::RetryPolicy::schedule`], and the streaming clients' reconnects through it) and
//! the writer's retries of a record (`engine::writer::outcome::Backoff`, whose attempt count is
//! journaled in Postgres) take their delays from [`delay`] (pure).

use std::time::Duration;

/// The delay before retry `retry` (1 = the first): `min · 2^(retry-1)`, capped at `max`, plus
/// `jitter` (clamped to `[0, 1]`) of itself, so that calls failed together do not retry together.
/// Pass [`random_share`] as `jitter`, or 0 for the bare schedule.
pub fn delay(min: Duration, max: Duration, retry: u32, jitter: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let raw = min.saturating_mul(1u32 << exp).min(max);
    raw.mul_f64(1.0 + jitter.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` that differs between calls (jitter; not cryptographic).
pub fn random_share() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_minimum_up_to_the_cap_and_jitter_adds_up_to_as_much_again() {
        let ms = Duration::from_millis;
        let bare: Vec<Duration> = (1..=6).map(|n| delay(ms(100), ms(1000), n, 0.0)).collect();
        assert_eq!(
            bare,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(delay(ms(100), ms(1000), 3, 1.0), ms(800));
        assert_eq!(delay(ms(100), ms(1000), 3, 0.5), ms(600));
        assert_eq!(delay(ms(100), ms(1000), u32::MAX, 0.0), ms(1000));
        assert_eq!(
            delay(ms(100), ms(1000), 0, 0.0),
            ms(100),
            "retry 0 reads as the first"
        );
        for _ in 0..100 {
            let share = random_share();
            assert!((0.0..1.0).contains(&share), "{share}");
        }
    }
}
