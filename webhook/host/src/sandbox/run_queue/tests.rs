use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::*;

const A: Lane = Lane(1);
const B: Lane = Lane(2);

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

fn later() -> Instant {
    soon(10_000)
}

fn waiters(queue: &RunQueue) -> usize {
    queue.lock().waiting.values().map(VecDeque::len).sum()
}

/// Blocks until `n` threads wait in `queue`.
fn until_waiting(queue: &RunQueue, n: usize) {
    while waiters(queue) < n {
        thread::sleep(Duration::from_millis(1));
    }
}

/// A thread that takes a slot for `lane`, reports `name` and holds the
/// slot until told to drop it.
fn contender(
    queue: &Arc<RunQueue>,
    lane: Lane,
    name: &'static str,
    order: &mpsc::Sender<&'static str>,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (queue, order) = (queue.clone(), order.clone());
    let (release, released) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let slot = queue
            .acquire(lane, later())
            .expect("a slot before the deadline");
        order.send(name).unwrap();
        let _ = released.recv();
        drop(slot);
    });
    (release, handle)
}

#[test]
fn slots_are_taken_at_once_and_the_next_waits_until_its_deadline() {
    let queue = RunQueue::new(2, Counter::default());
    let one = queue.acquire(A, later()).unwrap();
    let _two = queue.acquire(B, later()).unwrap();
    let started = Instant::now();
    assert!(queue.acquire(A, soon(30)).is_none());
    assert!(started.elapsed() >= Duration::from_millis(30));
    // The timed-out waiter left no trace: the next release frees the slot.
    assert_eq!(waiters(&queue), 0);
    drop(one);
    assert_eq!(queue.lock().free, 1);
    assert!(queue.acquire(A, soon(0)).is_some());
}

#[test]
fn at_least_one_slot() {
    let queue = RunQueue::new(0, Counter::default());
    assert!(queue.acquire(A, later()).is_some());
}

#[test]
fn a_freed_slot_goes_to_the_lanes_in_turn() {
    let queue = RunQueue::new(1, Counter::default());
    let (order_tx, order) = mpsc::channel();
    let holder = queue.acquire(A, later()).unwrap();
    let (a2, t_a2) = contender(&queue, A, "a2", &order_tx);
    until_waiting(&queue, 1);
    let (a3, t_a3) = contender(&queue, A, "a3", &order_tx);
    until_waiting(&queue, 2);
    let (b1, t_b1) = contender(&queue, B, "b1", &order_tx);
    until_waiting(&queue, 3);
    drop(holder);
    // A's oldest first (A was in turn first), then B before A's second.
    assert_eq!(order.recv().unwrap(), "a2");
    a2.send(()).unwrap();
    assert_eq!(order.recv().unwrap(), "b1");
    b1.send(()).unwrap();
    assert_eq!(order.recv().unwrap(), "a3");
    a3.send(()).unwrap();
    for t in [t_a2, t_a3, t_b1] {
        t.join().unwrap();
    }
    assert_eq!(queue.lock().free, 1);
}

#[test]
fn sharing_keeps_the_slot_when_no_other_lane_waits() {
    let queue = RunQueue::new(1, Counter::default());
    let (order_tx, order) = mpsc::channel();
    let mut slot = queue.acquire(A, later()).unwrap();
    assert!(slot.share(later()));
    // A waiter of the same lane: the running evaluation finishes first.
    let (a2, t_a2) = contender(&queue, A, "a2", &order_tx);
    until_waiting(&queue, 1);
    let started = Instant::now();
    assert!(slot.share(later()));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(order.try_recv().is_err(), "the lane-mate must still wait");
    drop(slot);
    assert_eq!(order.recv().unwrap(), "a2");
    a2.send(()).unwrap();
    t_a2.join().unwrap();
}

#[test]
fn sharing_hands_the_slot_to_another_lane_and_gets_it_back() {
    let queue = RunQueue::new(1, Counter::default());
    let (order_tx, order) = mpsc::channel();
    let mut slot = queue.acquire(A, later()).unwrap();
    let (b1, t_b1) = contender(&queue, B, "b1", &order_tx);
    until_waiting(&queue, 1);
    let sharer = thread::spawn(move || {
        let kept = slot.share(later());
        (kept, slot)
    });
    assert_eq!(order.recv().unwrap(), "b1");
    until_waiting(&queue, 1);
    b1.send(()).unwrap();
    let (kept, slot) = sharer.join().unwrap();
    assert!(kept);
    t_b1.join().unwrap();
    assert_eq!(queue.lock().free, 0, "the sharer holds the one slot again");
    drop(slot);
    assert_eq!(queue.lock().free, 1);
}

#[test]
fn a_guest_that_shared_goes_before_its_lane_mates() {
    let queue = RunQueue::new(1, Counter::default());
    let (order_tx, order) = mpsc::channel();
    let mut slot = queue.acquire(A, later()).unwrap();
    let (a2, t_a2) = contender(&queue, A, "a2", &order_tx);
    until_waiting(&queue, 1);
    let (b1, t_b1) = contender(&queue, B, "b1", &order_tx);
    until_waiting(&queue, 2);
    let sharer = {
        let order_tx = order_tx.clone();
        thread::spawn(move || {
            assert!(slot.share(later()));
            order_tx.send("a1 again").unwrap();
            drop(slot);
        })
    };
    assert_eq!(order.recv().unwrap(), "b1");
    until_waiting(&queue, 2);
    b1.send(()).unwrap();
    assert_eq!(order.recv().unwrap(), "a1 again");
    sharer.join().unwrap();
    assert_eq!(order.recv().unwrap(), "a2");
    a2.send(()).unwrap();
    for t in [t_a2, t_b1] {
        t.join().unwrap();
    }
}

#[test]
fn a_share_past_the_deadline_gives_the_slot_up_once() {
    let queue = RunQueue::new(1, Counter::default());
    let (order_tx, order) = mpsc::channel();
    let mut slot = queue.acquire(A, later()).unwrap();
    let (b1, t_b1) = contender(&queue, B, "b1", &order_tx);
    until_waiting(&queue, 1);
    assert!(!slot.share(soon(30)), "b1 holds the slot past the deadline");
    assert!(!slot.share(later()), "a slot given up stays given up");
    assert_eq!(order.recv().unwrap(), "b1");
    drop(slot);
    assert_eq!(
        queue.lock().free,
        0,
        "dropping a given-up slot frees nothing"
    );
    b1.send(()).unwrap();
    t_b1.join().unwrap();
    assert_eq!(queue.lock().free, 1);
    assert_eq!(waiters(&queue), 0);
    assert_eq!(queue.waits.get(), 2, "b1 waited once, the sharer once");
}

#[test]
fn lanes_are_marked_long_and_short() {
    let queue = RunQueue::new(1, Counter::default());
    assert!(!queue.is_long(A));
    queue.mark(A, true);
    assert!(queue.is_long(A));
    assert!(!queue.is_long(B));
    queue.mark(A, false);
    assert!(!queue.is_long(A));
}
