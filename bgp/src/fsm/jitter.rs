//! Deterministic jitter source and exponential backoff state. The FSM never reads a clock
//! or an OS random source: the driver passes a seed, tests pass a constant.

use std::time::Duration;

use crate::fsm::config::Backoff;

/// A small deterministic pseudo-random generator (SplitMix64) for timer jitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        // 53 random bits into the mantissa.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The RFC 4271 section 10 jitter factor, uniform in [0.75, 1.0).
    pub fn factor(&mut self) -> f64 {
        0.75 + 0.25 * self.unit()
    }
}

/// Progress through a [`Backoff`]: the next un-jittered interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BackoffState {
    current: Option<Duration>,
}

/// Smallest interval a timer is ever armed with, so a zero configuration cannot make
/// `handle_timeout` spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl BackoffState {
    /// The next interval (jittered), and advance: double up to `max`.
    pub(crate) fn next(&mut self, cfg: &Backoff, rng: &mut Jitter) -> Duration {
        let base = self.current.unwrap_or(cfg.initial).min(cfg.max);
        self.current = Some(base.saturating_mul(2).min(cfg.max));
        base.mul_f64(rng.factor()).max(MIN_INTERVAL)
    }

    pub(crate) fn reset(&mut self) {
        self.current = None;
    }
}
