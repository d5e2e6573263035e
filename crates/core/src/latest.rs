//! [`Latest`]: the one newest-wins slot. A producer puts values in, a consumer takes the newest;
//! a value replaced before it was taken is counted as dropped, so no backlog ever builds.
//! Capture (the camera thread), net (each subscriber's next packet) and display (the window's
//! next frame) all hand values over through it. A value that is of no use without the one
//! before it (an inter-frame codec's delta) may wait behind that one instead, a few at most
//! ([`Latest::put_behind`]).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// A one-value slot where the newest value wins.
///
/// Buffers travel both ways: [`Latest::put`] returns a value the producer may refill (the one
/// it replaced, or a spare the consumer gave back with [`Latest::give_back`]), so a producer
/// and a consumer that swap buffers through the slot allocate nothing in their steady state.
#[derive(Debug)]
pub struct Latest<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct Inner<T> {
    value: Option<T>,
    /// Values waiting behind `value`, oldest first ([`Latest::put_behind`]).
    behind: VecDeque<T>,
    spare: Option<T>,
    dropped: u64,
    closed: bool,
    woken: bool,
    /// Producers in [`Latest::wait_empty`]: a take wakes them.
    emptying: usize,
}

/// What a wait on a [`Latest`] gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<T> {
    /// The newest value.
    Value(T),
    /// The deadline passed, or [`Latest::wake`] was called, with no value in the slot.
    Timeout,
    /// The slot is closed and empty: no value will come.
    Closed,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest::new()
    }
}

impl<T> Latest<T> {
    /// An empty, open slot.
    pub const fn new() -> Latest<T> {
        Latest {
            inner: Mutex::new(Inner {
                value: None,
                behind: VecDeque::new(),
                spare: None,
                dropped: 0,
                closed: false,
                woken: false,
                emptying: 0,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A panicking producer or consumer must not take the other side down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `value` in the slot. A value still there is replaced and counted as dropped.
    /// Returns a value for the producer to refill: the replaced one, else a spare given back.
    pub fn put(&self, value: T) -> Option<T> {
        self.put_counting(value, true)
    }

    /// Like [`Latest::put`], counting a replaced value as dropped only when `count` (a camera
    /// overwriting frames while nobody is watching drops nothing anyone missed).
    pub fn put_counting(&self, value: T, count: bool) -> Option<T> {
        let mut inner = self.lock();
        let queued = inner.behind.len() as u64;
        inner.behind.clear();
        let old = inner.value.replace(value);
        if old.is_some() && count {
            inner.dropped += 1 + queued;
        }
        let back = old.or_else(|| inner.spare.take());
        drop(inner);
        self.ready.notify_all();
        back
    }

    /// Puts `value` behind the values still waiting, in order, while fewer than `max` wait
    /// behind the first; else as [`Latest::put`], which replaces them all, each counted as
    /// dropped. Returns how many it dropped.
    pub fn put_behind(&self, value: T, max: usize) -> u64 {
        let mut inner = self.lock();
        let dropped = if inner.value.is_none() {
            inner.value = Some(value);
            0
        } else if inner.behind.len() < max {
            inner.behind.push_back(value);
            0
        } else {
            let dropped = 1 + inner.behind.len() as u64;
            inner.behind.clear();
            inner.value = Some(value);
            inner.dropped += dropped;
            dropped
        };
        drop(inner);
        self.ready.notify_all();
        dropped
    }

    /// Takes the value if there is one, without waiting.
    pub fn take(&self) -> Option<T> {
        let mut inner = self.lock();
        let v = inner.next();
        self.taken(inner);
        v
    }

    /// Wakes the producers waiting for the slot to empty, if a take emptied it.
    fn taken(&self, inner: MutexGuard<'_, Inner<T>>) {
        if inner.emptying > 0 && inner.value.is_none() {
            drop(inner);
            self.ready.notify_all();
        }
    }

    /// Waits until no value waits (the consumer took it), the slot is closed, or `deadline`
    /// passes; returns whether the slot is empty. A producer that would rather not replace
    /// values (and count them dropped) waits here before its next put.
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut inner = self.lock();
        inner.emptying += 1;
        let empty = loop {
            if inner.value.is_none() || inner.closed {
                break inner.value.is_none();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            inner = self
                .ready
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        inner.emptying -= 1;
        empty
    }

    /// Waits for a value until `deadline` (forever when `None`). A value put before the slot
    /// was closed is still handed out; [`Waited::Closed`] comes once the slot is closed and empty.
    pub fn wait(&self, deadline: Option<Instant>) -> Waited<T> {
        let mut inner = self.lock();
        loop {
            if let Some(v) = inner.next() {
                self.taken(inner);
                return Waited::Value(v);
            }
            if inner.closed {
                return Waited::Closed;
            }
            if std::mem::take(&mut inner.woken) {
                return Waited::Timeout;
            }
            inner = match deadline {
                None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Waited::Timeout;
                    }
                    self.ready
                        .wait_timeout(inner, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Makes the current (or next) wait return [`Waited::Timeout`] early when the slot is empty:
    /// the producer has news for the consumer that is not a value (an event to read elsewhere).
    pub fn wake(&self) {
        self.lock().woken = true;
        self.ready.notify_all();
    }

    /// Gives a buffer back for the producer's next [`Latest::put`] to return.
    pub fn give_back(&self, spare: T) {
        self.lock().spare = Some(spare);
    }

    /// Takes the buffer given back, if there is one, for the producer to fill before its next
    /// [`Latest::put`].
    pub fn take_spare(&self) -> Option<T> {
        self.lock().spare.take()
    }

    /// Closes the slot: waits return the value still there, then [`Waited::Closed`]. Idempotent.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Waits until a value is waiting (without taking it), the slot is closed, or `deadline`
    /// passes; returns whether a value is waiting.
    pub fn wait_full(&self, deadline: Instant) -> bool {
        let mut inner = self.lock();
        loop {
            if inner.value.is_some() || inner.closed {
                return inner.value.is_some();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .ready
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether [`Latest::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Values waiting to be taken: none, one, or more where some wait behind the first.
    pub fn waiting(&self) -> usize {
        let inner = self.lock();
        usize::from(inner.value.is_some()) + inner.behind.len()
    }

    /// Values replaced before they were taken, over the slot's life.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

impl<T> Inner<T> {
    /// The first value waiting; the one behind it moves up.
    fn next(&mut self) -> Option<T> {
        let v = self.value.take();
        self.value = self.behind.pop_front();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_producer_waits_for_the_slot_to_empty_and_a_take_wakes_it() {
        let slot = Arc::new(Latest::new());
        assert!(slot.wait_empty(Instant::now()));
        slot.put(1);
        assert!(!slot.wait_empty(Instant::now() + Duration::from_millis(10)));
        let taker = Arc::clone(&slot);
        let t = std::thread::spawn(move || {
            while taker.take().is_none() {
                std::thread::yield_now();
            }
        });
        assert!(slot.wait_empty(Instant::now() + Duration::from_secs(10)));
        t.join().unwrap();
        assert_eq!(slot.dropped(), 0);
    }

    #[test]
    fn the_newest_value_wins_and_replaced_ones_are_counted() {
        let slot = Latest::new();
        assert_eq!(slot.put(1), None);
        assert_eq!(
            slot.put(2),
            Some(1),
            "the replaced value comes back for reuse"
        );
        assert_eq!(slot.put_counting(3, false), Some(2));
        assert_eq!(slot.dropped(), 1, "only the counted replacement is a drop");
        assert_eq!(slot.take(), Some(3));
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn values_put_behind_wait_in_order_up_to_a_bound_and_a_put_replaces_them_all() {
        let slot = Latest::new();
        assert_eq!(slot.put_behind(1, 2), 0);
        assert_eq!(slot.put_behind(2, 2), 0);
        assert_eq!(slot.put_behind(3, 2), 0);
        assert_eq!(slot.waiting(), 3);
        assert_eq!(slot.take(), Some(1));
        assert_eq!(slot.put_behind(4, 2), 0);
        assert_eq!(slot.dropped(), 0);
        assert_eq!(
            slot.put_behind(5, 2),
            3,
            "two behind already: all go, the new one waits alone"
        );
        assert_eq!(slot.dropped(), 3);
        assert_eq!(slot.wait(None), Waited::Value(5));
        assert_eq!(slot.take(), None);
        slot.put_behind(6, 2);
        slot.put_behind(7, 2);
        assert_eq!(slot.put(8), Some(6), "a put replaces every one waiting");
        assert_eq!(slot.dropped(), 5);
        assert_eq!(slot.take(), Some(8));
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn a_given_back_buffer_is_returned_by_the_next_put() {
        let slot = Latest::new();
        slot.give_back(vec![0u8; 16]);
        let spare = slot.put(vec![1u8; 4]).expect("the spare");
        assert_eq!(spare.len(), 16);
    }

    #[test]
    fn a_value_put_before_close_is_still_handed_out() {
        let slot = Latest::new();
        slot.put(7);
        slot.close();
        assert_eq!(slot.wait(None), Waited::Value(7));
        assert_eq!(slot.wait(None), Waited::Closed);
    }

    #[test]
    fn wait_times_out_and_wakes() {
        let slot: Latest<u8> = Latest::new();
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(slot.wait(Some(soon)), Waited::Timeout);
        slot.wake();
        assert_eq!(
            slot.wait(None),
            Waited::Timeout,
            "a wake ends a wait with no deadline"
        );
    }

    #[test]
    fn a_waiting_consumer_gets_a_value_from_another_thread() {
        let slot = Arc::new(Latest::new());
        let producer = Arc::clone(&slot);
        let t = std::thread::spawn(move || producer.put(42u32));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            slot.wait(Some(deadline)),
            Waited::Value(42),
            "waited 10 s for the value"
        );
        t.join().unwrap();
    }

    #[test]
    fn wait_full_sees_a_value_without_taking_it() {
        let slot = Arc::new(Latest::new());
        assert!(!slot.wait_full(Instant::now() + Duration::from_millis(5)));
        let producer = Arc::clone(&slot);
        let t = std::thread::spawn(move || producer.put(5u8));
        assert!(
            slot.wait_full(Instant::now() + Duration::from_secs(10)),
            "waited 10 s"
        );
        assert_eq!(slot.take(), Some(5), "still there");
        t.join().unwrap();
        slot.close();
        assert!(
            !slot.wait_full(Instant::now() + Duration::from_secs(10)),
            "closed: no wait"
        );
    }
}
