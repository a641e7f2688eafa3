//! How numbers read on the site and in exports: one place, so every page agrees.

/// Parameter counts the way the field writes them: `100K`, `0.5B`, `1.4T`.
pub fn parameters(count: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "T"),
        (1_000_000_000, "B"),
        (1_000_000, "M"),
        (1_000, "K"),
    ];
    for (scale, unit) in UNITS {
        // Half a billion and up reads as 0.5B, not 500M, as the field writes it.
        if count >= scale || (unit == "B" && count >= scale / 2) {
            #[allow(clippy::cast_precision_loss)]
            let value = count as f64 / scale as f64;
            return format!("{}{unit}", trim(value));
        }
    }
    count.to_string()
}

fn trim(value: f64) -> String {
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// A loss in nats, as shown on leaderboards.
pub fn loss(value: f64) -> String {
    format!("{value:.4}")
}

/// A UTC date and time (`2026-11-25 14:03 UTC`) from unix seconds.
pub fn datetime(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A UTC date (`25 Nov 2026`) from unix seconds.
pub fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%-d %b %Y").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A time-axis label, as precise as the axis needs for its labels to differ: the time
/// with seconds (`14:03:25 UTC`) on a span under ten minutes (a phase's first minutes),
/// the time of day (`14:03 UTC`) under two days, the date otherwise.
pub fn axis_time(unix: i64, span_seconds: i64) -> String {
    let pattern = if span_seconds < 10 * 60 {
        "%H:%M:%S UTC"
    } else if span_seconds < 2 * 24 * 60 * 60 {
        "%H:%M UTC"
    } else {
        return date(unix);
    };
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format(pattern).to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A time as an HTML `datetime-local` input shows it (`2026-11-25T14:03`), in UTC.
pub fn datetime_input(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// Reads a `datetime-local` input's value (`2026-11-25T14:03`, seconds optional) as UTC.
pub fn parse_datetime_input(value: &str) -> Option<i64> {
    let value = value.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| t.and_utc().timestamp())
}

/// RFC 3339 (`2026-11-25T14:03:00Z`) for machine-readable exports.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A size in bytes with a binary unit: `800 KiB`, `2.8 TiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", trim(value), UNITS[unit])
}

/// A short wait or age in words: `45 seconds`, `3 minutes`, `2 hours`.
pub fn duration(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        s if s < 60 => plural(s.max(1), "second"),
        s if s < 3600 => plural((s + 59) / 60, "minute"),
        s if s < 86_400 => plural((s + 3599) / 3600, "hour"),
        s => plural((s + 86_399) / 86_400, "day"),
    }
}

/// A count with its noun: `1 submission`, `3 submissions` (regular plurals).
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(1, "submission"), "1 submission");
        assert_eq!(count(12, "submission"), "12 submissions");
    }

    #[test]
    fn axis_labels_show_times_on_short_spans() {
        let at = 1_795_624_980; // 2026-11-25 16:43 UTC
        assert_eq!(axis_time(at, 3600), "16:43 UTC");
        assert_eq!(axis_time(at + 25, 90), "16:43:25 UTC");
        assert_eq!(axis_time(at, 30 * 24 * 3600), "25 Nov 2026");
    }

    #[test]
    fn parameter_counts_read_like_the_field_writes_them() {
        assert_eq!(parameters(999), "999");
        assert_eq!(parameters(100_000), "100K");
        assert_eq!(parameters(6_400_000), "6.4M");
        assert_eq!(parameters(500_000_000), "0.5B");
        assert_eq!(parameters(1_500_000_000), "1.5B");
        assert_eq!(parameters(400_000_000_000), "400B");
        assert_eq!(parameters(1_400_000_000_000), "1.4T");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_764_028_800), "25 Nov 2025");
        assert_eq!(rfc3339(1_764_028_800), "2025-11-25T00:00:00Z");
        assert_eq!(loss(1.234_567), "1.2346");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(800_000), "781 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3 GiB");
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(61), "2 minutes");
        assert_eq!(duration(900), "15 minutes");
        assert_eq!(duration(7200), "2 hours");
    }

    #[test]
    fn datetime_inputs_round_trip_in_utc() {
        let t = 1_764_079_380; // 2025-11-25 14:03 UTC
        assert_eq!(datetime_input(t), "2025-11-25T14:03");
        assert_eq!(parse_datetime_input("2025-11-25T14:03"), Some(t));
        assert_eq!(parse_datetime_input(" 2025-11-25T14:03:30 "), Some(t + 30));
        assert_eq!(parse_datetime_input("25/11/2025"), None);
    }
}
