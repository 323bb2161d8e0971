//! The current time, in one place. Business functions take `now` as an argument so
//! tests can be deterministic; only the edges (handlers, providers) call [`now`].
//!
//! The test clock: a gateway in development mode with `test_clock: true` lets the admin
//! listener freeze this clock at an instant and move it (`/admin/clock`), so the black-box
//! tests reach a lifetime's end (captcha, ticket, lockout, session, daily SMS quota) or
//! a window's edge without sleeping across it. It moves only business time (what
//! [`now`] returns), never the deadlines of I/O, which run on the runtime's own clock.
//! One clock per process: a gateway is one process.

use std::sync::atomic::{AtomicI64, Ordering};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The frozen instant; [`REAL`] when the clock is the system's.
static FROZEN: AtomicI64 = AtomicI64::new(REAL);
const REAL: i64 = i64::MIN;

/// Unix seconds, UTC.
pub fn now() -> i64 {
    match FROZEN.load(Ordering::Relaxed) {
        REAL => OffsetDateTime::now_utc().unix_timestamp(),
        frozen => frozen,
    }
}

/// Freezes [`now`] at `at` (Unix seconds), or gives it back to the system (`None`).
/// Only the admin listener's `/admin/clock` calls this, when the config allows it.
pub fn freeze(at: Option<i64>) {
    FROZEN.store(at.filter(|t| *t != REAL).unwrap_or(REAL), Ordering::Relaxed);
}

/// Whether [`now`] is frozen.
pub fn is_frozen() -> bool {
    FROZEN.load(Ordering::Relaxed) != REAL
}

/// RFC 3339 text of Unix seconds (UTC). Out-of-range values print as the epoch.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses RFC 3339 into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The day number (days since the epoch) in China Standard Time, for daily quotas.
pub fn cst_day(unix: i64) -> i64 {
    (unix + 8 * 3600).div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339(&rfc3339(1_795_852_800)), Some(1_795_852_800));
        assert_eq!(cst_day(16 * 3600 - 1), 0);
        assert_eq!(cst_day(16 * 3600), 1);
    }
}
