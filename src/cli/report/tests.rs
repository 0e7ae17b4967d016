use super::*;

fn at(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

#[test]
fn the_window_flags_combine() {
    let now = at("2026-12-07T12:00:00Z");
    let day = Some(Duration::from_secs(86_400));
    let w = window_of(None, None, None, now).unwrap();
    assert_eq!((w.start, w.end), (at("2026-12-06T12:00:00Z"), now));
    let w = window_of(day, Some(at("2026-12-01T00:00:00Z")), None, now).unwrap();
    assert_eq!(w.end, at("2026-12-02T00:00:00Z"));
    let w = window_of(None, Some(at("2026-12-07T11:00:00Z")), None, now).unwrap();
    assert_eq!((w.start, w.end), (at("2026-12-07T11:00:00Z"), now));
    let w = window_of(
        Some(Duration::from_secs(3600)),
        None,
        Some(at("2026-12-07T10:00:00Z")),
        now,
    )
    .unwrap();
    assert_eq!(w.start, at("2026-12-07T09:00:00Z"));
    let e = window_of(day, Some(now), Some(now), now).unwrap_err();
    assert!(e.contains("not all three"), "{e}");
    let e = window_of(None, Some(now), Some(at("2026-12-07T11:00:00Z")), now).unwrap_err();
    assert!(e.contains("expected --end after --start"), "{e}");
}

#[test]
fn malformed_spans_times_and_groupings_say_what_is_expected() {
    assert_eq!(parse_span("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_span("7d"), Ok(Duration::from_secs(604_800)));
    assert_eq!(parse_span("1.5h"), Ok(Duration::from_secs(5_400)));
    for bad in ["24", "h", "3y", "-1h", "0m"] {
        let e = parse_span(bad).unwrap_err();
        assert!(e.contains("invalid --window"), "{bad}: {e}");
    }
    let e = parse_time("yesterday").unwrap_err();
    assert!(e.contains("expected RFC 3339, e.g. 2026-12-07T10:00:00Z"), "{e}");
    let e = parse_group("pods").unwrap_err();
    assert!(e.contains("expected namespace, team, cost-centre or nodepool"), "{e}");
}
