//! The tree a picture is of: each init's children, their quotas, nested
//! inits, and route edges merged per target.

use arbor_config::{
    ANY_SERVICE, ByteSize, Environment, InitConfig, KERNEL_AND_CORE_RESERVE, LabelMatch, Quota,
    ROOT_CAPS, RouteDecision, RouteTarget, check_scenario, resolve_route,
};

/// One init and what it starts.
#[derive(Clone, Debug)]
pub struct Level {
    /// How the header names it.
    pub title: String,
    /// What it may hand out.
    pub budget: Quota,
    /// Services its parent answers.
    pub parent_provides: Vec<String>,
    /// Its children.
    pub components: Vec<Component>,
    /// Routes between its children and to its parent, merged per pair.
    pub edges: Vec<Edge>,
}

/// One child of an init.
#[derive(Clone, Debug)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// The binary it runs.
    pub binary: String,
    /// Its quota.
    pub quota: Quota,
    /// Services it provides.
    pub provides: Vec<String>,
    /// For a nested init: its own level.
    pub nested: Option<Level>,
}

/// Where a route arrow ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeTarget {
    /// The init's parent (drawn as the init's header).
    Parent,
    /// A sibling, by index.
    Sibling(usize),
}

/// The routes from one child to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The routing child, by index.
    pub from: usize,
    /// Where its sessions go.
    pub to: EdgeTarget,
    /// The services (with label matches) routed this way.
    pub services: Vec<String>,
}

pub(super) fn service_text(service: &str, label: Option<&LabelMatch>) -> String {
    match label {
        None => service.to_string(),
        Some(LabelMatch::Exact(text)) => format!("{service} \"{text}\""),
        Some(LabelMatch::Prefix(text)) => format!("{service} \"{text}…\""),
        Some(LabelMatch::Suffix(text)) => format!("{service} \"…{text}\""),
    }
}

/// Builds the level for `init`, which has `budget`.
pub fn build_level(init: &InitConfig, title: String, budget: Quota) -> Level {
    let budget = init.budget.unwrap_or(budget);
    let mut components = Vec::new();
    for child in &init.children {
        let quota = child.effective_quota(init);
        let nested = child
            .is_nested_init()
            .then(|| child.config.as_ref().and_then(|c| c.as_init_config().ok()))
            .flatten()
            .map(|inner| build_level(&inner, child.name.clone(), quota));
        components.push(Component {
            name: child.name.clone(),
            binary: child.binary_name().to_string(),
            quota,
            provides: child.provides.clone(),
            nested,
        });
    }
    let mut edges: Vec<Edge> = Vec::new();
    for (from, child) in init.children.iter().enumerate() {
        for (r, route) in child.routes.iter().enumerate() {
            let to = match &route.to {
                RouteTarget::Deny => None,
                // Drawn to the enclosing init's box, as Parent routes are.
                RouteTarget::Parent | RouteTarget::Init => Some(EdgeTarget::Parent),
                RouteTarget::Child(name) => init
                    .children
                    .iter()
                    .position(|c| &c.name == name)
                    .map(EdgeTarget::Sibling),
                RouteTarget::AnyChild if route.service == ANY_SERVICE => None,
                RouteTarget::AnyChild => match resolve_route(init, child, r, &route.service, "") {
                    RouteDecision::Child { provider, .. } => init
                        .children
                        .iter()
                        .position(|c| c.name == provider)
                        .map(EdgeTarget::Sibling),
                    _ => None,
                },
            };
            let Some(to) = to else { continue };
            let mut service = service_text(&route.service, route.label.as_ref());
            if route.to == RouteTarget::Init {
                // Not passed on upwards: the init in whose box it is serves it.
                service.push_str(" (by init itself)");
            }
            match edges.iter_mut().find(|e| e.from == from && e.to == to) {
                Some(edge) => edge.services.push(service),
                None => edges.push(Edge {
                    from,
                    to,
                    services: vec![service],
                }),
            }
        }
    }
    Level {
        title,
        budget,
        parent_provides: init.parent_provides.clone(),
        components,
        edges,
    }
}

/// Builds the root level of a scenario text, or says why it cannot.
pub fn scenario_level(text: &str) -> Result<Option<Level>, String> {
    let report = check_scenario(text, &Environment::default());
    let scenario = report.scenario.ok_or_else(|| {
        "the scenario does not parse; run `cargo arbor check` for the details".to_string()
    })?;
    let Some(init) = scenario.init else {
        return Ok(None);
    };
    let budget = Quota {
        ram: ByteSize(
            scenario
                .machine
                .memory
                .0
                .saturating_sub(KERNEL_AND_CORE_RESERVE.0),
        ),
        caps: ROOT_CAPS,
    };
    Ok(Some(build_level(&init, "init".to_string(), budget)))
}
