//! What init does when a child faults: pure decisions, tested on the host.

use arbor_config::Restart;

/// The decision after a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFault {
    /// Start it again (this is restart number `attempt`, waiting `backoff_ms` first).
    Restart { attempt: u32, backoff_ms: u64 },
    /// Leave it stopped: its policy is `Never`.
    Hold,
    /// Leave it stopped: it used up its `max` restarts.
    GiveUp { max: u32 },
}

/// Decides what follows a fault, given how often the child was restarted already.
pub fn after_fault(policy: &Restart, restarts_so_far: u32) -> AfterFault {
    match policy {
        Restart::Never => AfterFault::Hold,
        Restart::OnFault { max, backoff } if restarts_so_far < *max => AfterFault::Restart {
            attempt: restarts_so_far + 1,
            backoff_ms: backoff.millis,
        },
        Restart::OnFault { max, .. } => AfterFault::GiveUp { max: *max },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_config::Duration;

    #[test]
    fn never_holds() {
        assert_eq!(after_fault(&Restart::Never, 0), AfterFault::Hold);
    }

    #[test]
    fn on_fault_counts_up_to_max() {
        let policy = Restart::OnFault {
            max: 2,
            backoff: Duration { millis: 50 },
        };
        assert_eq!(
            after_fault(&policy, 0),
            AfterFault::Restart {
                attempt: 1,
                backoff_ms: 50
            }
        );
        assert_eq!(
            after_fault(&policy, 1),
            AfterFault::Restart {
                attempt: 2,
                backoff_ms: 50
            }
        );
        assert_eq!(after_fault(&policy, 2), AfterFault::GiveUp { max: 2 });
        assert_eq!(
            after_fault(&policy, u32::MAX),
            AfterFault::GiveUp { max: 2 }
        );
    }
}
