//! The Input session: typed events from a keyboard and an absolute pointer,
//! fetched in batches from a bounded queue.
//!
//! A driver (virtio_input) or the compositor provides it. Events are typed
//! ([`Event`]): key press and release with the evdev key code, absolute
//! pointer motion, button press and release. The provider keeps at most
//! [`QUEUE_CAPACITY`] events per session in an [`EventQueue`]: a client that
//! never reads cannot make its server grow; when the queue is full, motion
//! is merged into the last motion and other events are dropped and counted
//! (the next batch reports how many). [`EvdevDecoder`] turns raw evdev
//! triples (what virtio-input delivers) into these events, refusing codes
//! and values it does not know instead of guessing.

use crate::SessionError;
use crate::server::Call;
use alloc::vec::Vec;
use arbor::abi::{CapSlot, ObjectKind, info};
use arbor::{slots, sys};
use serde::{Deserialize, Serialize};

/// The service name routes and announcements use.
pub const SERVICE: &str = "Input";

/// Events a session holds before it drops new ones.
pub const QUEUE_CAPACITY: usize = 64;

/// Events one reply carries at most (a reply fits one IPC payload).
pub const BATCH_MAX: usize = 32;

/// A key, by its Linux evdev code (`KEY_A` = 30, ...). Codes at or above
/// [`KeyCode::LIMIT`] do not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCode(pub u16);

impl KeyCode {
    /// One past the highest evdev key code (`KEY_MAX` + 1).
    pub const LIMIT: u16 = 0x300;
    /// Escape.
    pub const ESCAPE: KeyCode = KeyCode(1);
    /// Backspace.
    pub const BACKSPACE: KeyCode = KeyCode(14);
    /// Tab.
    pub const TAB: KeyCode = KeyCode(15);
    /// Enter.
    pub const ENTER: KeyCode = KeyCode(28);
    /// Left shift.
    pub const LEFT_SHIFT: KeyCode = KeyCode(42);
    /// Right shift.
    pub const RIGHT_SHIFT: KeyCode = KeyCode(54);
    /// Space.
    pub const SPACE: KeyCode = KeyCode(57);

    /// A checked key code.
    pub fn new(code: u16) -> Result<Self, SessionError> {
        if code >= Self::LIMIT {
            return Err(SessionError::BadRequest);
        }
        Ok(KeyCode(code))
    }
}

/// A pointer button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Button {
    /// `BTN_LEFT` (272).
    Left,
    /// `BTN_RIGHT` (273).
    Right,
    /// `BTN_MIDDLE` (274).
    Middle,
}

impl Button {
    /// The button an evdev code names.
    pub fn from_evdev(code: u16) -> Option<Self> {
        match code {
            272 => Some(Self::Left),
            273 => Some(Self::Right),
            274 => Some(Self::Middle),
            _ => None,
        }
    }
}

/// One input event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A key went down.
    Press(KeyCode),
    /// A key went up.
    Release(KeyCode),
    /// A button went down.
    ButtonPress(Button),
    /// A button went up.
    ButtonRelease(Button),
    /// The pointer is at (`x`, `y`): screen pixels from a driver; relative
    /// to the receiving view from the compositor (may be negative).
    Motion {
        /// Column.
        x: i32,
        /// Row.
        y: i32,
    },
    /// The receiving client gained (`true`) or lost input focus.
    Focus(bool),
}

/// An Input session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputRequest {
    /// Signal the notification that comes with this message when events wait.
    SetNotification,
    /// Up to `max` (at most [`BATCH_MAX`]) waiting events.
    Events {
        /// Most events wanted.
        max: u16,
    },
}

/// A batch of events and how many were dropped since the last batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// Events the queue refused since the previous batch.
    pub dropped: u32,
}

/// An Input session's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputReply {
    /// Done.
    Done,
    /// Waiting events.
    Events(Batch),
    /// Refused.
    Error(SessionError),
}

/// Decodes a batch from untrusted bytes (a client's view of a reply):
/// more than [`BATCH_MAX`] events or an impossible key code is refused.
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, SessionError> {
    let reply: InputReply = crate::decode(bytes)?;
    let InputReply::Events(batch) = reply else {
        return Err(SessionError::BadRequest);
    };
    if batch.events.len() > BATCH_MAX {
        return Err(SessionError::BadRequest);
    }
    for event in &batch.events {
        if let Event::Press(code) | Event::Release(code) = event {
            KeyCode::new(code.0)?;
        }
    }
    Ok(batch)
}

/// A bounded FIFO of events: never holds more than [`QUEUE_CAPACITY`].
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    events: alloc::collections::VecDeque<Event>,
    dropped: u32,
}

impl EventQueue {
    /// An empty queue (allocates on first use, at most once).
    pub const fn new() -> Self {
        EventQueue {
            events: alloc::collections::VecDeque::new(),
            dropped: 0,
        }
    }

    /// Queues `event`. When full, a motion replaces the newest motion if
    /// that is the last event (a pointer position is only worth its latest
    /// value); anything else is dropped and counted. Returns whether the
    /// event was kept.
    pub fn push(&mut self, event: Event) -> bool {
        if let (Event::Motion { .. }, Some(Event::Motion { .. })) = (event, self.events.back())
            && let Some(last) = self.events.back_mut()
        {
            *last = event;
            return true;
        }
        if self.events.len() >= QUEUE_CAPACITY || self.events.try_reserve(1).is_err() {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.events.push_back(event);
        true
    }

    /// Takes up to `max` (clamped to [`BATCH_MAX`]) events, oldest first,
    /// with the drop count since the last batch.
    pub fn take(&mut self, max: u16) -> Batch {
        let count = usize::from(max).min(BATCH_MAX).min(self.events.len());
        let events = self.events.drain(..count).collect();
        Batch {
            events,
            dropped: core::mem::take(&mut self.dropped),
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// evdev event types virtio-input uses.
pub mod evdev {
    /// End of a packet of events.
    pub const EV_SYN: u16 = 0;
    /// Keys and buttons; value 1 press, 0 release, 2 auto-repeat.
    pub const EV_KEY: u16 = 1;
    /// Absolute axes; code 0 is X, 1 is Y.
    pub const EV_ABS: u16 = 3;
    /// The largest value a virtio tablet axis reports.
    pub const ABS_MAX: u32 = 32767;
}

/// What a raw evdev triple could not be turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// An event type this decoder does not handle (EV_REL, EV_MSC, ...).
    UnknownType(u16),
    /// A key code at or above [`KeyCode::LIMIT`], or an unknown axis.
    UnknownCode(u16),
    /// A key value other than 0, 1, 2, or an axis value above the maximum.
    BadValue(u32),
}

/// Turns evdev triples into [`Event`]s: keys at once, absolute axes
/// gathered until EV_SYN and then reported as one motion scaled from
/// `0..=ABS_MAX` to the screen.
#[derive(Clone, Copy, Debug)]
pub struct EvdevDecoder {
    width: u32,
    height: u32,
    x: u32,
    y: u32,
    moved: bool,
}

impl EvdevDecoder {
    /// A decoder for a screen of `width` x `height` pixels.
    pub const fn new(width: u32, height: u32) -> Self {
        EvdevDecoder {
            width,
            height,
            x: 0,
            y: 0,
            moved: false,
        }
    }

    fn scale(value: u32, side: u32) -> i32 {
        let scaled =
            u64::from(value) * u64::from(side.saturating_sub(1)) / u64::from(evdev::ABS_MAX);
        i32::try_from(scaled).unwrap_or(i32::MAX)
    }

    /// One triple in; an event out when it completes one.
    pub fn feed(&mut self, kind: u16, code: u16, value: u32) -> Result<Option<Event>, DecodeError> {
        match kind {
            evdev::EV_SYN => {
                if core::mem::take(&mut self.moved) {
                    return Ok(Some(Event::Motion {
                        x: Self::scale(self.x, self.width),
                        y: Self::scale(self.y, self.height),
                    }));
                }
                Ok(None)
            }
            evdev::EV_KEY => {
                if code >= KeyCode::LIMIT {
                    return Err(DecodeError::UnknownCode(code));
                }
                let pressed = match value {
                    0 => false,
                    1 | 2 => true,
                    other => return Err(DecodeError::BadValue(other)),
                };
                Ok(Some(match (Button::from_evdev(code), pressed) {
                    (Some(button), true) => Event::ButtonPress(button),
                    (Some(button), false) => Event::ButtonRelease(button),
                    (None, true) => Event::Press(KeyCode(code)),
                    (None, false) => Event::Release(KeyCode(code)),
                }))
            }
            evdev::EV_ABS => {
                if value > evdev::ABS_MAX {
                    return Err(DecodeError::BadValue(value));
                }
                match code {
                    0 => self.x = value,
                    1 => self.y = value,
                    other => return Err(DecodeError::UnknownCode(other)),
                }
                self.moved = true;
                Ok(None)
            }
            other => Err(DecodeError::UnknownType(other)),
        }
    }
}

/// An Input server's session with one client: its bounded queue and the
/// notification the client handed over. Both input servers (`virtio_input`
/// and the scripted `input_script`) keep one per session and answer its
/// requests here.
#[derive(Default)]
pub struct Listener {
    events: EventQueue,
    notification: Option<CapSlot>,
}

impl Listener {
    /// Answers the client's request: events from its queue, or its
    /// notification (a capability that must name a notification, else
    /// `BadRequest` and the capability is dropped).
    pub fn handle(&mut self, call: &mut Call<'_>) -> InputReply {
        match call.request::<InputRequest>() {
            Ok(InputRequest::Events { max }) => InputReply::Events(self.events.take(max)),
            Ok(InputRequest::SetNotification) => match call.take_cap() {
                Ok(Some(cap)) => {
                    let is_notification = sys::info(info::CAP_KIND, u64::from(cap.0))
                        .is_ok_and(|(kind, _)| kind == ObjectKind::Notification as u64);
                    if !is_notification {
                        slots::release(cap);
                        return InputReply::Error(SessionError::BadRequest);
                    }
                    if let Some(old) = self.notification.replace(cap) {
                        slots::release(old);
                    }
                    InputReply::Done
                }
                Ok(None) => InputReply::Error(SessionError::BadRequest),
                Err(error) => InputReply::Error(error),
            },
            Err(error) => InputReply::Error(error),
        }
    }

    /// Queues `events` for the client (by [`EventQueue::push`]'s rules: a
    /// full queue drops and counts what does not fit) and signals it.
    pub fn deliver(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.events.push(event);
        }
        if let Some(notification) = self.notification {
            let _ = sys::signal(notification);
        }
    }

    /// Releases what the session held (its notification).
    pub fn close(mut self) {
        if let Some(notification) = self.notification.take() {
            slots::release(notification);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::encode;

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let mut queue = EventQueue::new();
        for code in 0..(QUEUE_CAPACITY as u16 + 10) {
            queue.push(Event::Press(KeyCode(code)));
        }
        assert_eq!(queue.len(), QUEUE_CAPACITY);
        let batch = queue.take(u16::MAX);
        assert_eq!(batch.events.len(), BATCH_MAX);
        assert_eq!(batch.dropped, 10);
        assert_eq!(batch.events[0], Event::Press(KeyCode(0)));
        assert_eq!(queue.take(5).dropped, 0);
    }

    #[test]
    fn motion_floods_collapse_into_the_latest_position() {
        let mut queue = EventQueue::new();
        for x in 0..10_000 {
            assert!(queue.push(Event::Motion { x, y: 1 }));
        }
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.take(8).events, [Event::Motion { x: 9999, y: 1 }]);
    }

    #[test]
    fn evdev_keys_buttons_and_axes_decode() {
        let mut decoder = EvdevDecoder::new(1280, 800);
        assert_eq!(
            decoder.feed(evdev::EV_KEY, 30, 1),
            Ok(Some(Event::Press(KeyCode(30))))
        );
        assert_eq!(
            decoder.feed(evdev::EV_KEY, 30, 0),
            Ok(Some(Event::Release(KeyCode(30))))
        );
        assert_eq!(
            decoder.feed(evdev::EV_KEY, 272, 1),
            Ok(Some(Event::ButtonPress(Button::Left)))
        );
        assert_eq!(decoder.feed(evdev::EV_ABS, 0, 32767), Ok(None));
        assert_eq!(decoder.feed(evdev::EV_ABS, 1, 0), Ok(None));
        assert_eq!(
            decoder.feed(evdev::EV_SYN, 0, 0),
            Ok(Some(Event::Motion { x: 1279, y: 0 }))
        );
        assert_eq!(decoder.feed(evdev::EV_SYN, 0, 0), Ok(None));
    }

    #[test]
    fn evdev_garbage_is_refused_by_name() {
        let mut decoder = EvdevDecoder::new(0, 0);
        assert_eq!(decoder.feed(2, 0, 1), Err(DecodeError::UnknownType(2)));
        assert_eq!(
            decoder.feed(evdev::EV_KEY, 0x300, 1),
            Err(DecodeError::UnknownCode(0x300))
        );
        assert_eq!(
            decoder.feed(evdev::EV_KEY, 30, 7),
            Err(DecodeError::BadValue(7))
        );
        assert_eq!(
            decoder.feed(evdev::EV_ABS, 0, 40000),
            Err(DecodeError::BadValue(40000))
        );
        assert_eq!(
            decoder.feed(evdev::EV_ABS, 9, 1),
            Err(DecodeError::UnknownCode(9))
        );
        // A zero-sized screen still scales without dividing by zero.
        decoder.feed(evdev::EV_ABS, 0, 32767).unwrap();
        assert_eq!(
            decoder.feed(evdev::EV_SYN, 0, 0),
            Ok(Some(Event::Motion { x: 0, y: 0 }))
        );
    }

    #[test]
    fn batches_round_trip_and_oversized_ones_are_refused() {
        let mut queue = EventQueue::new();
        queue.push(Event::Press(KeyCode::ENTER));
        queue.push(Event::Focus(true));
        let reply = InputReply::Events(queue.take(BATCH_MAX as u16));
        let mut buffer = [0u8; 512];
        let len = encode(&reply, &mut buffer).unwrap();
        let InputReply::Events(expected) = reply else {
            unreachable!()
        };
        assert_eq!(decode_batch(&buffer[..len]), Ok(expected));
        let too_many = InputReply::Events(Batch {
            events: std::vec![Event::Focus(false); BATCH_MAX + 1],
            dropped: 0,
        });
        let len = encode(&too_many, &mut buffer).unwrap();
        assert_eq!(decode_batch(&buffer[..len]), Err(SessionError::BadRequest));
        let bad_key = InputReply::Events(Batch {
            events: std::vec![Event::Press(KeyCode(0xffff))],
            dropped: 0,
        });
        let len = encode(&bad_key, &mut buffer).unwrap();
        assert_eq!(decode_batch(&buffer[..len]), Err(SessionError::BadRequest));
        // A full batch fits one payload.
        let full = InputReply::Events(Batch {
            events: std::vec![Event::Motion { x: i32::MIN, y: i32::MAX }; BATCH_MAX],
            dropped: u32::MAX,
        });
        assert!(encode(&full, &mut [0u8; arbor::abi::PAYLOAD_MAX]).is_ok());
    }

    #[test]
    fn fuzzed_batches_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut bytes = [0u8; 48];
            for byte in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = (state % 7) as u8;
            }
            let len = (state % 48) as usize;
            if let Ok(batch) = decode_batch(&bytes[..len]) {
                assert!(batch.events.len() <= BATCH_MAX);
            }
            let _ = crate::decode::<InputRequest>(&bytes[..len]);
        }
    }
}
