use super::*;
use crate::inspect::Cert;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn policy() -> Policy {
    Policy {
        names: vec!["tollgate.tollgate.svc".into(), "127.0.0.1".into()],
        ca_validity: 3650 * DAY,
        leaf_validity: 365 * DAY,
        wait: MINUTE,
    }
}

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// The Secret, the bundle the API server holds, and what the replicas
/// serve, driven by [`plan`] and [`apply`] the way the controller drives
/// them; every write is checked against both orders in which the world
/// may follow it.
struct World {
    policy: Policy,
    now: SystemTime,
    secret: Option<Material>,
    /// `caBundle` of the webhook configurations.
    configured: Vec<Cert>,
    covered_since: Option<SystemTime>,
    writes: Vec<String>,
}

fn verifies(bundle: &[Cert], leaf: &Cert, now: SystemTime) -> bool {
    leaf.valid_at(now)
        && bundle
            .iter()
            .any(|ca| ca.valid_at(now) && leaf.signed_by(ca))
}

impl World {
    fn new(policy: Policy) -> Self {
        Self {
            policy,
            now: start(),
            secret: None,
            configured: Vec::new(),
            covered_since: None,
            writes: Vec::new(),
        }
    }

    fn plan(&self) -> Step {
        plan(
            self.secret.as_ref(),
            &self.policy,
            self.now,
            self.covered_since,
        )
    }

    /// One round: plan, write, then the configurations follow the Secret.
    fn round(&mut self) -> Step {
        let step = self.plan();
        if !matches!(step, Step::Idle { .. }) {
            let before = self.secret.clone();
            let after = apply(&step, before.as_ref(), &self.policy, self.now, 0).unwrap();
            self.writes.push(format!("{step:?}"));
            if let Some(old_leaf) = before.as_ref().and_then(|b| b.leaf.as_ref()) {
                let old_leaf = &old_leaf.cert;
                let new_leaf = &after.leaf.as_ref().unwrap().cert;
                // Replicas that switched before the API server saw the new bundle...
                assert!(
                    verifies(&self.configured, new_leaf, self.now),
                    "{step:?}: the old bundle does not verify the new certificate"
                );
                // ...and replicas that have not switched yet once it did.
                if verifies(&self.configured, old_leaf, self.now) {
                    assert!(
                        verifies(&after.bundle, old_leaf, self.now),
                        "{step:?}: the new bundle does not verify the old certificate"
                    );
                }
            }
            self.secret = Some(after);
        }
        self.follow();
        step
    }

    /// The bundle writers copy the Secret's bundle into the configurations.
    fn follow(&mut self) {
        let Some(secret) = &self.secret else { return };
        self.configured = secret.bundle.clone();
        let signer = &secret.signer.as_ref().unwrap().cert;
        if self.configured.contains(signer) {
            self.covered_since.get_or_insert(self.now);
        } else {
            self.covered_since = None;
        }
    }

    fn leaf(&self) -> &Cert {
        &self.secret.as_ref().unwrap().leaf.as_ref().unwrap().cert
    }

    fn secret_mut(&mut self) -> &mut Material {
        self.secret.as_mut().unwrap()
    }

    /// Rounds until idle, at most `limit`.
    fn settle(&mut self, limit: usize) -> Step {
        for _ in 0..limit {
            let step = self.round();
            if let Step::Idle { .. } = step {
                return step;
            }
        }
        panic!("no idle state after {limit} rounds: {:?}", self.writes);
    }
}

#[test]
fn a_fresh_install_gets_a_ca_and_a_certificate_for_the_names() {
    let mut world = World::new(policy());
    assert_eq!(world.round(), Step::Fresh { why: "no Secret" });
    let secret = world.secret.as_ref().unwrap();
    assert_eq!(secret.bundle.len(), 1);
    assert_eq!(secret.generation, 1);
    assert_eq!(world.leaf().names, policy().names);
    assert!(verifies(&secret.bundle, world.leaf(), world.now));
    let ca = &secret.bundle[0];
    assert_eq!(ca.not_after, world.now + 3650 * DAY);
    assert_eq!(world.leaf().not_after, world.now + 365 * DAY);
    let renew = world.leaf().renew_at();
    assert_eq!(
        world.round(),
        Step::Idle {
            at: Some(renew),
            waiting_for: None
        }
    );
}

#[test]
fn a_certificate_is_renewed_under_the_same_ca_without_a_bundle_change() {
    let mut world = World::new(policy());
    world.settle(3);
    let (bundle, generation, first) = {
        let s = world.secret.as_ref().unwrap();
        (s.bundle.clone(), s.generation, world.leaf().clone())
    };
    world.now = first.renew_at() - MINUTE;
    assert!(matches!(world.round(), Step::Idle { .. }));
    world.now = first.renew_at();
    assert!(matches!(
        world.round(),
        Step::IssueLeaf {
            why: "the serving certificate is due for renewal",
            ..
        }
    ));
    let secret = world.secret.as_ref().unwrap();
    assert_eq!(secret.bundle, bundle);
    assert_eq!(secret.generation, generation);
    assert_ne!(world.leaf(), &first);
}

#[test]
fn a_requested_ca_rotation_adds_first_switches_after_the_wait_then_drops() {
    let mut world = World::new(policy());
    world.settle(3);
    let old_ca = world.secret.as_ref().unwrap().bundle[0].clone();
    world.secret_mut().rotate = Some(Rotate::Ca);

    assert_eq!(
        world.round(),
        Step::StageCa {
            why: "rotation requested"
        }
    );
    let secret = world.secret.as_ref().unwrap();
    assert_eq!(secret.bundle.len(), 2);
    assert_eq!(secret.rotate, None, "the request is consumed");
    assert_eq!(secret.generation, 2);
    assert!(
        world.leaf().signed_by(&old_ca),
        "the old certificate keeps serving"
    );

    // The configurations carry both now; the switch waits `wait`.
    let since = world.now;
    assert_eq!(
        world.round(),
        Step::Idle {
            at: Some(since + MINUTE),
            waiting_for: Some("the new CA to settle in the webhook configurations")
        }
    );
    world.now += MINUTE;
    assert!(matches!(
        world.round(),
        Step::IssueLeaf {
            why: "switch to the new CA",
            ..
        }
    ));
    let new_ca = world.secret.as_ref().unwrap().bundle[1].clone();
    assert!(world.leaf().signed_by(&new_ca));
    assert_eq!(world.secret.as_ref().unwrap().bundle.len(), 2);

    // The old CA goes `wait` after the switch (and the second the
    // certificate's time was rounded down by).
    let switched = world.leaf().issued();
    let second = Duration::from_secs(1);
    assert!(
        matches!(world.round(), Step::Idle { at: Some(at), .. } if at == switched + MINUTE + second)
    );
    world.now += MINUTE;
    assert!(matches!(world.round(), Step::Idle { .. }));
    world.now += second;
    assert_eq!(world.round(), Step::DropOldCas);
    let secret = world.secret.as_ref().unwrap();
    assert_eq!(secret.bundle, vec![new_ca]);
    assert_eq!(secret.generation, 3);
    assert!(matches!(world.round(), Step::Idle { .. }));
}

#[test]
fn the_switch_waits_for_the_configurations_however_long() {
    let mut world = World::new(policy());
    world.settle(3);
    world.secret_mut().rotate = Some(Rotate::Ca);
    world.round();
    // The API server never got the new bundle (say the RBAC is missing).
    world.configured.truncate(1);
    world.covered_since = None;
    world.now += 30 * DAY;
    let step = plan(world.secret.as_ref(), &world.policy, world.now, None);
    assert_eq!(
        step,
        Step::Idle {
            at: None,
            waiting_for: Some("the webhook configurations to carry the new CA")
        }
    );
    // Past its expiry the old certificate is worth nothing: issue anyway.
    world.now = world.leaf().not_after;
    let step = plan(world.secret.as_ref(), &world.policy, world.now, None);
    assert!(matches!(step, Step::IssueLeaf { .. }), "{step:?}");
}

/// Twenty-five years in steps of a week (a minute after each write): every
/// certificate is renewed in time, every CA rotation keeps verifying.
#[test]
fn twenty_five_years_of_rotations_never_leave_a_gap() {
    let mut world = World::new(policy());
    let end = start() + 25 * 365 * DAY;
    while world.now < end {
        let step = world.round();
        let secret = world.secret.as_ref().unwrap();
        assert!(
            verifies(&world.configured, world.leaf(), world.now),
            "at {:?} after {step:?}",
            world.now
        );
        assert!(secret.bundle.len() <= 2);
        world.now += if matches!(step, Step::Idle { .. }) {
            7 * DAY
        } else {
            MINUTE
        };
    }
    let count = |prefix: &str| {
        world
            .writes
            .iter()
            .filter(|w| w.starts_with(prefix))
            .count()
    };
    // Renewed two thirds into each life: a CA every ~6.7 years, a
    // certificate every ~8 months.
    assert_eq!(count("Fresh"), 1);
    assert_eq!(count("StageCa"), 3, "{:?}", world.writes);
    assert_eq!(count("DropOldCas"), 3);
    assert!(
        (35..=40).contains(&count("IssueLeaf")),
        "{:?}",
        world.writes
    );
}

#[test]
fn extra_names_are_added_and_replicas_with_different_ones_converge() {
    let mut world = World::new(policy());
    world.settle(3);
    let mut other = policy();
    other.names.push("tollgate.example.com".into());
    world.policy = other;
    assert!(matches!(
        world.round(),
        Step::IssueLeaf {
            why: "names missing from the serving certificate",
            ..
        }
    ));
    // A replica without the extra name is content with the union.
    world.policy = policy();
    assert!(matches!(world.round(), Step::Idle { .. }));
    assert!(
        world
            .leaf()
            .names
            .contains(&"tollgate.example.com".to_owned())
    );
    // A requested certificate rotation narrows to the configured names.
    world.secret_mut().rotate = Some(Rotate::Cert);
    assert!(matches!(
        world.round(),
        Step::IssueLeaf {
            why: "rotation requested",
            ..
        }
    ));
    assert_eq!(world.leaf().names, policy().names);
    assert_eq!(world.secret.as_ref().unwrap().rotate, None);
}

#[test]
fn damaged_secrets_are_repaired_keeping_what_still_verifies() {
    let mut world = World::new(policy());
    world.settle(3);
    let ca = world.secret.as_ref().unwrap().bundle[0].clone();

    // The CA key is gone: a new CA is staged and the old certificate stays.
    world.secret_mut().signer = None;
    assert_eq!(
        world.round(),
        Step::StageCa {
            why: "no usable CA key"
        }
    );
    assert!(world.secret.as_ref().unwrap().bundle.contains(&ca));
    world.settle(10);

    // The serving certificate is gone: one from the signer, at once.
    world.secret_mut().leaf = None;
    assert!(matches!(world.round(), Step::IssueLeaf { .. }));

    // Nothing usable: start over.
    world.secret_mut().leaf = None;
    world.secret_mut().signer = None;
    assert!(matches!(world.plan(), Step::Fresh { .. }));
}

#[test]
fn a_higher_generation_seen_elsewhere_is_exceeded() {
    let fresh = Step::Fresh { why: "no Secret" };
    let material = apply(&fresh, None, &policy(), start(), 41).unwrap();
    assert_eq!(material.generation, 42);
    let same = apply(&Step::DropOldCas, Some(&material), &policy(), start(), 0).unwrap();
    assert_eq!(same.generation, 43);
}

#[test]
fn two_replicas_reading_the_same_secret_plan_the_same_step() {
    let mut world = World::new(policy());
    world.settle(3);
    world.now = world.leaf().renew_at();
    let a = world.plan();
    let b = world.plan();
    assert_eq!(a, b);
    // The winner writes; the loser reads again and finds nothing to do.
    world.round();
    assert!(matches!(world.plan(), Step::Idle { .. }));
}
