//! Times in the form Go clients decode (`time.Time` reads RFC 3339).

/// RFC 3339 text of a time, in UTC with nanoseconds (what Go's `time.Time` decodes).
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let t = time::macros::datetime!(2025-02-08 20:06:20.468546777 +02:00);
        assert_eq!(rfc3339(t), "2025-02-08T18:06:20.468546777Z");
    }
}
