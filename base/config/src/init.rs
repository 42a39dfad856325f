//! The `init:` section of a scenario: which children init starts, what each
//! may spend, which services each provides, and where each child's session
//! requests go.
//!
//! A child's `config` is kept as the RON text the author wrote ([`ComponentConfig`]),
//! not as a decoded value: the child receives that text as its config ROM and
//! decodes it with its own schema. A nested init is a child whose binary is
//! `init`; its `config` text is parsed again, with the same parser, as an
//! [`InitConfig`]. Keeping text rather than `ron::Value` preserves struct and
//! enum names (which `ron::Value` drops) and lets errors inside a nested
//! config be located in the scenario file.

use crate::{ByteSize, ConfigError, Duration, Hardware};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;
use serde::de::Deserializer;

/// The binary name that makes a child a nested init.
pub const INIT_BINARY: &str = "init";

/// The service name in a route that matches every service.
pub const ANY_SERVICE: &str = "*";

/// The service through which an init reports its children's state
/// (names, quotas, uptime); init serves it itself to each child whose
/// routes send it `to: Init`.
pub const INIT_STATE_SERVICE: &str = "InitState";

/// The services an init serves itself, reached by a route `to: Init`.
pub const INIT_SERVICES: &[&str] = &[INIT_STATE_SERVICE];

/// What one init starts and how it routes: the root init's part of a
/// scenario, or a nested init's config ROM.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Services this init's parent answers (for the root init: core).
    #[serde(default)]
    pub parent_provides: Vec<String>,
    /// The quota of a child that states none.
    #[serde(default = "Quota::default_child")]
    pub default_quota: Quota,
    /// What this init may hand out to its children in total. Unset means
    /// everything it has: for the root init, the machine's memory less
    /// [`crate::KERNEL_AND_CORE_RESERVE`] and [`crate::ROOT_CAPS`]
    /// capabilities; for a nested init, the quota its parent gave it.
    #[serde(default)]
    pub budget: Option<Quota>,
    /// The children, started in this order.
    #[serde(default)]
    pub children: Vec<Child>,
}

/// RAM and capability slots handed from a parent to a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// RAM, e.g. `"512K"`.
    pub ram: ByteSize,
    /// Capability slots.
    pub caps: CapCount,
}

impl Quota {
    /// The default child quota when an init config names none.
    pub const DEFAULT_CHILD: Quota = Quota {
        ram: ByteSize(1 << 20),
        caps: CapCount(64),
    };

    fn default_child() -> Quota {
        Self::DEFAULT_CHILD
    }
}

/// A number of capability slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct CapCount(pub u64);

/// One component that init starts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    /// Unique among its siblings; the first element of the labels of its sessions.
    pub name: String,
    /// The ROM module holding its ELF; defaults to `name`.
    #[serde(default)]
    pub binary: Option<String>,
    /// What it may spend; defaults to the init's `default_quota`.
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Services it serves to its siblings (through routes naming it).
    #[serde(default)]
    pub provides: Vec<String>,
    /// Where its session requests go, tried in order.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// What init does when it faults.
    #[serde(default)]
    pub restart: Restart,
    /// Its config ROM: any RON value, kept as text.
    #[serde(default)]
    pub config: Option<ComponentConfig>,
    /// The I/O ports, interrupt lines and device memory it may claim
    /// (through IoPort, Irq and IoMem sessions); nothing by default.
    #[serde(default)]
    pub hardware: Hardware,
}

impl Child {
    /// The binary this child runs: `binary`, or its name when unset.
    pub fn binary_name(&self) -> &str {
        self.binary.as_deref().unwrap_or(&self.name)
    }

    /// Whether this child is itself an init with its own children.
    pub fn is_nested_init(&self) -> bool {
        self.binary_name() == INIT_BINARY
    }

    /// The quota this child receives from `init`.
    pub fn effective_quota(&self, init: &InitConfig) -> Quota {
        self.quota.unwrap_or(init.default_quota)
    }
}

/// One routing rule: requests for `service` whose label matches `label` go `to`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A service name, or `"*"` for any.
    pub service: String,
    /// Restricts the rule to some session labels; unset matches every label.
    #[serde(default)]
    pub label: Option<LabelMatch>,
    /// Where matching requests go.
    pub to: RouteTarget,
}

/// How a route matches the label a child gives its session request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum LabelMatch {
    /// The whole label.
    Exact(String),
    /// The label starts with this.
    Prefix(String),
    /// The label ends with this.
    Suffix(String),
}

impl LabelMatch {
    /// Whether `label` is matched.
    pub fn matches(&self, label: &str) -> bool {
        match self {
            LabelMatch::Exact(text) => label == text,
            LabelMatch::Prefix(text) => label.starts_with(text.as_str()),
            LabelMatch::Suffix(text) => label.ends_with(text.as_str()),
        }
    }
}

/// Where a routed session request goes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum RouteTarget {
    /// Up to this init's parent, with the label composed.
    Parent,
    /// To the named sibling, which must provide the service.
    Child(String),
    /// To the one sibling that provides the service.
    AnyChild,
    /// To this init itself, for the services it serves ([`INIT_SERVICES`]):
    /// what a child may learn about its siblings is its parent's to grant.
    Init,
    /// Refused.
    Deny,
}

/// What init does when a child faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Restart {
    /// Leave it dead; its sessions are closed.
    #[default]
    Never,
    /// Restart it up to `max` times, waiting `backoff` before each restart.
    OnFault {
        /// Restarts allowed before init gives up on it.
        max: u32,
        /// Wait before each restart.
        #[serde(default = "Restart::default_backoff")]
        backoff: Duration,
    },
}

impl Restart {
    fn default_backoff() -> Duration {
        Duration { millis: 100 }
    }
}

/// A child's config ROM: the RON text written in the scenario, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentConfig {
    text: String,
}

impl ComponentConfig {
    /// Wraps RON text (e.g. a config ROM received on the target).
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The RON text the child receives as its config ROM.
    pub fn as_text(&self) -> &str {
        &self.text
    }

    /// Decodes the text as a nested init's config (no validation; see
    /// [`crate::parse_init_config`] for that). Locations are relative to the text.
    pub fn as_init_config(&self) -> Result<InitConfig, ConfigError> {
        crate::parse_init_text(&self.text)
            .map_err(|error| crate::diagnostics::from_ron(&error, &self.text, 0).to_config_error())
    }
}

impl<'de> Deserialize<'de> for ComponentConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // ron hands a RawValue only to this exact type; the text it holds is
        // valid RON, already checked by the outer parse.
        let raw: Box<ron::value::RawValue> = Deserialize::deserialize(deserializer)?;
        Ok(Self {
            text: raw.get_ron().to_string(),
        })
    }
}
