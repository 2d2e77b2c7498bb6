//! Requeue intervals with jitter.

use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};

/// `interval` plus up to `fraction` of it at random (e.g. 0.05 for up to 5 % longer).
pub fn jittered(interval: Duration, fraction: f64) -> Duration {
    let unit = (RandomState::new().hash_one(std::time::Instant::now()) % 10_000) as f64 / 10_000.0;
    interval + interval.mul_f64(fraction.clamp(0.0, 1.0) * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let base = Duration::from_secs(60);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(base, 0.1)).collect();
        assert!(
            samples
                .iter()
                .all(|d| *d >= base && *d <= base + Duration::from_secs(6))
        );
        assert!(
            samples.iter().any(|d| *d != samples[0]),
            "jitter never varied"
        );
        assert_eq!(jittered(base, 0.0), base);
    }
}
