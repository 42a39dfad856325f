//! System calls that only report: `Info` (quotas, sizes, the clock rate,
//! what a capability is) and `ConsoleWrite`.

use super::PAGE;
use crate::kernel::object::{Kernel, Object, ThreadState};
use arbor_abi::{Error, ObjectKind, PAYLOAD_MAX, Rights, info};

impl Kernel {
    /// `Info`: two result words for `selector` about `argument`.
    pub(crate) fn info(&mut self, selector: u64, argument: u64) -> Result<(), Error> {
        fn object(
            kernel: &Kernel,
            argument: u64,
            kind: ObjectKind,
            rights: Rights,
        ) -> Result<&Object, Error> {
            let r = kernel.own_object(argument, kind, rights)?;
            kernel.objects.get(r).ok_or(Error::InvalidCapability)
        }
        let (first, second) = match selector {
            info::KERNEL_FREE_RAM => (self.objects.frames.free_frames() as u64 * PAGE, 0),
            info::PD_RAM => match object(self, argument, ObjectKind::Pd, Rights::NONE)? {
                Object::Pd(pd) => (pd.ram.limit, pd.ram.used),
                _ => return Err(Error::WrongObjectKind),
            },
            info::PD_CAPS => match object(self, argument, ObjectKind::Pd, Rights::NONE)? {
                Object::Pd(pd) => (pd.caps.limit, pd.caps.used),
                _ => return Err(Error::WrongObjectKind),
            },
            info::DATASPACE_PHYS => {
                match object(self, argument, ObjectKind::Dataspace, Rights::DMA)? {
                    Object::Dataspace(dataspace) => (dataspace.base.address(), 0),
                    _ => return Err(Error::WrongObjectKind),
                }
            }
            info::DATASPACE_SIZE => {
                match object(self, argument, ObjectKind::Dataspace, Rights::NONE)? {
                    Object::Dataspace(dataspace) => (dataspace.pages * PAGE, 0),
                    _ => return Err(Error::WrongObjectKind),
                }
            }
            info::TSC_PER_MS => (self.tsc_per_ms, 0),
            info::IDLE_TICKS => (self.idle_ticks, 0),
            info::THREAD_BLOCKED_CALLING => {
                match object(self, argument, ObjectKind::Thread, Rights::NONE)? {
                    Object::Thread(thread) => {
                        let calling = matches!(
                            thread.state,
                            ThreadState::Sending | ThreadState::AwaitingReply
                        );
                        (u64::from(calling), 0)
                    }
                    _ => return Err(Error::WrongObjectKind),
                }
            }
            info::CAP_KIND => {
                let cap = self.own_cap(argument);
                let kind = cap.kind().ok_or(Error::InvalidCapability)?;
                self.check(&cap, kind, Rights::NONE)?;
                (kind as u64, u64::from(cap.rights))
            }
            _ => return Err(Error::InvalidArgument),
        };
        self.set_results(first, second);
        Ok(())
    }

    /// Counts `ticks` more TSC ticks spent halted with nothing to run.
    pub fn idled(&mut self, ticks: u64) {
        self.idle_ticks = self.idle_ticks.saturating_add(ticks);
    }

    /// `ConsoleWrite`: `len` bytes of the caller's IPC buffer to the console.
    pub(crate) fn console_write(&mut self, console: u64, len: u64) -> Result<(), Error> {
        self.own_object(console, ObjectKind::Console, Rights::WRITE)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= PAYLOAD_MAX)
            .ok_or(Error::MessageTooLarge)?;
        let me = self.current.ok_or(Error::InvalidState)?;
        let phys = self.ipc_buffer(me, false).ok_or(Error::BadAddress)?;
        let bytes = self
            .objects
            .user_bytes(phys, len)
            .ok_or(Error::BadAddress)?;
        crate::kernel::hw::console_write(bytes);
        Ok(())
    }
}
