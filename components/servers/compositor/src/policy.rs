//! Per-label policy: the colour of a client's title strips, and whether its
//! sessions hold focus for good.
//!
//! Rules are tried in order and the first whose `label_contains` occurs in
//! the session label wins — the label as init composed it, which no client
//! can forge. A scenario's config sets the rules; with none, labels
//! containing "untrusted" are red and everything else is grey-blue.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::Deserialize;

/// Strip colour of a label no rule matches.
pub const DEFAULT_STRIP_COLOUR: u32 = 0x0040_5070;
/// Strip colour of "untrusted" labels when the config sets no rules.
pub const UNTRUSTED_STRIP_COLOUR: u32 = 0x00c0_0000;

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Matches labels that contain this text.
    pub label_contains: String,
    /// Strip colour, 0x00RRGGBB.
    pub colour: u32,
    /// Focus stays with this client once it has a view.
    #[serde(default)]
    pub pin_focus: bool,
}

/// The compositor's config ROM.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Rules, first match wins.
    #[serde(default = "default_rules")]
    pub rules: Vec<Rule>,
    /// Frames per second the compositor composes at most.
    #[serde(default = "default_frame_rate")]
    pub frame_rate: u32,
    /// Refreshes one client may send per frame before it is refused.
    #[serde(default = "default_refresh_budget")]
    pub refresh_budget: u32,
    /// Open an Input session (keyboard and pointer) and route its events.
    #[serde(default)]
    pub input: bool,
    /// Refresh-to-flush samples to take and report as the `gui_frame_ms`
    /// benchmark figure (0: none).
    #[serde(default)]
    pub latency_samples: u32,
}

fn default_rules() -> Vec<Rule> {
    vec![Rule {
        label_contains: String::from("untrusted"),
        colour: UNTRUSTED_STRIP_COLOUR,
        pin_focus: false,
    }]
}

fn default_frame_rate() -> u32 {
    50
}

fn default_refresh_budget() -> u32 {
    8
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rules: default_rules(),
            frame_rate: default_frame_rate(),
            refresh_budget: default_refresh_budget(),
            input: false,
            latency_samples: 0,
        }
    }
}

/// What the policy says about one label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Strip colour.
    pub colour: u32,
    /// Focus is pinned to it.
    pub pin_focus: bool,
}

impl Policy {
    /// The decision for `label`.
    pub fn decide(&self, label: &str) -> Decision {
        self.rules
            .iter()
            .find(|rule| label.contains(rule.label_contains.as_str()))
            .map(|rule| Decision {
                colour: rule.colour & 0x00ff_ffff,
                pin_focus: rule.pin_focus,
            })
            .unwrap_or(Decision {
                colour: DEFAULT_STRIP_COLOUR,
                pin_focus: false,
            })
    }

    /// Milliseconds between frames (at least 1).
    pub fn frame_ms(&self) -> u64 {
        1000 / u64::from(self.frame_rate.clamp(1, 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_labels_are_red_by_default_and_the_first_rule_wins() {
        let policy = Policy::default();
        assert_eq!(
            policy.decide("init -> untrusted_app").colour,
            UNTRUSTED_STRIP_COLOUR
        );
        assert_eq!(policy.decide("init -> editor").colour, DEFAULT_STRIP_COLOUR);
        let policy = Policy {
            rules: vec![
                Rule {
                    label_contains: "shell".into(),
                    colour: 0xff00_ff00,
                    pin_focus: true,
                },
                Rule {
                    label_contains: "sh".into(),
                    colour: 0x12,
                    pin_focus: false,
                },
            ],
            ..Policy::default()
        };
        let shell = policy.decide("init -> shell");
        assert_eq!(shell.colour, 0x0000_ff00, "alpha bits are dropped");
        assert!(shell.pin_focus);
        assert_eq!(policy.decide("init -> sh").colour, 0x12);
    }

    #[test]
    fn frame_interval_is_bounded() {
        let mut policy = Policy::default();
        assert_eq!(policy.frame_ms(), 20);
        policy.frame_rate = 0;
        assert_eq!(policy.frame_ms(), 1000);
        policy.frame_rate = u32::MAX;
        assert_eq!(policy.frame_ms(), 1);
    }
}
