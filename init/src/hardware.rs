//! The hardware gate: an IoPort, Irq or IoMem session request of a child is
//! decoded and checked against that child's `hardware` declaration before
//! it is routed anywhere. For a nested init, the requests it forwards for
//! its own children are checked against the nested init's declaration, so
//! no level of the tree can hand out more than it was given.
//!
//! Pure, so the host tests below exercise exactly what init runs.

use arbor_config::{Claim, Hardware};
use arbor_sessions::decode;
use arbor_sessions::services::{IoMemArgs, IoPortArgs, IrqArgs, name};
use core::fmt;

/// Why a hardware session request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The arguments of a hardware service do not decode.
    Undecodable(&'static str),
    /// The claim lies outside the declaration (shown as declared).
    NotDeclared { claim: Claim, declared: Hardware },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Undecodable(service) => {
                write!(f, "{service} request whose arguments do not decode")
            }
            Refusal::NotDeclared { claim, declared } => {
                write!(f, "{claim}: not in its hardware declaration ({declared})")
            }
        }
    }
}

/// What a session request claims, if its service is a hardware one.
pub fn claim_of(service: &str, args: &[u8]) -> Option<Result<Claim, Refusal>> {
    Some(match service {
        name::IO_PORT => decode::<IoPortArgs>(args)
            .map(|IoPortArgs { first, count }| Claim::IoPorts { first, count })
            .map_err(|_| Refusal::Undecodable(name::IO_PORT)),
        name::IRQ => decode::<IrqArgs>(args)
            .map(|IrqArgs { line }| Claim::Irq { line })
            .map_err(|_| Refusal::Undecodable(name::IRQ)),
        name::IO_MEM => decode::<IoMemArgs>(args)
            .map(|IoMemArgs { phys, size }| Claim::IoMem { base: phys, size })
            .map_err(|_| Refusal::Undecodable(name::IO_MEM)),
        _ => return None,
    })
}

/// Admits a request unless it is a hardware claim outside `declared`.
pub fn admit(declared: &Hardware, service: &str, args: &[u8]) -> Result<(), Refusal> {
    match claim_of(service, args) {
        None => Ok(()),
        Some(Err(refusal)) => Err(refusal),
        Some(Ok(claim)) if declared.permits(&claim) => Ok(()),
        Some(Ok(claim)) => Err(Refusal::NotDeclared {
            claim,
            declared: declared.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::format;
    use alloc::vec;
    use arbor_config::PortRange;
    use arbor_sessions::encode;

    /// Encodes session arguments as a client sends them.
    macro_rules! args {
        ($value:expr) => {{
            let mut buffer = [0u8; 64];
            let length = encode(&$value, &mut buffer).unwrap();
            buffer[..length].to_vec()
        }};
    }

    fn timer() -> Hardware {
        Hardware {
            io_ports: vec![PortRange {
                first: 0x40,
                count: 4,
            }],
            irqs: vec![2],
            ..Hardware::default()
        }
    }

    #[test]
    fn declared_claims_pass_and_other_services_are_not_judged() {
        let ports = args!(IoPortArgs {
            first: 0x40,
            count: 4,
        });
        assert_eq!(admit(&timer(), name::IO_PORT, &ports), Ok(()));
        assert_eq!(
            admit(&timer(), name::IRQ, &args!(IrqArgs { line: 2 })),
            Ok(())
        );
        assert_eq!(admit(&Hardware::default(), name::LOG, b"anything"), Ok(()));
        assert_eq!(admit(&Hardware::default(), "Timer", &ports), Ok(()));
    }

    #[test]
    fn undeclared_claims_are_refused_naming_claim_and_declaration() {
        let pci = args!(IoPortArgs {
            first: 0xCF8,
            count: 8,
        });
        let refusal = admit(&Hardware::default(), name::IO_PORT, &pci).unwrap_err();
        assert_eq!(
            format!("{refusal}"),
            "IoPort 0xcf8..0xd00: not in its hardware declaration (none)"
        );
        let refusal = admit(&timer(), name::IRQ, &args!(IrqArgs { line: 5 })).unwrap_err();
        assert_eq!(
            format!("{refusal}"),
            "Irq 5: not in its hardware declaration (IoPort 0x40..0x44, Irq 2)"
        );
        let ecam = args!(IoMemArgs {
            phys: 0xB000_0000,
            size: 256 << 20,
        });
        assert!(admit(&timer(), name::IO_MEM, &ecam).is_err());
        // One port past the declaration is outside it.
        let wider = args!(IoPortArgs {
            first: 0x40,
            count: 5,
        });
        assert!(admit(&timer(), name::IO_PORT, &wider).is_err());
    }

    #[test]
    fn garbage_arguments_are_refused() {
        for service in [name::IO_PORT, name::IRQ, name::IO_MEM] {
            assert!(matches!(
                admit(&timer(), service, &[]),
                Err(Refusal::Undecodable(_))
            ));
        }
    }
}
