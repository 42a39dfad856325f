//! The i8254 PIT's ports: the only place pit_timer touches hardware.
//! Port numbers and the mode byte follow the Intel 8254 datasheet
//! ("Control Word Format"): 0x40 is channel 0's counter, 0x43 the mode
//! register.

use arbor::abi::{CapSlot, slot};
use arbor::sys;

/// Channel 0's counter.
const CHANNEL_0: u16 = 0x40;
/// The mode/command register.
const COMMAND: u16 = 0x43;
/// The first port and how many the driver claims (0x40..=0x43).
pub const FIRST_PORT: u16 = CHANNEL_0;
/// Ports claimed.
pub const PORT_COUNT: u16 = 4;
/// Control word fields (bits 7–6 counter, 5–4 access, 3–1 mode, 0 BCD).
const SELECT_COUNTER_0: u8 = 0b00 << 6;
const ACCESS_LOW_THEN_HIGH: u8 = 0b11 << 4;
const MODE_2_RATE_GENERATOR: u8 = 0b010 << 1;
const BINARY_COUNT: u8 = 0;
/// Channel 0, low byte then high byte, mode 2 (rate generator), binary.
const CHANNEL_0_RATE_GENERATOR: u8 =
    SELECT_COUNTER_0 | ACCESS_LOW_THEN_HIGH | MODE_2_RATE_GENERATOR | BINARY_COUNT;
const _: () = assert!(CHANNEL_0_RATE_GENERATOR == 0x34);

/// Proof that this Pd may use the PIT's ports: only [`Pit::enable`] makes
/// one, after the kernel allowed the ports of the IoPort session opened for
/// exactly [`FIRST_PORT`] and [`PORT_COUNT`].
pub struct Pit {
    _ports: CapSlot,
}

impl Pit {
    /// Allows this Pd the ports of `ports` (the IoPort session's capability,
    /// which must cover [`FIRST_PORT`] and [`PORT_COUNT`]).
    pub fn enable(ports: CapSlot) -> Result<Self, arbor::abi::Error> {
        sys::enable_io_ports(ports, slot::OWN_PD)?;
        Ok(Pit { _ports: ports })
    }

    /// Makes channel 0 interrupt every `divisor` input clocks, for good.
    pub fn start_periodic(&self, divisor: u16) {
        let [low, high] = divisor.to_le_bytes();
        self.write(COMMAND, CHANNEL_0_RATE_GENERATOR);
        self.write(CHANNEL_0, low);
        self.write(CHANNEL_0, high);
    }

    fn write(&self, port: u16, value: u8) {
        // SAFETY: `out` to the PIT changes no memory of this program, only
        // the timer's state. `self` exists only after the kernel enabled the
        // session's ports for this Pd (see `enable`) and every caller passes
        // 0x40 or 0x43; a port the session did not cover would raise #GP,
        // which the parent sees as a fault, not undefined behaviour.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
        }
    }
}
