//! The current time, in one place. Business functions take `now` as an argument so
//! tests can be deterministic; only the edges (handlers, providers) call [`now`].

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds, UTC.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
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
