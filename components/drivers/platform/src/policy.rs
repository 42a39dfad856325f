//! The platform driver's config: for each client (by the first element of
//! its session label, its name, which it cannot forge) the devices it gets.
//!
//! ```ron
//! config: (policies: [
//!     (label: "blk_driver", devices: [Id(vendor: 0x1af4, device: 0x1042)]),
//!     (label: "input", devices: [Class(class: 0x09, subclass: 0x00), Address(bus: 0, device: 5, function: 0)]),
//! ])
//! ```

use crate::pci::Function;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// The whole config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// One policy per client.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

/// What one client gets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The client's name: the first element of its session label.
    pub label: String,
    /// The devices it gets: every function that any selector matches.
    pub devices: Vec<Selector>,
}

/// Names devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Selector {
    /// By vendor and device id.
    Id {
        /// Vendor id.
        vendor: u16,
        /// Device id.
        device: u16,
    },
    /// By base class and subclass.
    Class {
        /// Base class.
        class: u8,
        /// Subclass.
        subclass: u8,
    },
    /// By bus address.
    Address {
        /// Bus.
        bus: u8,
        /// Device (slot).
        device: u8,
        /// Function.
        function: u8,
    },
}

impl Selector {
    /// Whether `function` is one this selector names.
    pub fn matches(&self, function: &Function) -> bool {
        match *self {
            Selector::Id { vendor, device } => {
                function.vendor == vendor && function.device_id == device
            }
            Selector::Class { class, subclass } => {
                function.class == class && function.subclass == subclass
            }
            Selector::Address {
                bus,
                device,
                function: number,
            } => {
                let a = function.address;
                a.bus == bus && a.device == device && a.function == number
            }
        }
    }
}

/// Decodes config text (a config ROM's bytes, maybe zero-padded) as the
/// platform driver does at start and `cargo arbor check` does on the host.
pub fn parse(bytes: &[u8]) -> Result<Config, arbor_sessions::env::ConfigError> {
    arbor_sessions::env::parse_config(bytes)
}

/// The first element of a session label (the client's name).
pub fn client_name(label: &str) -> &str {
    label.split(" -> ").next().unwrap_or(label)
}

impl Config {
    /// The policy for a session `label`, if any.
    pub fn policy_for(&self, label: &str) -> Option<&Policy> {
        let name = client_name(label);
        self.policies.iter().find(|p| p.label == name)
    }

    /// Indices into `functions` of the devices the policy for `label`
    /// names (empty without a policy).
    pub fn devices_for(&self, label: &str, functions: &[Function]) -> Vec<usize> {
        let Some(policy) = self.policy_for(label) else {
            return Vec::new();
        };
        functions
            .iter()
            .enumerate()
            .filter(|(_, f)| policy.devices.iter().any(|s| s.matches(f)))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::tests::function;

    #[test]
    fn a_client_gets_exactly_what_its_policy_names() {
        let functions = [
            function(1, 0x1042, 0x01),
            function(2, 0x1041, 0x02),
            function(3, 0x1050, 0x03),
        ];
        let config: Config = ron::from_str(
            r#"(policies: [
                (label: "blk", devices: [Id(vendor: 0x1af4, device: 0x1042)]),
                (label: "two", devices: [Class(class: 0x02, subclass: 0), Address(bus: 0, device: 3, function: 0)]),
            ])"#,
        )
        .unwrap();
        assert_eq!(config.devices_for("blk", &functions), [0]);
        assert_eq!(config.devices_for("blk -> anything", &functions), [0]);
        assert_eq!(config.devices_for("two", &functions), [1, 2]);
        // Only the first element counts: a label cannot borrow a name.
        assert!(config.devices_for("other -> blk", &functions).is_empty());
        assert!(config.devices_for("blk2", &functions).is_empty());
        assert!(config.devices_for("", &functions).is_empty());
    }

    #[test]
    fn unknown_selectors_are_refused() {
        assert!(
            ron::from_str::<Config>(r#"(policies: [(label: "x", devices: [Slot(3)])])"#).is_err()
        );
    }
}
