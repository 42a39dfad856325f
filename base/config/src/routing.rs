//! The routing engine: where one init sends one child's session request.
//!
//! init calls [`route_session`] for every request at run time; `arbor check`
//! calls the same function (through [`resolve_route`]) to validate routes,
//! and `arbor check --explain` calls it once per level of the tree. There is
//! no second implementation, so the checker, the explainer and the running
//! system cannot disagree.
//!
//! Semantics (Genode's): a child's routes are tried in order and the first
//! whose service and label match decides; `"*"` matches any service; a
//! request no route matches is denied. Labels are matched as the child sent
//! them and composed ("child -> label") when the request is passed on, so
//! servers can pick per-client policy by label. Before any route is tried,
//! the label's elements are checked ([`crate::label`]): a label that could
//! pass for another structure is refused here, for init, `check` and
//! `--explain` alike.

use crate::init::{ANY_SERVICE, Child, INIT_SERVICES, InitConfig, Route, RouteTarget};
use crate::label::{self, LabelError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Where one session request goes, and which route decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteDecision {
    /// Forward to this init's parent.
    Parent {
        /// Index of the matching route in the child's `routes`.
        route: usize,
        /// The label the parent receives.
        label: String,
    },
    /// Hand to a sibling that provides the service.
    Child {
        /// Index of the matching route in the child's `routes`.
        route: usize,
        /// The providing sibling's name.
        provider: String,
        /// The label the provider receives.
        label: String,
    },
    /// Served by this init itself (one of [`INIT_SERVICES`]).
    Init {
        /// Index of the matching route in the child's `routes`.
        route: usize,
    },
    /// Refused.
    Denied {
        /// Index of the route that led to the refusal, if one matched.
        route: Option<usize>,
        /// Why.
        reason: Denial,
    },
}

impl RouteDecision {
    /// The index of the route that decided, if any matched.
    pub fn route_index(&self) -> Option<usize> {
        match self {
            RouteDecision::Parent { route, .. }
            | RouteDecision::Child { route, .. }
            | RouteDecision::Init { route } => Some(*route),
            RouteDecision::Denied { route, .. } => *route,
        }
    }
}

/// Why a session request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The requester is not one of this init's children.
    UnknownRequester,
    /// None of the child's routes matches the service and label.
    NoMatchingRoute,
    /// The matching route says `Deny`.
    DenyRoute,
    /// The route goes to `Parent`, which does not provide the service.
    ParentDoesNotProvide,
    /// The route goes to `Init`, which serves only [`INIT_SERVICES`].
    InitDoesNotProvide,
    /// The route names a sibling that does not exist.
    NoSuchChild(String),
    /// The route names the requester itself.
    RouteToSelf,
    /// The named sibling does not list the service in `provides`.
    NotProvidedBy(String),
    /// `AnyChild`, and no sibling provides the service.
    NoProvider,
    /// `AnyChild`, and several siblings provide the service.
    SeveralProviders(Vec<String>),
    /// The label is malformed or forged (see [`crate::label`]).
    BadLabel(LabelError),
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::UnknownRequester => f.write_str("the requester is not a child of this init"),
            Denial::NoMatchingRoute => f.write_str("no route matches"),
            Denial::DenyRoute => f.write_str("the route says Deny"),
            Denial::ParentDoesNotProvide => {
                f.write_str("the parent does not provide it (not in parent_provides)")
            }
            Denial::InitDoesNotProvide => write!(
                f,
                "init serves only {} itself (route to: Init)",
                INIT_SERVICES.join(", ")
            ),
            Denial::NoSuchChild(name) => write!(f, "there is no child named \"{name}\""),
            Denial::RouteToSelf => f.write_str("the route names the requesting child itself"),
            Denial::NotProvidedBy(name) => write!(f, "child \"{name}\" does not provide it"),
            Denial::NoProvider => f.write_str("no child provides it"),
            Denial::SeveralProviders(names) => {
                write!(f, "several children provide it: {}", names.join(", "))
            }
            Denial::BadLabel(error) => write!(f, "bad label: {error}"),
        }
    }
}

/// The label a request carries once it leaves `child`: "child -> label",
/// or just the child's name when the child gave no label.
pub fn compose_label(child: &str, label: &str) -> String {
    if label.is_empty() {
        String::from(child)
    } else {
        format!("{child}{}{label}", label::SEPARATOR)
    }
}

/// Whether `route` applies to a request for `service` with `label`.
pub fn route_matches(route: &Route, service: &str, label: &str) -> bool {
    (route.service == ANY_SERVICE || route.service == service)
        && route.label.as_ref().is_none_or(|m| m.matches(label))
}

/// The children of `config` other than `requester` that provide `service`.
pub fn providers<'a>(config: &'a InitConfig, requester: &str, service: &str) -> Vec<&'a str> {
    config
        .children
        .iter()
        .filter(|c| c.name != requester && c.provides.iter().any(|p| p == service))
        .map(|c| c.name.as_str())
        .collect()
}

/// Decides where `child`'s request for `service` with `label` goes.
pub fn route_session(
    config: &InitConfig,
    child: &str,
    service: &str,
    label: &str,
) -> RouteDecision {
    let Some(requester) = config.children.iter().find(|c| c.name == child) else {
        return RouteDecision::Denied {
            route: None,
            reason: Denial::UnknownRequester,
        };
    };
    if let Err(error) = label::check_request_label(label, requester.is_nested_init()) {
        return RouteDecision::Denied {
            route: None,
            reason: Denial::BadLabel(error),
        };
    }
    match requester
        .routes
        .iter()
        .position(|route| route_matches(route, service, label))
    {
        Some(index) => resolve_route(config, requester, index, service, label),
        None => RouteDecision::Denied {
            route: None,
            reason: Denial::NoMatchingRoute,
        },
    }
}

/// Where route number `route` of `requester` sends a request for `service`,
/// taking for granted that the route matched. The validator calls this for
/// each declared route; [`route_session`] calls it for the route that matched.
/// It takes the child itself, not its name, so a scenario with duplicate
/// names is still checked child by child.
pub fn resolve_route(
    config: &InitConfig,
    requester: &Child,
    route: usize,
    service: &str,
    label: &str,
) -> RouteDecision {
    let child = requester.name.as_str();
    let denied = |reason| RouteDecision::Denied {
        route: Some(route),
        reason,
    };
    let Some(target) = requester.routes.get(route).map(|r| &r.to) else {
        return RouteDecision::Denied {
            route: None,
            reason: Denial::NoMatchingRoute,
        };
    };
    let forwarded = compose_label(child, label);
    match target {
        RouteTarget::Deny => denied(Denial::DenyRoute),
        RouteTarget::Init => {
            if INIT_SERVICES.contains(&service) {
                RouteDecision::Init { route }
            } else {
                denied(Denial::InitDoesNotProvide)
            }
        }
        RouteTarget::Parent => {
            if config.parent_provides.iter().any(|s| s == service) {
                RouteDecision::Parent {
                    route,
                    label: forwarded,
                }
            } else {
                denied(Denial::ParentDoesNotProvide)
            }
        }
        RouteTarget::Child(name) => {
            if name == child {
                return denied(Denial::RouteToSelf);
            }
            match config.children.iter().find(|c| &c.name == name) {
                None => denied(Denial::NoSuchChild(name.clone())),
                Some(provider) if !provider.provides.iter().any(|s| s == service) => {
                    denied(Denial::NotProvidedBy(name.clone()))
                }
                Some(_) => RouteDecision::Child {
                    route,
                    provider: name.clone(),
                    label: forwarded,
                },
            }
        }
        RouteTarget::AnyChild => match providers(config, child, service).as_slice() {
            [] => denied(Denial::NoProvider),
            [one] => RouteDecision::Child {
                route,
                provider: String::from(*one),
                label: forwarded,
            },
            several => denied(Denial::SeveralProviders(
                several.iter().map(|s| String::from(*s)).collect(),
            )),
        },
    }
}
