//! FIFO queues of threads, linked through the threads themselves: the run
//! queues and the sender/receiver/waiter queues of endpoints and
//! notifications. A thread is in at most one queue at a time (its state says
//! which), so one link per thread suffices and no queue ever allocates.

#![forbid(unsafe_code)]

use crate::frames::Pfn;

/// Access to the per-thread link field.
pub trait Links {
    /// The thread after `thread` in its queue.
    fn next(&self, thread: Pfn) -> Option<Pfn>;
    /// Sets the thread after `thread`.
    fn set_next(&mut self, thread: Pfn, next: Option<Pfn>);
}

/// A queue of threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    head: Option<Pfn>,
    tail: Option<Pfn>,
}

impl Queue {
    /// An empty queue.
    pub const EMPTY: Queue = Queue {
        head: None,
        tail: None,
    };

    /// Whether no thread waits.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The first thread, without removing it.
    pub fn front(&self) -> Option<Pfn> {
        self.head
    }

    /// Appends `thread`, which must be in no queue.
    pub fn push_back(&mut self, links: &mut impl Links, thread: Pfn) {
        links.set_next(thread, None);
        match self.tail {
            Some(tail) => links.set_next(tail, Some(thread)),
            None => self.head = Some(thread),
        }
        self.tail = Some(thread);
    }

    /// Removes and returns the first thread.
    pub fn pop_front(&mut self, links: &mut impl Links) -> Option<Pfn> {
        let head = self.head?;
        self.head = links.next(head);
        if self.head.is_none() {
            self.tail = None;
        }
        links.set_next(head, None);
        Some(head)
    }

    /// Removes the first thread, `head`, whose link the caller has read:
    /// `next` is the thread after it. False (and nothing changes) when
    /// `head` is not first. For callers that hold the thread already.
    pub fn pop_known_front(&mut self, head: Pfn, next: Option<Pfn>) -> bool {
        if self.head != Some(head) {
            return false;
        }
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
        true
    }

    /// Makes `thread` (whose link must be empty) the only entry of an
    /// empty queue; false (and nothing changes) when the queue is not empty.
    pub fn push_into_empty(&mut self, thread: Pfn) -> bool {
        if !self.is_empty() {
            return false;
        }
        self.head = Some(thread);
        self.tail = Some(thread);
        true
    }

    /// Removes `thread` wherever it is; false if it was not queued here.
    pub fn remove(&mut self, links: &mut impl Links, thread: Pfn) -> bool {
        let mut previous: Option<Pfn> = None;
        let mut cursor = self.head;
        while let Some(current) = cursor {
            let next = links.next(current);
            if current == thread {
                match previous {
                    Some(previous) => links.set_next(previous, next),
                    None => self.head = next,
                }
                if self.tail == Some(thread) {
                    self.tail = previous;
                }
                links.set_next(thread, None);
                return true;
            }
            previous = Some(current);
            cursor = next;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Threads([Option<Pfn>; 16]);

    impl Links for Threads {
        fn next(&self, thread: Pfn) -> Option<Pfn> {
            self.0[thread.0 as usize]
        }
        fn set_next(&mut self, thread: Pfn, next: Option<Pfn>) {
            self.0[thread.0 as usize] = next;
        }
    }

    #[test]
    fn fifo_order_and_removal() {
        let mut threads = Threads([None; 16]);
        let mut queue = Queue::EMPTY;
        for t in 1..=3 {
            queue.push_back(&mut threads, Pfn(t));
        }
        assert!(queue.remove(&mut threads, Pfn(2)));
        assert!(!queue.remove(&mut threads, Pfn(2)));
        assert_eq!(queue.pop_front(&mut threads), Some(Pfn(1)));
        assert_eq!(queue.pop_front(&mut threads), Some(Pfn(3)));
        assert_eq!(queue.pop_front(&mut threads), None);
        assert!(queue.is_empty());
    }

    #[test]
    fn known_front_and_empty_pushes_agree_with_the_linked_operations() {
        let mut threads = Threads([None; 16]);
        let mut queue = Queue::EMPTY;
        assert!(queue.push_into_empty(Pfn(4)));
        assert!(!queue.push_into_empty(Pfn(5)), "not empty any more");
        queue.push_back(&mut threads, Pfn(6));
        assert!(!queue.pop_known_front(Pfn(6), None), "6 is not first");
        let next = threads.next(Pfn(4));
        assert_eq!(next, Some(Pfn(6)));
        assert!(queue.pop_known_front(Pfn(4), next));
        assert_eq!(queue.pop_front(&mut threads), Some(Pfn(6)));
        assert!(queue.is_empty());
        assert!(queue.push_into_empty(Pfn(7)));
        assert!(queue.pop_known_front(Pfn(7), None));
        assert!(queue.is_empty() && queue.push_into_empty(Pfn(8)));
    }

    /// The queue behaves exactly like a `VecDeque` model under random
    /// pushes, pops and removals of threads not already queued.
    #[test]
    fn matches_a_model_under_random_operations() {
        let mut threads = Threads([None; 16]);
        let mut queue = Queue::EMPTY;
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut seed = 0xDEAD_BEEF_u64;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let thread = seed % 16;
            match (seed >> 8) % 3 {
                0 if !model.contains(&thread) => {
                    queue.push_back(&mut threads, Pfn(thread));
                    model.push_back(thread);
                }
                1 => assert_eq!(
                    queue.pop_front(&mut threads).map(|p| p.0),
                    model.pop_front()
                ),
                _ => {
                    let expected = model
                        .iter()
                        .position(|&t| t == thread)
                        .map(|i| model.remove(i));
                    assert_eq!(queue.remove(&mut threads, Pfn(thread)), expected.is_some());
                }
            }
            assert_eq!(queue.front().map(|p| p.0), model.front().copied());
        }
    }
}
