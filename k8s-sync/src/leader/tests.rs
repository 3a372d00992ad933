use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

use super::record::*;
use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn held(holder: Option<&str>, renewed: Option<&str>, duration: Option<i32>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_owned),
        renew_time: renewed.map(|r| MicroTime(ts(r))),
        acquire_time: renewed.map(|r| MicroTime(ts(r))),
        lease_duration_seconds: duration,
        lease_transitions: Some(3),
        ..LeaseSpec::default()
    }
}

#[test]
fn defaults_are_client_go_timings_and_need_an_identity() {
    let cfg = LeaderElectionConfig::default();
    assert_eq!(cfg.lease_duration, secs(15));
    assert_eq!(cfg.renew_deadline, secs(10));
    assert_eq!(cfg.retry_period, secs(2));
    assert_eq!(cfg.lease_name, DEFAULT_LEASE_NAME);
    assert_eq!(cfg.namespace, DEFAULT_NAMESPACE);
    let err = cfg.validate().expect_err("no identity");
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "LeaderElectionConfig::holder_identity",
                ..
            }
        ),
        "{err:?}"
    );
    LeaderElectionConfig::new("ns", "lease", "pod-0")
        .validate()
        .expect("defaults with an identity are valid");
}

#[test]
fn timings_must_order_retry_below_renew_below_lease() {
    let ms = Duration::from_millis;
    let cases = [
        (ms(600), ms(400), ms(100), None),
        (
            ms(600),
            ms(600),
            ms(100),
            Some("LeaderElectionConfig::lease_duration"),
        ),
        (
            ms(600),
            ms(700),
            ms(100),
            Some("LeaderElectionConfig::lease_duration"),
        ),
        (
            ms(600),
            ms(400),
            ms(400),
            Some("LeaderElectionConfig::renew_deadline"),
        ),
        (
            ms(600),
            ms(400),
            ms(0),
            Some("LeaderElectionConfig::retry_period"),
        ),
        (
            Duration::from_secs(u64::from(u32::MAX)),
            secs(10),
            secs(2),
            Some("LeaderElectionConfig::lease_duration"),
        ),
    ];
    for (lease, renew, retry, want) in cases {
        let got = LeaderElectionConfig::new("ns", "l", "me")
            .timings(lease, renew, retry)
            .validate();
        match (got, want) {
            (Ok(()), None) => {}
            (Err(Error::InvalidConfig { field, .. }), Some(want)) => {
                assert_eq!(field, want, "{lease:?}/{renew:?}/{retry:?}");
            }
            (got, want) => panic!("{lease:?}/{renew:?}/{retry:?}: got {got:?}, want {want:?}"),
        }
    }
    for (field, cfg) in [
        (
            "LeaderElectionConfig::lease_name",
            LeaderElectionConfig::new("ns", "", "me"),
        ),
        (
            "LeaderElectionConfig::namespace",
            LeaderElectionConfig::new("", "l", "me"),
        ),
    ] {
        let err = cfg.validate().expect_err(field);
        assert!(
            matches!(err, Error::InvalidConfig { field: f, .. } if f == field),
            "{err:?}"
        );
    }
}

#[test]
fn lease_duration_seconds_round_up_to_at_least_one() {
    for (d, want) in [
        (Duration::ZERO, 1),
        (Duration::from_millis(600), 1),
        (secs(1), 1),
        (Duration::from_millis(1200), 2),
        (secs(15), 15),
        (secs(u64::MAX / 4), i32::MAX),
    ] {
        assert_eq!(lease_duration_seconds(d), want, "{d:?}");
    }
}

#[test]
fn a_lease_expires_at_renew_time_plus_its_declared_duration() {
    let now = ts("2025-01-01T00:00:20Z");
    let cases = [
        (
            held(Some("a"), Some("2025-01-01T00:00:04Z"), Some(15)),
            true,
        ),
        (
            held(Some("a"), Some("2025-01-01T00:00:05Z"), Some(15)),
            true,
        ),
        (
            held(Some("a"), Some("2025-01-01T00:00:05.000001Z"), Some(15)),
            false,
        ),
        (held(Some("a"), Some("2025-01-01T00:00:19Z"), Some(1)), true),
        (
            held(Some("a"), Some("2025-01-01T00:00:19.5Z"), Some(1)),
            false,
        ),
        // No declared duration: ours (10 s here) applies.
        (held(Some("a"), Some("2025-01-01T00:00:09Z"), None), true),
        (held(Some("a"), Some("2025-01-01T00:00:11Z"), None), false),
        (
            held(Some("a"), Some("2025-01-01T00:00:11Z"), Some(0)),
            false,
        ),
        // Never renewed.
        (held(Some("a"), None, Some(15)), true),
    ];
    for (spec, want) in cases {
        assert_eq!(lease_expired(&spec, now, secs(10)), want, "{spec:?}");
    }
}

#[test]
fn an_empty_holder_identity_is_no_holder() {
    assert_eq!(holder(&held(Some("a"), None, None)), Some("a"));
    assert_eq!(holder(&held(Some(""), None, None)), None);
    assert_eq!(holder(&held(None, None, None)), None);
}

#[test]
fn claiming_a_new_lease_starts_at_zero_transitions() {
    let now = ts("2025-01-01T00:00:00.123456Z");
    let spec = claim(None, "me", Duration::from_millis(600), now);
    assert_eq!(spec.holder_identity.as_deref(), Some("me"));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.acquire_time, Some(MicroTime(now)));
    assert_eq!(spec.renew_time, Some(MicroTime(now)));
}

#[test]
fn renewing_keeps_acquire_time_and_transitions() {
    let old = held(Some("me"), Some("2025-01-01T00:00:00Z"), Some(15));
    let now = ts("2025-01-01T00:00:02Z");
    let spec = claim(Some(&old), "me", secs(15), now);
    assert_eq!(spec.holder_identity.as_deref(), Some("me"));
    assert_eq!(spec.acquire_time, old.acquire_time);
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(spec.renew_time, Some(MicroTime(now)));
}

#[test]
fn taking_over_counts_a_transition_and_resets_acquire_time() {
    let now = ts("2025-01-01T00:01:00Z");
    for old in [
        held(Some("other"), Some("2025-01-01T00:00:00Z"), Some(15)),
        released(
            &held(Some("other"), Some("2025-01-01T00:00:00Z"), Some(15)),
            now,
        ),
    ] {
        let spec = claim(Some(&old), "me", secs(15), now);
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(4), "{old:?}");
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        assert_eq!(spec.lease_duration_seconds, Some(15));
    }
}

#[test]
fn claiming_keeps_fields_we_do_not_manage() {
    let old = LeaseSpec {
        preferred_holder: Some("p".into()),
        strategy: Some("OldestEmulationVersion".into()),
        ..held(Some("other"), None, None)
    };
    let spec = claim(Some(&old), "me", secs(15), ts("2025-01-01T00:00:00Z"));
    assert_eq!(spec.preferred_holder.as_deref(), Some("p"));
    assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
}

#[test]
fn a_released_lease_has_no_holder_and_a_fresh_one_second_renewal() {
    let now = ts("2025-01-01T00:00:30Z");
    let spec = released(
        &held(Some("me"), Some("2025-01-01T00:00:29Z"), Some(15)),
        now,
    );
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.acquire_time, None);
    assert_eq!(spec.renew_time, Some(MicroTime(now)));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert_eq!(spec.lease_transitions, Some(3));
}

#[test]
fn micro_time_serialises_with_six_fraction_digits_in_utc() {
    let spec = claim(None, "me", secs(15), ts("2025-01-01T00:00:00.1234567Z"));
    let json = serde_json::to_value(&spec).expect("json");
    assert_eq!(json["renewTime"], "2025-01-01T00:00:00.123456Z");
    assert_eq!(json["acquireTime"], "2025-01-01T00:00:00.123456Z");
    assert_eq!(json["holderIdentity"], "me");
    assert_eq!(json["leaseDurationSeconds"], 15);
    assert_eq!(json["leaseTransitions"], 0);
}

#[test]
fn the_observer_reports_changes_only_after_the_first_sighting() {
    let mut observer = Observer::default();
    assert_eq!(observer.observe(Some("1")), None, "first sighting");
    assert_eq!(observer.observe(Some("1")), None, "unchanged");
    let changed = observer.observe(Some("2")).expect("changed");
    assert_eq!(
        observer.observe(Some("2")),
        Some(changed),
        "unchanged since"
    );
    assert!(observer.observe(Some("3")).is_some_and(|t| t >= changed));
}
