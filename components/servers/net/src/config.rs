//! net's config ROM: how it gets its address and the per-label policy.
//!
//! ```ron
//! (
//!     address: Dhcp(fallback: Some((address: (10, 0, 0, 1), prefix: 24))),
//!     policy: [(label: "web", listen: [80], max_sockets: 32)],
//! )
//! ```

use crate::policy::ClientPolicy;
use alloc::vec::Vec;
use serde::Deserialize;

/// A static IPv4 address and its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticAddress {
    /// The address.
    pub address: (u8, u8, u8, u8),
    /// Prefix length, 1..=32.
    pub prefix: u8,
    /// The default gateway, if any.
    #[serde(default)]
    pub gateway: Option<(u8, u8, u8, u8)>,
}

/// How the stack gets its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AddressConfig {
    /// Ask a DHCP server; use `fallback` if none answers within `timeout_ms`.
    Dhcp {
        /// The address to use without a DHCP answer.
        #[serde(default)]
        fallback: Option<StaticAddress>,
        /// How long to wait for an answer before falling back.
        #[serde(default = "default_dhcp_timeout_ms")]
        timeout_ms: u64,
    },
    /// Use this address.
    Static(StaticAddress),
}

fn default_dhcp_timeout_ms() -> u64 {
    3000
}

/// The whole config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How the stack gets its address.
    pub address: AddressConfig,
    /// Per-label policy; a client no entry matches may hold no socket.
    #[serde(default)]
    pub policy: Vec<ClientPolicy>,
    /// Ping this address once the stack has one, and log the reply (a
    /// self-test of ARP, IPv4 and ICMP across the Uplink session).
    #[serde(default)]
    pub ping: Option<(u8, u8, u8, u8)>,
}

/// What is wrong with a config that parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A prefix length outside 1..=32.
    BadPrefix(u8),
    /// A policy with a port range whose start is above its end, or port 0.
    BadPortRange {
        /// Index of the policy entry.
        entry: usize,
    },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadPrefix(prefix) => write!(f, "prefix length {prefix} (1..=32 allowed)"),
            Self::BadPortRange { entry } => write!(f, "policy entry {entry}: bad port range"),
        }
    }
}

impl Config {
    /// Checks what the types cannot say.
    pub fn check(&self) -> Result<(), ConfigError> {
        let address = match self.address {
            AddressConfig::Static(address) => Some(address),
            AddressConfig::Dhcp { fallback, .. } => fallback,
        };
        if let Some(address) = address
            && !(1..=32).contains(&address.prefix)
        {
            return Err(ConfigError::BadPrefix(address.prefix));
        }
        for (entry, policy) in self.policy.iter().enumerate() {
            if !policy.ports_are_sane() {
                return Err(ConfigError::BadPortRange { entry });
            }
        }
        Ok(())
    }
}

/// Parses and checks a config ROM's text.
pub fn parse(text: &str) -> Result<Config, alloc::string::String> {
    let config: Config = ron::from_str(text).map_err(|error| alloc::format!("{error}"))?;
    config.check().map_err(|error| alloc::format!("{error}"))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let config = parse(
            "(address: Dhcp(fallback: Some((address: (10, 0, 0, 1), prefix: 24))),
              policy: [(label: \"web\", listen: [(80, 80)], max_sockets: 32)])",
        )
        .unwrap();
        assert_eq!(config.policy.len(), 1);
        assert_eq!(config.ping, None);
        assert!(matches!(
            config.address,
            AddressConfig::Dhcp {
                timeout_ms: 3000,
                ..
            }
        ));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("(address: Static((address: (1, 2, 3, 4), prefix: 33)))").is_err());
        assert!(parse("(address: Static((address: (1, 2, 3, 4), prefix: 8)), typo: 1)").is_err());
        assert!(
            parse(
                "(address: Static((address: (1, 2, 3, 4), prefix: 8)),
                  policy: [(label: \"a\", listen: [(90, 80)], max_sockets: 1)])"
            )
            .unwrap_err()
            .contains("entry 0")
        );
    }
}
