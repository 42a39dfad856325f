//! Per-label policy: which ports a client may listen on or bind, and how
//! many sockets it may hold. Matched on the session label init composed,
//! so a client cannot pick its own policy.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// One policy entry of the config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPolicy {
    /// The label it applies to: the whole label, or its first elements
    /// ("web" matches "web" and "web -> anything").
    pub label: String,
    /// Inclusive port ranges the client may listen on or bind.
    #[serde(default)]
    pub listen: Vec<(u16, u16)>,
    /// Most sockets (listeners, connections, UDP) at once.
    pub max_sockets: u32,
}

impl ClientPolicy {
    /// Whether the entry applies to `label`.
    pub fn matches(&self, label: &str) -> bool {
        label == self.label
            || label
                .strip_prefix(self.label.as_str())
                .is_some_and(|rest| rest.starts_with(" -> "))
    }

    /// Whether the client may listen on or bind `port`.
    pub fn may_listen(&self, port: u16) -> bool {
        self.listen
            .iter()
            .any(|&(first, last)| (first..=last).contains(&port))
    }

    pub(crate) fn ports_are_sane(&self) -> bool {
        self.listen
            .iter()
            .all(|&(first, last)| first != 0 && first <= last)
    }
}

/// The first entry that matches `label`; a client without one gets the
/// empty policy (no ports, no sockets).
pub fn policy_for(policies: &[ClientPolicy], label: &str) -> ClientPolicy {
    policies
        .iter()
        .find(|policy| policy.matches(label))
        .cloned()
        .unwrap_or(ClientPolicy {
            label: String::from(label),
            listen: Vec::new(),
            max_sockets: 0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn web() -> ClientPolicy {
        ClientPolicy {
            label: "web".to_string(),
            listen: alloc::vec![(80, 80), (8000, 8099)],
            max_sockets: 8,
        }
    }

    #[test]
    fn labels_match_whole_elements_only() {
        let policy = web();
        assert!(policy.matches("web"));
        assert!(policy.matches("web -> worker"));
        assert!(!policy.matches("webby"));
        assert!(!policy.matches("evil -> web"));
        assert!(!policy.matches("we"));
    }

    #[test]
    fn ports_are_checked_against_ranges() {
        let policy = web();
        assert!(policy.may_listen(80));
        assert!(policy.may_listen(8050));
        assert!(!policy.may_listen(81));
        assert!(!policy.may_listen(0));
    }

    #[test]
    fn an_unknown_client_gets_nothing() {
        let policy = policy_for(&[web()], "intruder");
        assert_eq!(policy.max_sockets, 0);
        assert!(!policy.may_listen(80));
        assert_eq!(policy_for(&[web()], "web -> x").max_sockets, 8);
    }
}
