//! Ending a run in QEMU with a verdict (see [`crate::abi::qemu`]): claim the
//! `isa-debug-exit` port through the Platform capability and write to it.
//! Only a component holding [`crate::abi::slot::PLATFORM`] (core, or a test
//! component started as core) can do this.

use crate::abi::{Error, qemu, slot};
use crate::{slots, sys};

/// Writes `value` to I/O port `port` with a 32-bit `out`.
///
/// Safe: without permission for the port the CPU raises #GP, which stops
/// the thread and reaches its parent as a fault — no memory is touched.
pub fn port_write_u32(port: u16, value: u32) {
    // SAFETY: `out` reads only the registers named here and writes only the
    // device port; unpermitted ports fault instead (see above).
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack));
    }
}

/// Ends the QEMU run with `success` or failure. Returns only if the port
/// could not be claimed.
pub fn qemu_exit(success: bool) -> Error {
    let ports = match slots::allocate() {
        Ok(ports) => ports,
        Err(error) => return error,
    };
    let claimed = sys::create_io_ports(
        slot::PLATFORM,
        slot::OWN_PD,
        ports,
        u64::from(qemu::DEBUG_EXIT_PORT),
        4,
    )
    .and_then(|()| sys::enable_io_ports(ports, slot::OWN_PD));
    if let Err(error) = claimed {
        return error;
    }
    let value = if success {
        qemu::SUCCESS
    } else {
        qemu::FAILURE
    };
    port_write_u32(qemu::DEBUG_EXIT_PORT, value);
    // QEMU has stopped by now; a machine without the device lands here.
    Error::InvalidState
}
