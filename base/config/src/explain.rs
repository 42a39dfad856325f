//! The route explainer behind `arbor check --explain`: follows one session
//! request through the tree, one [`route_session`] call per init it passes,
//! up through nested inits to core or down into the nested init that
//! provides the service, and stops at the provider or where it is denied.

use crate::init::{Child, InitConfig};
use crate::outline::{Path, Step, field, index};
use crate::routing::{Denial, RouteDecision, providers, route_session};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// One step of a session request's way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// An init applied `child`'s routes.
    Routed {
        /// Which init: the names of the nested inits from the root, e.g. `["net"]`.
        init: Vec<String>,
        /// The requesting child, as that init knows it.
        child: String,
        /// The label as that init received it.
        label: String,
        /// What [`route_session`] decided.
        decision: RouteDecision,
        /// Where the deciding route is written, as an outline path.
        route_path: Option<Path>,
    },
    /// A nested init that provides the service hands it to the one child of
    /// its own that lists it in `provides`.
    Delegated {
        /// The nested init, by the names from the root.
        init: Vec<String>,
        /// Its child that serves the session.
        provider: String,
        /// Where that child's `provides` is written.
        provides_path: Path,
    },
}

/// Where the request ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served by this component (names from the root), with this label.
    Provided {
        /// The providing component, e.g. `["net", "nic_driver"]`.
        provider: Vec<String>,
        /// The label the provider sees.
        label: String,
    },
    /// The root init forwards it to core, which provides every service in the
    /// root's `parent_provides`.
    Core {
        /// The label core sees.
        label: String,
    },
    /// Refused, for this reason.
    Denied(String),
}

/// A request's whole way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Every step, in order.
    pub hops: Vec<Hop>,
    /// Where it ends.
    pub outcome: Outcome,
}

/// One init on the way down from the root: its config, its outline path and
/// its name path.
struct Level {
    config: InitConfig,
    path: Path,
    names: Vec<String>,
}

fn child_index(config: &InitConfig, name: &str) -> Option<usize> {
    config.children.iter().position(|c| c.name == name)
}

fn nested_config(child: &Child) -> Result<InitConfig, String> {
    let config = child
        .config
        .as_ref()
        .ok_or_else(|| format!("\"{}\" runs init but has no config", child.name))?;
    config.as_init_config().map_err(|e| {
        format!(
            "the config of \"{}\" is not an init config: {e}",
            child.name
        )
    })
}

/// Explains where `child` (a path like `"net/nic_driver"` for a child of a
/// nested init) gets `service` with `label`. Errors name a child that does
/// not exist or a nested config that does not parse.
pub fn explain_route(
    root: &InitConfig,
    child: &str,
    service: &str,
    label: &str,
) -> Result<Explanation, String> {
    let segments: Vec<&str> = child.split('/').collect();
    let Some((requester, nested)) = segments.split_last() else {
        return Err(String::from("no child named"));
    };
    let mut levels = alloc::vec![Level {
        config: root.clone(),
        path: alloc::vec![Step::Field(String::from("init"))],
        names: Vec::new(),
    }];
    for name in nested {
        let Some(level) = levels.last() else {
            break;
        };
        let i = child_index(&level.config, name)
            .ok_or_else(|| format!("no child named \"{name}\" in {}", describe(&level.names)))?;
        let nested_child = &level.config.children[i];
        if !nested_child.is_nested_init() {
            return Err(format!("\"{name}\" is not a nested init"));
        }
        let config = nested_config(nested_child)?;
        let path = field(&index(&field(&level.path, "children"), i), "config");
        let mut names = level.names.clone();
        names.push(String::from(*name));
        levels.push(Level {
            config,
            path,
            names,
        });
    }
    if let Some(level) = levels.last()
        && child_index(&level.config, requester).is_none()
    {
        return Err(format!(
            "no child named \"{requester}\" in {}; it has: {}",
            describe(&level.names),
            level
                .config
                .children
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let mut hops = Vec::new();
    let mut requester = String::from(*requester);
    let mut label = String::from(label);
    // Up the tree until a level routes to a child or denies.
    while let Some(level) = levels.pop() {
        let decision = route_session(&level.config, &requester, service, &label);
        let route_path = match (
            child_index(&level.config, &requester),
            decision.route_index(),
        ) {
            (Some(c), Some(r)) => Some(index(
                &field(&index(&field(&level.path, "children"), c), "routes"),
                r,
            )),
            _ => None,
        };
        hops.push(Hop::Routed {
            init: level.names.clone(),
            child: requester.clone(),
            label: label.clone(),
            decision: decision.clone(),
            route_path,
        });
        match decision {
            RouteDecision::Denied { reason, .. } => {
                return Ok(Explanation {
                    hops,
                    outcome: Outcome::Denied(denial_text(&reason, service)),
                });
            }
            RouteDecision::Parent {
                label: forwarded, ..
            } => {
                let Some(name) = level.names.last() else {
                    return Ok(Explanation {
                        hops,
                        outcome: Outcome::Core { label: forwarded },
                    });
                };
                requester = name.clone();
                label = forwarded;
            }
            RouteDecision::Child {
                provider,
                label: forwarded,
                ..
            } => {
                return Ok(descend(level, provider, service, forwarded, hops));
            }
            RouteDecision::Init { .. } => {
                // The init itself serves it: the root is "init", a nested
                // one goes by its path.
                let provider = if level.names.is_empty() {
                    alloc::vec![String::from(crate::INIT_BINARY)]
                } else {
                    level.names.clone()
                };
                return Ok(Explanation {
                    hops,
                    outcome: Outcome::Provided {
                        provider,
                        label: crate::compose_label(&requester, &label),
                    },
                });
            }
        }
    }
    Err(String::from("the request left the tree"))
}

/// Follows a session handed to `provider` down through nested inits.
fn descend(
    level: Level,
    provider: String,
    service: &str,
    label: String,
    mut hops: Vec<Hop>,
) -> Explanation {
    let mut config = level.config;
    let mut path = level.path;
    let mut names = level.names;
    let mut provider = provider;
    loop {
        let Some(i) = child_index(&config, &provider) else {
            return Explanation {
                hops,
                outcome: Outcome::Denied(format!("there is no child named \"{provider}\"")),
            };
        };
        let child = &config.children[i];
        names.push(provider.clone());
        if !child.is_nested_init() {
            return Explanation {
                hops,
                outcome: Outcome::Provided {
                    provider: names,
                    label,
                },
            };
        }
        let inner = match nested_config(child) {
            Ok(inner) => inner,
            Err(reason) => {
                return Explanation {
                    hops,
                    outcome: Outcome::Denied(reason),
                };
            }
        };
        path = field(&index(&field(&path, "children"), i), "config");
        match providers(&inner, "", service).as_slice() {
            [one] => {
                let j = child_index(&inner, one).unwrap_or(0);
                hops.push(Hop::Delegated {
                    init: names.clone(),
                    provider: String::from(*one),
                    provides_path: field(&index(&field(&path, "children"), j), "provides"),
                });
                provider = String::from(*one);
            }
            [] => {
                return Explanation {
                    hops,
                    outcome: Outcome::Denied(format!(
                        "nested init \"{}\" has no child that provides \"{service}\"",
                        describe(&names)
                    )),
                };
            }
            several => {
                return Explanation {
                    hops,
                    outcome: Outcome::Denied(format!(
                        "nested init \"{}\" has several children that provide \"{service}\": {}",
                        describe(&names),
                        several.join(", ")
                    )),
                };
            }
        }
        config = inner;
    }
}

fn denial_text(reason: &Denial, service: &str) -> String {
    match reason {
        Denial::NoMatchingRoute => format!("no route matches \"{service}\""),
        other => format!("{other}"),
    }
}

/// "the root init" or "init \"net/inner\"".
pub fn describe(names: &[String]) -> String {
    if names.is_empty() {
        String::from("the root init")
    } else {
        format!("init \"{}\"", names.join("/"))
    }
}
