//! Starting a child Pd from an ELF image.
//!
//! Everything the child needs — its segments, stack, IPC buffer, page tables
//! and thread — is paid from the quota handed to it first, so destroying the
//! child's Pd returns every byte. The parent pays only for the Pd object and
//! the capability slots it keeps for the child's objects.
//!
//! Steps: plan the image ([`crate::plan`]); create the Pd and transfer quota;
//! for each segment create a dataspace paid by the child, copy the bytes in
//! through a temporary mapping in the own Pd, map it into the child; likewise
//! the stack and the IPC buffer (which carries the start argument, see the
//! crate's start convention); create the thread; grant the child its own Pd
//! and thread capabilities and whatever the caller lists; set the fault
//! endpoint; start the thread.

use crate::abi::{CapSlot, Error, ObjectKind, PAGE_SIZE, Rights, map, slot};
use crate::plan::{LoadPlan, PlanError};
use crate::{layout, slots, sys, vspace};
use arbor_elf::MAX_SEGMENTS;
use core::fmt;

/// Capability slots the loader keeps per child: segments, stack, IPC buffer.
const KEPT_DATASPACES: usize = MAX_SEGMENTS + 2;

/// What the child is and gets.
pub struct ChildSpec<'a> {
    /// The ELF image (e.g. a boot-archive module).
    pub image: &'a [u8],
    /// RAM quota moved to the child; must cover [`LoadPlan::ram_needed`].
    pub ram: u64,
    /// Capability quota moved to the child.
    pub caps: u64,
    /// Priority of its first thread (at most the caller's).
    pub priority: u8,
    /// The start argument its `main` receives.
    pub argument: u64,
    /// Where its faults go: an endpoint capability in the caller's table
    /// (its badge tells the caller which child faulted).
    pub fault_endpoint: Option<CapSlot>,
    /// Further capabilities: (slot in the caller's table, slot in the
    /// child's table, rights it keeps).
    pub grants: &'a [(CapSlot, CapSlot, Rights)],
}

/// Why a child could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The image is unusable.
    Plan(PlanError),
    /// The quota offered is below what loading needs.
    QuotaTooSmall {
        /// Bytes loading needs.
        needed: u64,
        /// Bytes offered.
        offered: u64,
    },
    /// A system call failed.
    Kernel {
        /// Which step.
        step: &'static str,
        /// The kernel's answer.
        error: Error,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plan(error) => write!(f, "{error}"),
            Self::QuotaTooSmall { needed, offered } => write!(
                f,
                "loading needs {needed} bytes of RAM quota, {offered} offered"
            ),
            Self::Kernel { step, error } => write!(f, "{step}: {error}"),
        }
    }
}

/// A running child: the caller's capabilities to it.
#[derive(Debug)]
pub struct Child {
    /// The child's Pd (all rights).
    pub pd: CapSlot,
    /// The child's first thread (all rights).
    pub thread: CapSlot,
    dataspaces: [CapSlot; KEPT_DATASPACES],
}

impl Child {
    /// Destroys the child's Pd — and with it everything it paid for — and
    /// empties the caller's slots for it. Its remaining quota returns to
    /// the caller.
    pub fn destroy(self) -> Result<(), Error> {
        let result = sys::destroy(self.pd);
        self.release_slots();
        result
    }

    fn release_slots(&self) {
        let kept = self.dataspaces.iter().filter(|s| **s != CapSlot::NULL);
        for cap in [self.pd, self.thread].iter().chain(kept) {
            if *cap != CapSlot::NULL {
                // The objects are gone with the Pd; only the slots remain.
                slots::release(*cap);
            }
        }
    }
}

fn kernel(step: &'static str) -> impl Fn(Error) -> LoadError {
    move |error| LoadError::Kernel { step, error }
}

/// Starts a child as `spec` says. On failure nothing of the child remains.
pub fn spawn(spec: &ChildSpec<'_>) -> Result<Child, LoadError> {
    let plan = LoadPlan::new(spec.image).map_err(LoadError::Plan)?;
    let needed = plan.ram_needed();
    if spec.ram < needed {
        return Err(LoadError::QuotaTooSmall {
            needed,
            offered: spec.ram,
        });
    }
    let pd = slots::allocate().map_err(kernel("allocate a slot for the Pd"))?;
    if let Err(error) = sys::create(ObjectKind::Pd, slot::OWN_PD, pd, 0) {
        slots::free(pd);
        return Err(kernel("create the Pd")(error));
    }
    let mut child = Child {
        pd,
        thread: CapSlot::NULL,
        dataspaces: [CapSlot::NULL; KEPT_DATASPACES],
    };
    match populate(&mut child, &plan, spec) {
        Ok(()) => Ok(child),
        Err(error) => {
            let _ = child.destroy();
            Err(error)
        }
    }
}

/// Everything after the Pd exists; on error the caller destroys the Pd.
fn populate(child: &mut Child, plan: &LoadPlan<'_>, spec: &ChildSpec<'_>) -> Result<(), LoadError> {
    let pd = child.pd;
    sys::transfer_quota(slot::OWN_PD, pd, spec.ram, spec.caps)
        .map_err(kernel("transfer quota to the child"))?;

    let mut kept = 0;
    for segment in plan.segments() {
        let dataspace = new_dataspace(pd, segment.size)?;
        child.dataspaces[kept] = dataspace;
        kept += 1;
        fill(dataspace, segment.size, segment.copy_offset, segment.data)?;
        sys::map(pd, dataspace, 0, segment.vaddr, segment.size, segment.flags)
            .map_err(kernel("map a segment into the child"))?;
    }

    let stack = new_dataspace(pd, layout::STACK_SIZE)?;
    child.dataspaces[kept] = stack;
    kept += 1;
    let stack_base = layout::STACK_TOP - layout::STACK_SIZE;
    sys::map(
        pd,
        stack,
        0,
        stack_base,
        layout::STACK_SIZE,
        map::READ | map::WRITE,
    )
    .map_err(kernel("map the child's stack"))?;

    let page = PAGE_SIZE as u64;
    let ipc_buffer = new_dataspace(pd, page)?;
    child.dataspaces[kept] = ipc_buffer;
    fill(ipc_buffer, page, 0, &spec.argument.to_le_bytes())?;
    sys::map(
        pd,
        ipc_buffer,
        0,
        layout::IPC_BUFFER,
        page,
        map::READ | map::WRITE,
    )
    .map_err(kernel("map the child's IPC buffer"))?;

    let thread = slots::allocate().map_err(kernel("allocate a slot for the thread"))?;
    sys::create(ObjectKind::Thread, pd, thread, u64::from(spec.priority)).map_err(|error| {
        slots::free(thread);
        kernel("create the child's thread")(error)
    })?;
    child.thread = thread;

    sys::grant(pd, pd, slot::OWN_PD, Rights::ALL).map_err(kernel("grant the child its Pd"))?;
    sys::grant(pd, thread, slot::OWN_THREAD, Rights::ALL)
        .map_err(kernel("grant the child its thread"))?;
    for &(source, dest, rights) in spec.grants {
        sys::grant(pd, source, dest, rights).map_err(kernel("grant a capability"))?;
    }
    if let Some(endpoint) = spec.fault_endpoint {
        sys::set_fault_endpoint(pd, endpoint).map_err(kernel("set the fault endpoint"))?;
    }
    sys::start_thread(
        thread,
        plan.entry,
        layout::STACK_TOP,
        layout::IPC_BUFFER,
        layout::IPC_BUFFER,
    )
    .map_err(kernel("start the child's thread"))
}

/// A zero-filled dataspace of `size` bytes paid by `pays`, in a new slot.
fn new_dataspace(pays: CapSlot, size: u64) -> Result<CapSlot, LoadError> {
    let dataspace = slots::allocate().map_err(kernel("allocate a slot for a dataspace"))?;
    sys::create(ObjectKind::Dataspace, pays, dataspace, size).map_err(|error| {
        slots::free(dataspace);
        kernel("create a dataspace for the child")(error)
    })?;
    Ok(dataspace)
}

/// Copies `data` to `offset` in `dataspace` (of `size` bytes) through a
/// temporary mapping in the own Pd.
fn fill(dataspace: CapSlot, size: u64, offset: u64, data: &[u8]) -> Result<(), LoadError> {
    if data.is_empty() {
        return Ok(());
    }
    let window = vspace::allocate(size).map_err(kernel("find room for a copy window"))?;
    let result = sys::map(
        slot::OWN_PD,
        dataspace,
        0,
        window.start,
        size,
        map::READ | map::WRITE,
    );
    if let Err(error) = result {
        vspace::free(window);
        return Err(kernel("map a copy window")(error));
    }
    // `LoadPlan` guarantees offset + data.len() <= size; checked again here
    // because the copy below writes raw memory.
    let fits = offset
        .checked_add(data.len() as u64)
        .is_some_and(|end| end <= size && end <= window.end - window.start);
    if fits {
        // SAFETY: `[window.start, window.start + size)` was just mapped
        // readable and writable to a dataspace only this function touches,
        // and `offset + data.len() <= size` was checked above, so the
        // destination is valid, writable memory that no Rust reference
        // points into and that does not overlap `data` (a different mapping).
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (window.start + offset) as *mut u8,
                data.len(),
            );
        }
    }
    let unmapped = sys::unmap(slot::OWN_PD, window.start, size);
    // A window that could not be unmapped stays reserved, so nothing else
    // is mapped over it.
    if unmapped.is_ok() {
        vspace::free(window);
    }
    if !fits {
        return Err(LoadError::Kernel {
            step: "copy a segment",
            error: Error::InvalidArgument,
        });
    }
    unmapped.map_err(kernel("unmap a copy window"))
}
