//! The CMOS clock's two ports: the only place {{name}} touches hardware.
//! A register is read or written by writing its number to the index port
//! 0x70, then using the data port 0x71.

use arbor::abi::{CapSlot, slot};
use arbor::sys;

/// The index port: selects a register.
const INDEX: u16 = 0x70;
/// The data port: the selected register's value.
const DATA: u16 = 0x71;
/// The first port and how many the driver claims (0x70..=0x71).
pub const FIRST_PORT: u16 = INDEX;
/// Ports claimed.
pub const PORT_COUNT: u16 = 2;

/// Proof that this component may use the CMOS ports: only [`Cmos::enable`]
/// makes one, after the kernel allowed the ports of an IoPort session
/// opened for exactly [`FIRST_PORT`] and [`PORT_COUNT`].
pub struct Cmos {
    _ports: CapSlot,
}

impl Cmos {
    /// Allows this component the ports of `ports` (the IoPort session's
    /// capability, which must cover [`FIRST_PORT`] and [`PORT_COUNT`]).
    pub fn enable(ports: CapSlot) -> Result<Self, arbor::abi::Error> {
        sys::enable_io_ports(ports, slot::OWN_PD)?;
        Ok(Cmos { _ports: ports })
    }

    /// The value of `register`.
    pub fn read(&self, register: u8) -> u8 {
        self.out(INDEX, register);
        self.input(DATA)
    }

    /// Sets `register` to `value`.
    pub fn write(&self, register: u8, value: u8) {
        self.out(INDEX, register);
        self.out(DATA, value);
    }

    fn out(&self, port: u16, value: u8) {
        // SAFETY: `out` to the CMOS ports changes no memory of this program,
        // only the clock's state. `self` exists only after the kernel
        // enabled the session's ports (see `enable`), and callers pass only
        // INDEX or DATA; a port outside the session would raise #GP, which
        // the parent sees as a fault, not undefined behaviour.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
        }
    }

    fn input(&self, port: u16) -> u8 {
        let value: u8;
        // SAFETY: as for `out`: `in` from an enabled port touches no memory.
        unsafe {
            core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags));
        }
        value
    }
}
