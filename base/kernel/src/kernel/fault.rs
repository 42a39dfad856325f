//! Faults: a CPU exception in user mode stops the thread and reports (kind,
//! address, instruction pointer, error code) to its Pd's fault endpoint. What
//! happens next is the receiver's decision; the kernel never kills.

#![forbid(unsafe_code)]

use super::object::{Kernel, Message, ThreadState};
use arbor_abi::{FAULT_LABEL, FaultKind, MsgInfo, ObjectKind, Rights};

/// The fault kind of an exception vector.
pub fn kind_of(vector: u64) -> FaultKind {
    match vector {
        0 => FaultKind::DivideError,
        3 => FaultKind::Breakpoint,
        6 | 7 => FaultKind::InvalidOpcode,
        13 => FaultKind::GeneralProtection,
        14 => FaultKind::PageFault,
        _ => FaultKind::Other,
    }
}

impl Kernel {
    /// The current thread raised exception `vector`.
    pub fn user_fault(&mut self, vector: u64, error_code: u64, address: u64) {
        let Some((me, thread)) = self.current_thread() else {
            return;
        };
        let kind = kind_of(vector);
        let ip = thread.context.rip;
        let code = if kind == FaultKind::Other {
            vector
        } else {
            error_code
        };
        let address = if kind == FaultKind::PageFault {
            address
        } else {
            0
        };
        let fault_endpoint = self
            .objects
            .pd(thread.pd)
            .map(|pd| pd.fault_endpoint)
            .unwrap_or_default();
        match self.check(&fault_endpoint, ObjectKind::Endpoint, Rights::WRITE) {
            Ok(ep_ref) => {
                let message = Message {
                    info: MsgInfo::new(FAULT_LABEL, 0, 0),
                    words: [kind as u64, address, ip, code],
                    badge: fault_endpoint.badge,
                    is_call: false,
                    is_fault: true,
                };
                self.send_kernel_message(me, ep_ref, message);
            }
            Err(_) => {
                crate::kprintln!(
                    "kernel: thread {:#x} faulted ({kind:?} at ip {ip:#x}, address {address:#x}, error {error_code:#x}) and its Pd has no fault endpoint",
                    me.pfn.0
                );
                if let Some(thread) = self.objects.thread_mut(me) {
                    thread.state = ThreadState::Faulted;
                }
            }
        }
    }
}
