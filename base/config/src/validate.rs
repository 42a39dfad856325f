//! The validator: every problem in a scenario that can be seen before it
//! runs, each located in the text. It is pure: what it knows about the
//! workspace (which binaries exist, what each needs at least) comes in as an
//! [`Environment`], built by the host tool from Cargo.toml files or by init
//! from its ROM modules.
//!
//! Route checks go through [`crate::routing::resolve_route`], the function
//! init routes with, so "check passes" and "init routes it" are one fact.

use crate::ByteSize;
use crate::diagnostics::{Diagnostic, Span, closest};
use crate::hardware::{Claim, HARDWARE_SERVICES, Hardware, Holder, guest_ram, malformed, refusal};
use crate::init::{ANY_SERVICE, CapCount, Child, INIT_BINARY, InitConfig, Quota, RouteTarget};
use crate::names::Shown;
use crate::outline::{Outline, Path, Step, field, index};
use crate::routing::{Denial, RouteDecision, resolve_route, route_session};
use crate::scenario::{
    Device, DiskFormat, DisplayAction, ExitOutcome, Forward, MAX_SLOT, Machine, Scenario,
    assign_slots, named_guest_ports,
};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// RAM kept back from the root init for the kernel (page tables, kernel
/// objects) and core: the root init has the machine's memory less this.
pub const KERNEL_AND_CORE_RESERVE: ByteSize = ByteSize(8 << 20);

/// How deep nested inits may go: a session label gains one element per
/// level, and init refuses composed labels of more than
/// [`crate::label::MAX_ELEMENTS`] (the child's own name and label take two).
pub const MAX_NESTED_INITS: usize = crate::label::MAX_ELEMENTS - 2;

/// Capability slots core hands to the root init.
pub const ROOT_CAPS: CapCount = CapCount(16384);

/// Why a component's own config parser refuses a config text.
#[derive(Clone, Debug)]
pub enum ConfigRefusal {
    /// The text does not decode as the component's config type; the
    /// position is relative to the config text.
    Decode(ron::error::SpannedError),
    /// It decodes, but the component cannot use a value, as it says.
    Value(String),
}

impl core::fmt::Display for ConfigRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigRefusal::Decode(error) => write!(f, "config:{error}"),
            ConfigRefusal::Value(reason) => f.write_str(reason),
        }
    }
}

/// A component's config parser as the host tool links it: the same
/// function the component runs on its config ROM, with "nothing given"
/// passed as empty text.
pub type ConfigParser = fn(&str) -> Result<(), ConfigRefusal>;

/// What a component needs at least: what its crate declares, what loading
/// its ELF costs, and how it reads its config.
#[derive(Clone, Copy, Debug, Default)]
pub struct ComponentNeeds {
    /// Least RAM it can start with, as its crate declares it (may only
    /// raise [`ComponentNeeds::load_ram`]).
    pub min_ram: Option<ByteSize>,
    /// Least capability slots it can start with.
    pub min_caps: Option<CapCount>,
    /// What loading its ELF costs, as the loader computes it (the runtime's
    /// `LoadPlan::ram_needed`); `None` when the ELF was not at hand.
    pub load_ram: Option<ByteSize>,
    /// Its config parser, when the host tool links it.
    pub config: Option<ConfigParser>,
    /// The size of its ELF file: what an init pays to hold it as a ROM.
    pub image_size: Option<ByteSize>,
}

/// What an init pays to start children beyond their quotas: for each
/// binary it loads, the Rom session that holds the ELF (the client's
/// first offer of 16 pages plus the module's size, as `Rom::open` asks,
/// and a page of tables to map it), and for each child the kernel objects
/// it creates before the child's quota pays for the rest.
pub fn starting_cost(images: &[ByteSize], children: usize) -> ByteSize {
    const PAGE: u64 = 4096;
    let roms: u64 = images
        .iter()
        .map(|size| 16 * PAGE + size.0.next_multiple_of(PAGE) + 2 * PAGE)
        .sum();
    ByteSize(roms + children as u64 * 4 * PAGE)
}

impl ComponentNeeds {
    /// The least RAM quota it can be given, and whether that figure is
    /// the loading cost (rather than the declared minimum).
    pub fn ram_floor(&self) -> Option<(ByteSize, bool)> {
        match (self.min_ram, self.load_ram) {
            (Some(min), Some(load)) if min > load => Some((min, false)),
            (_, Some(load)) => Some((load, true)),
            (Some(min), None) => Some((min, false)),
            (None, None) => None,
        }
    }
}

/// The RAM init actually hands a child for a quota: whole pages (init
/// rounds down before loading).
pub fn usable_ram(quota: ByteSize) -> ByteSize {
    ByteSize(quota.0 / 4096 * 4096)
}

/// What the validator knows beyond the scenario text.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// The binaries that exist (workspace bins on the host, ROM modules on the
    /// target) and their needs; `None` skips the binary and minimum checks.
    pub components: Option<BTreeMap<String, ComponentNeeds>>,
    /// The disk files (as `VirtioBlk(disk: ...)` names them) that exist
    /// beside the scenario; `None` skips the check.
    pub existing_disks: Option<BTreeSet<String>>,
}

impl Environment {
    /// An environment where exactly `components` exist (plus `init`).
    pub fn with_components(components: BTreeMap<String, ComponentNeeds>) -> Self {
        let mut components = components;
        components.entry(String::from(INIT_BINARY)).or_default();
        Self {
            components: Some(components),
            existing_disks: None,
        }
    }
}

/// Collects the findings for one scenario text.
pub(crate) struct Checker<'t> {
    source: &'t str,
    outline: Outline<'t>,
    environment: &'t Environment,
    /// What was found so far.
    pub diagnostics: Vec<Diagnostic>,
    /// Services the init being checked offers its parent (a nested init's
    /// `provides`): a child providing one of them is used even if no sibling
    /// routes to it.
    exported: Vec<String>,
    /// What the init being checked may claim itself (a nested init's
    /// `hardware`): its children may declare nothing outside it. `None` for
    /// the root init, whose parent is core.
    hardware_bound: Option<Hardware>,
    /// The machine's RAM, when the whole scenario is checked: device
    /// memory declared over it can never be granted.
    machine_memory: Option<ByteSize>,
    /// How many nested inits enclose the init being checked.
    depth: usize,
}

impl<'t> Checker<'t> {
    pub(crate) fn new(source: &'t str, environment: &'t Environment) -> Self {
        Self {
            source,
            outline: Outline::new(source),
            environment,
            diagnostics: Vec::new(),
            exported: Vec::new(),
            hardware_bound: None,
            depth: 0,
            machine_memory: None,
        }
    }

    fn span_of_range(&self, start: usize, end: usize) -> Span {
        // A caret under a multi-line value would be noise; underline its first line.
        let first_line_end = self
            .source
            .get(start..end)
            .and_then(|s| s.find('\n'))
            .map_or(end, |n| start + n);
        Span {
            start: self.outline.location(start),
            end: self.outline.location(first_line_end.max(start + 1)),
        }
    }

    /// The span of the value at `path` (or the nearest enclosing value).
    fn span(&self, path: &[Step]) -> Option<Span> {
        self.outline
            .locate(path)
            .map(|r| self.span_of_range(r.start, r.end))
    }

    fn error(&mut self, path: &[Step], message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::error(self.span(path), message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    fn warning(&mut self, path: &[Step], message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::warning(self.span(path), message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    /// Checks what the schema alone cannot express, for the whole scenario.
    pub(crate) fn scenario(&mut self, scenario: &Scenario) {
        let memory = scenario.machine.memory;
        self.machine_memory = Some(memory);
        if memory < Machine::MIN_MEMORY || memory > Machine::MAX_MEMORY {
            self.error(
                &path_of(&["machine", "memory"]),
                format!(
                    "machine.memory is {memory}; it must lie between {} and {}",
                    Machine::MIN_MEMORY,
                    Machine::MAX_MEMORY
                ),
                None,
            );
        }
        self.devices(&scenario.machine);
        self.named_ports(scenario);
        if let Some(test) = &scenario.test {
            if test.expect.is_empty() && test.exit == ExitOutcome::Success {
                self.error(
                    &path_of(&["test", "expect"]),
                    String::from("test.expect is empty: name at least one line the run must print"),
                    None,
                );
            }
            if test.timeout.millis == 0 {
                self.error(
                    &path_of(&["test", "timeout"]),
                    String::from("test.timeout must be longer than 0ms"),
                    None,
                );
            }
        }
        if let Some(init) = &scenario.init {
            let has = Quota {
                ram: ByteSize(memory.0.saturating_sub(KERNEL_AND_CORE_RESERVE.0)),
                caps: ROOT_CAPS,
            };
            let what = format!(
                "the root init has {} of RAM (machine.memory {memory} less {KERNEL_AND_CORE_RESERVE} for kernel and core) and {} caps",
                has.ram, has.caps.0
            );
            self.init(init, &path_of(&["init"]), has, &what);
        }
    }

    /// Checks one init level and, recursively, the nested inits below it.
    /// `has` is what this init received; `what` says so in words for messages.
    pub(crate) fn init(&mut self, init: &InitConfig, path: &[Step], has: Quota, what: &str) {
        let children_path = field(path, "children");
        let child_path = |i: usize| index(&children_path, i);

        // Names.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, child) in init.children.iter().enumerate() {
            let name_path = field(&child_path(i), "name");
            let name_problem = match crate::names::check_name(&child.name) {
                Ok(()) => None,
                Err(error) => Some(format!(
                    "{error}: the name is the first element of every label of its sessions"
                )),
            };
            if let Some(hint) = name_problem {
                self.error(
                    &name_path,
                    format!("child name \"{}\" is not usable", Shown(&child.name)),
                    Some(hint),
                );
            }
            if let Some(first) = seen.get(child.name.as_str()) {
                let first_line = self
                    .span(&field(&child_path(*first), "name"))
                    .map_or(0, |s| s.start.line);
                self.error(
                    &name_path,
                    format!("duplicate child name \"{}\"", child.name),
                    Some(format!(
                        "the first child with this name is on line {first_line}; sibling names must be unique"
                    )),
                );
            } else {
                seen.insert(&child.name, i);
            }
        }

        self.service_names(init, path);

        // Binaries and minimum quotas.
        for (i, child) in init.children.iter().enumerate() {
            self.binary(child, &child_path(i));
        }

        // Quotas.
        let budget = match init.budget {
            Some(budget) => {
                if budget.ram > has.ram || budget.caps > has.caps {
                    self.error(
                        &field(path, "budget"),
                        format!(
                            "budget ({} RAM, {} caps) is more than this init has",
                            budget.ram, budget.caps.0
                        ),
                        Some(String::from(what)),
                    );
                }
                budget
            }
            None => has,
        };
        self.quota_sums(init, path, budget, what);

        // Routes.
        for (i, child) in init.children.iter().enumerate() {
            self.routes(init, child, &child_path(i));
        }
        self.unused_services(init, path);
        self.cycles(init, path);
        self.hardware(init, path);

        // Nested inits, and every other child's config by its own parser.
        for (i, child) in init.children.iter().enumerate() {
            if child.is_nested_init() {
                self.nested(init, child, &child_path(i));
            } else {
                self.component_config(child, &child_path(i));
            }
        }
    }

    fn binary(&mut self, child: &Child, child_path: &[Step]) {
        let Some(components) = &self.environment.components else {
            return;
        };
        let binary_path = if child.binary.is_some() {
            field(child_path, "binary")
        } else {
            field(child_path, "name")
        };
        let binary = child.binary_name();
        let Some(needs) = components.get(binary).copied() else {
            let hint = match closest(binary, components.keys().map(String::as_str)) {
                Some(near) => format!("did you mean \"{near}\"?"),
                None => format!(
                    "the workspace builds: {}",
                    components
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let defaulted = if child.binary.is_none() {
                " (binary defaults to the child's name)"
            } else {
                ""
            };
            self.error(
                &binary_path,
                format!(
                    "no component in the workspace builds a binary named \"{binary}\"{defaulted}"
                ),
                Some(hint),
            );
            return;
        };
        let quota_path = if child.quota.is_some() {
            field(child_path, "quota")
        } else {
            field(child_path, "name")
        };
        let Some(quota) = child.quota else {
            // Checked against the default quota once that is known, in quota_sums.
            return;
        };
        self.minimum(child, binary, needs, quota, &quota_path);
    }

    fn minimum(
        &mut self,
        child: &Child,
        binary: &str,
        needs: ComponentNeeds,
        quota: Quota,
        path: &[Step],
    ) {
        if let Some((floor, loading)) = needs.ram_floor()
            && usable_ram(quota.ram) < floor
        {
            let why = if loading {
                format!("loading \"{binary}\" needs (computed from its ELF)")
            } else {
                format!("\"{binary}\" declares it needs (min_ram in its Cargo.toml)")
            };
            let pages = if usable_ram(quota.ram) == quota.ram {
                String::new()
            } else {
                format!(
                    " ({} in whole pages, as init hands it out)",
                    usable_ram(quota.ram)
                )
            };
            self.error(
                path,
                format!(
                    "child \"{}\" gets {}{pages} of RAM, below the {floor} that {why}",
                    Shown(&child.name),
                    quota.ram
                ),
                Some(format!("give it at least ram: \"{floor}\"")),
            );
        }
        if let Some(min_caps) = needs.min_caps
            && quota.caps < min_caps
        {
            self.error(
                path,
                format!(
                    "child \"{}\" gets {} caps, below the {} that \"{binary}\" needs",
                    child.name, quota.caps.0, min_caps.0
                ),
                Some(format!("give it at least caps: {}", min_caps.0)),
            );
        }
    }

    fn quota_sums(&mut self, init: &InitConfig, path: &[Step], budget: Quota, what: &str) {
        let mut ram: u64 = 0;
        let mut caps: u64 = 0;
        let mut ram_reported = false;
        let mut caps_reported = false;
        for (i, child) in init.children.iter().enumerate() {
            let child_path = index(&field(path, "children"), i);
            let quota = child.effective_quota(init);
            if child.quota.is_none()
                && let Some(needs) = self
                    .environment
                    .components
                    .as_ref()
                    .and_then(|c| c.get(child.binary_name()))
                    .copied()
            {
                let binary = String::from(child.binary_name());
                self.minimum(child, &binary, needs, quota, &field(&child_path, "name"));
            }
            let quota_path = if child.quota.is_some() {
                field(&child_path, "quota")
            } else {
                field(&child_path, "name")
            };
            ram = ram.saturating_add(quota.ram.0);
            caps = caps.saturating_add(quota.caps.0);
            if ram > budget.ram.0 && !ram_reported {
                ram_reported = true;
                self.error(
                    &quota_path,
                    format!(
                        "the children's RAM quotas add up to {} with \"{}\", more than the {} this init has",
                        ByteSize(ram),
                        child.name,
                        budget.ram
                    ),
                    Some(format!(
                        "{what}; shrink some quotas or give this init more"
                    )),
                );
            }
            if caps > budget.caps.0 && !caps_reported {
                caps_reported = true;
                self.error(
                    &quota_path,
                    format!(
                        "the children's cap quotas add up to {caps} with \"{}\", more than the {} this init has",
                        child.name, budget.caps.0
                    ),
                    Some(format!(
                        "{what}; shrink some quotas or give this init more"
                    )),
                );
            }
        }
    }

    fn routes(&mut self, init: &InitConfig, child: &Child, child_path: &[Step]) {
        let names: Vec<&str> = init.children.iter().map(|c| c.name.as_str()).collect();
        let mut catch_all: Option<usize> = None;
        for (r, route) in child.routes.iter().enumerate() {
            let route_path = index(&field(child_path, "routes"), r);
            let to_path = field(&route_path, "to");
            if let Some(earlier) = catch_all {
                self.warning(
                    &route_path,
                    format!(
                        "this route is never used: route {} before it matches every request",
                        earlier + 1
                    ),
                    Some(String::from(
                        "routes are tried in order; move the catch-all `service: \"*\"` route last",
                    )),
                );
            }
            if route.service == ANY_SERVICE && route.label.is_none() && catch_all.is_none() {
                catch_all = Some(r);
            }
            if route.service != ANY_SERVICE && crate::names::check_name(&route.service).is_err() {
                // Reported as a bad name; it can route nowhere.
                continue;
            }
            if route.service == ANY_SERVICE {
                // The service is only known at run time; check what can be checked now.
                if let RouteTarget::Child(name) = &route.to {
                    if name == &child.name {
                        self.error(
                            &to_path,
                            format!("route to \"{name}\" is the child itself"),
                            None,
                        );
                    } else if !names.contains(&name.as_str()) {
                        self.no_such_child(name, &names, &index(&to_path, 0));
                    }
                }
                continue;
            }
            let decision = resolve_route(init, child, r, &route.service, "");
            let RouteDecision::Denied { reason, .. } = decision else {
                continue;
            };
            let service = &route.service;
            match reason {
                // Labels are checked per request (route_session), not per route.
                Denial::DenyRoute
                | Denial::UnknownRequester
                | Denial::NoMatchingRoute
                | Denial::BadLabel(_) => {}
                Denial::NoSuchChild(name) => self.no_such_child(&name, &names, &index(&to_path, 0)),
                Denial::RouteToSelf => self.error(
                    &to_path,
                    format!("\"{}\" routes \"{service}\" to itself", child.name),
                    Some(String::from(
                        "a child cannot be its own provider; route to a sibling or Parent",
                    )),
                ),
                Denial::NotProvidedBy(name) => {
                    let others = crate::routing::providers(init, &child.name, service);
                    let hint = if others.is_empty() {
                        format!("add \"{service}\" to the provides of \"{name}\"")
                    } else {
                        format!("\"{service}\" is provided by: {}", others.join(", "))
                    };
                    self.error(
                        &index(&to_path, 0),
                        format!("child \"{name}\" does not provide \"{service}\""),
                        Some(hint),
                    );
                }
                Denial::ParentDoesNotProvide => {
                    let hint = match closest(
                        service,
                        init.parent_provides.iter().map(String::as_str),
                    ) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => format!(
                            "parent_provides lists: {}; add \"{service}\" there or route it to a child",
                            init.parent_provides.join(", ")
                        ),
                    };
                    self.error(
                        &to_path,
                        format!(
                            "route to Parent for \"{service}\", which the parent does not provide"
                        ),
                        Some(hint),
                    );
                }
                Denial::NoProvider => self.error(
                    &to_path,
                    format!("AnyChild for \"{service}\", but no child provides it"),
                    Some(format!(
                        "add \"{service}\" to the provides of the child that serves it"
                    )),
                ),
                Denial::SeveralProviders(several) => self.error(
                    &to_path,
                    format!(
                        "AnyChild for \"{service}\" is ambiguous: {} provide it",
                        several.join(", ")
                    ),
                    Some(format!(
                        "name one, e.g. `to: Child(\"{}\")`",
                        several.first().map_or("", String::as_str)
                    )),
                ),
            }
        }
    }

    fn no_such_child(&mut self, name: &str, names: &[&str], path: &[Step]) {
        let hint = match closest(name, names.iter().copied()) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!("the children here are: {}", names.join(", ")),
        };
        self.error(
            path,
            format!("route to child \"{name}\", which does not exist"),
            Some(hint),
        );
    }

    /// Service names in `parent_provides`, each child's `provides` and its
    /// routes follow [`crate::names::check_name`]; `"*"` is only a route's
    /// wildcard, and a list names each service once.
    fn service_names(&mut self, init: &InitConfig, path: &[Step]) {
        let parent_path = field(path, "parent_provides");
        self.name_list(&init.parent_provides, &parent_path, "parent_provides");
        for (i, child) in init.children.iter().enumerate() {
            let child_path = index(&field(path, "children"), i);
            self.name_list(&child.provides, &field(&child_path, "provides"), "provides");
            for (r, route) in child.routes.iter().enumerate() {
                if route.service == ANY_SERVICE {
                    continue;
                }
                if let Err(error) = crate::names::check_name(&route.service) {
                    self.error(
                        &field(&index(&field(&child_path, "routes"), r), "service"),
                        format!("service name \"{}\" is not usable", Shown(&route.service)),
                        Some(format!("{error}; `\"*\"` matches every service")),
                    );
                }
            }
        }
    }

    fn name_list(&mut self, names: &[String], list_path: &[Step], list: &str) {
        for (s, service) in names.iter().enumerate() {
            let service_path = index(list_path, s);
            if let Err(error) = crate::names::check_name(service) {
                let hint = if service == ANY_SERVICE {
                    format!("`\"*\"` is a route's wildcard; {list} names each service")
                } else {
                    format!("{error}")
                };
                self.error(
                    &service_path,
                    format!(
                        "service name \"{}\" in {list} is not usable",
                        Shown(service)
                    ),
                    Some(hint),
                );
            } else if let Some(first) = names[..s].iter().position(|n| n == service) {
                let line = self
                    .span(&index(list_path, first))
                    .map_or(0, |span| span.start.line);
                self.error(
                    &service_path,
                    format!("\"{service}\" is listed twice in {list}"),
                    Some(format!("it is already listed on line {line}; keep one")),
                );
            }
        }
    }

    /// Warns about provided services no sibling routes to.
    fn unused_services(&mut self, init: &InitConfig, path: &[Step]) {
        for (i, provider) in init.children.iter().enumerate() {
            for (s, service) in provider.provides.iter().enumerate() {
                let used = init.children.iter().any(|client| {
                    client.name != provider.name
                        && client.routes.iter().enumerate().any(|(r, route)| match &route.to {
                            RouteTarget::Child(name) if route.service == ANY_SERVICE => name == &provider.name,
                            RouteTarget::AnyChild if route.service == ANY_SERVICE => true,
                            _ => {
                                &route.service == service
                                    && matches!(
                                        resolve_route(init, client, r, service, ""),
                                        RouteDecision::Child { provider: p, .. } if p == provider.name
                                    )
                            }
                        })
                });
                let exported = self.exported.iter().any(|e| e == service);
                if crate::names::check_name(service).is_err() {
                    // Already an error of its own.
                    continue;
                }
                if !used && !exported && !provider.is_nested_init() {
                    let service_path =
                        index(&field(&index(&field(path, "children"), i), "provides"), s);
                    self.warning(
                        &service_path,
                        format!(
                            "\"{}\" provides \"{service}\" but no sibling routes to it",
                            provider.name
                        ),
                        Some(String::from("add a route to it, or drop it from provides")),
                    );
                }
            }
        }
    }

    /// Finds session dependency cycles among siblings: each waits for the next.
    fn cycles(&mut self, init: &InitConfig, path: &[Step]) {
        let count = init.children.len();
        // edges[a] = (b, route index of a that leads to b)
        let mut edges: Vec<Vec<(usize, usize)>> = alloc::vec![Vec::new(); count];
        for (a, child) in init.children.iter().enumerate() {
            for (r, route) in child.routes.iter().enumerate() {
                let provider = match &route.to {
                    RouteTarget::Child(name) if route.service == ANY_SERVICE => Some(name.clone()),
                    _ if route.service == ANY_SERVICE => None,
                    _ => match resolve_route(init, child, r, &route.service, "") {
                        RouteDecision::Child { provider, .. } => Some(provider),
                        _ => None,
                    },
                };
                if let Some(b) =
                    provider.and_then(|p| init.children.iter().position(|c| c.name == p))
                    && b != a
                {
                    edges[a].push((b, r));
                }
            }
        }
        // Depth-first search with colours; each back edge closes a cycle.
        let mut state = alloc::vec![0u8; count]; // 0 new, 1 on stack, 2 done
        let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
        for start in 0..count {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = alloc::vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&(target, route)) = edges[node].get(*next) {
                    *next += 1;
                    match state[target] {
                        0 => {
                            state[target] = 1;
                            stack.push((target, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                            let members: Vec<usize> =
                                stack[from..].iter().map(|(n, _)| *n).collect();
                            let mut key = members.clone();
                            key.sort_unstable();
                            if reported.insert(key) {
                                let mut names: Vec<&str> = members
                                    .iter()
                                    .map(|m| init.children[*m].name.as_str())
                                    .collect();
                                names.push(init.children[target].name.as_str());
                                let route_path = index(
                                    &field(&index(&field(path, "children"), node), "routes"),
                                    route,
                                );
                                self.error(
                                    &route_path,
                                    format!("session dependency cycle: {}", names.join(" -> ")),
                                    Some(String::from(
                                        "each of these waits for a session from the next, so none can finish starting; route one of these services elsewhere",
                                    )),
                                );
                            }
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                }
            }
        }
    }

    /// Parses a child's `config:` with its component's own parser (when the
    /// environment has it) and reports a refusal at its place in the text.
    fn component_config(&mut self, child: &Child, child_path: &[Step]) {
        let Some(parse) = self
            .environment
            .components
            .as_ref()
            .and_then(|c| c.get(child.binary_name()))
            .and_then(|needs| needs.config)
        else {
            return;
        };
        let config_path = field(child_path, "config");
        let binary = child.binary_name();
        let base = self.outline.find(&config_path).map(|node| node.range.start);
        let (Some(config), Some(base)) = (&child.config, base) else {
            if let Err(refusal) = parse("") {
                let why = match refusal {
                    ConfigRefusal::Decode(error) => format!("{}", error.code),
                    ConfigRefusal::Value(reason) => reason,
                };
                self.error(
                    child_path,
                    format!(
                        "\"{}\" has no config, and \"{binary}\" cannot start without one: {why}",
                        Shown(&child.name)
                    ),
                    Some(String::from("add `config: (...)` with the fields it reads")),
                );
            }
            return;
        };
        // Every field the component refuses, as for the scenario itself.
        let decoded = crate::decode::decode_with(config.as_text(), self.source, base, |text| {
            match parse(text) {
                Ok(()) => Ok(None),
                Err(ConfigRefusal::Decode(error)) => Err(error),
                Err(ConfigRefusal::Value(reason)) => Ok(Some(reason)),
            }
        });
        for mut diagnostic in decoded.diagnostics {
            diagnostic.message = format!(
                "config of \"{}\": {}",
                Shown(&child.name),
                diagnostic.message
            );
            if diagnostic.hint.is_none() {
                diagnostic.hint = Some(format!(
                    "\"{binary}\" reads its config with this type and refuses it at start"
                ));
            }
            self.diagnostics.push(diagnostic);
        }
        if let Some(Some(reason)) = decoded.value {
            self.error(
                &config_path,
                format!("config of \"{}\": {reason}", Shown(&child.name)),
                Some(format!("this is what \"{binary}\" refuses at start")),
            );
        }
    }

    /// Checks a nested init: its config parses as an init config, its
    /// expectations of this level hold, and its own level is valid.
    fn nested(&mut self, outer: &InitConfig, child: &Child, child_path: &[Step]) {
        let config_path = field(child_path, "config");
        if self.depth + 1 > MAX_NESTED_INITS {
            self.error(
                &field(child_path, "binary"),
                format!(
                    "nested init \"{}\" is {} levels deep; at most {MAX_NESTED_INITS} are allowed",
                    Shown(&child.name),
                    self.depth + 1
                ),
                Some(format!(
                    "the labels of its children would have more than {} elements, which init refuses",
                    crate::label::MAX_ELEMENTS
                )),
            );
            return;
        }
        let Some(config) = &child.config else {
            self.error(
                child_path,
                format!("\"{}\" runs init but has no config", child.name),
                Some(String::from(
                    "a nested init's config is its init section: `config: (parent_provides: [...], children: [...])`",
                )),
            );
            return;
        };
        let base = self
            .outline
            .find(&config_path)
            .map_or(0, |node| node.range.start);
        let decoded = crate::decode::decode_all::<InitConfig>(config.as_text(), self.source, base);
        let dropped = decoded.dropped_items;
        self.diagnostics.extend(decoded.diagnostics);
        let Some(inner) = decoded.value.filter(|_| !dropped) else {
            return;
        };
        // What it expects from us must be routed here.
        for (s, service) in inner.parent_provides.iter().enumerate() {
            if let RouteDecision::Denied { reason, .. } =
                route_session(outer, &child.name, service, "")
            {
                let service_path = index(&field(&config_path, "parent_provides"), s);
                self.error(
                    &service_path,
                    format!(
                        "nested init \"{}\" expects its parent to provide \"{service}\", but the parent denies it: {reason}",
                        child.name
                    ),
                    Some(format!("add a route for \"{service}\" to \"{}\"'s routes", child.name)),
                );
            }
        }
        // What it claims to provide, one of its children must.
        for (s, service) in child.provides.iter().enumerate() {
            let inner_providers = crate::routing::providers(&inner, "", service);
            if inner_providers.len() != 1 {
                let message = if inner_providers.is_empty() {
                    format!(
                        "nested init \"{}\" provides \"{service}\", but none of its children does",
                        child.name
                    )
                } else {
                    format!(
                        "nested init \"{}\" provides \"{service}\" from several children: {}",
                        child.name,
                        inner_providers.join(", ")
                    )
                };
                self.error(
                    &index(&field(child_path, "provides"), s),
                    message,
                    Some(String::from(
                        "exactly one child inside must list the service in provides",
                    )),
                );
            }
        }
        let mut quota = child.effective_quota(outer);
        // The nested init pays for itself from the same quota before it
        // hands any to its children: what loading it costs (or its declared
        // minimum, if higher) is not theirs to spend.
        let own = self
            .environment
            .components
            .as_ref()
            .and_then(|c| c.get(INIT_BINARY))
            .and_then(ComponentNeeds::ram_floor)
            .map_or(ByteSize(0), |(floor, _)| floor);
        // And for each child it starts: the ROM of its binary, its objects.
        let mut images: BTreeMap<&str, ByteSize> = BTreeMap::new();
        for inner_child in &inner.children {
            let size = self
                .environment
                .components
                .as_ref()
                .and_then(|c| c.get(inner_child.binary_name()))
                .and_then(|needs| needs.image_size);
            if let Some(size) = size {
                images.insert(inner_child.binary_name(), size);
            }
        }
        let images: Vec<ByteSize> = images.into_values().collect();
        let starting = if images.is_empty() {
            ByteSize(0)
        } else {
            starting_cost(&images, inner.children.len())
        };
        quota.ram = ByteSize(
            usable_ram(quota.ram)
                .0
                .saturating_sub(own.0)
                .saturating_sub(starting.0),
        );
        let what = if own.0 > 0 {
            format!(
                "nested init \"{}\" has {} of RAM (its quota less {own} for init itself and {starting} for the ROMs and objects of its children) and {} caps",
                child.name, quota.ram, quota.caps.0
            )
        } else {
            format!(
                "nested init \"{}\" has {} of RAM and {} caps from its quota",
                child.name, quota.ram, quota.caps.0
            )
        };
        let outer_exports = core::mem::replace(&mut self.exported, child.provides.clone());
        let outer_bound = self.hardware_bound.replace(child.hardware.clone());
        self.depth += 1;
        self.init(&inner, &config_path, quota, &what);
        self.depth -= 1;
        self.exported = outer_exports;
        self.hardware_bound = outer_bound;
    }
}

impl Checker<'_> {
    /// Checks the machine's PCI devices: slots in range and not shared, and
    /// disk images that exist.
    fn devices(&mut self, machine: &Machine) {
        let devices_path = path_of(&["machine", "devices"]);
        let slots = assign_slots(&machine.devices);
        for (i, (device, slot)) in machine.devices.iter().zip(&slots).enumerate() {
            let device_path = index(&devices_path, i);
            let kind = device.kind();
            match (device.requested_slot(), slot) {
                (Some(requested), _) if requested == 0 || requested > MAX_SLOT => {
                    self.error(
                        &field(&device_path, "slot"),
                        format!("{kind} asks for slot {requested}; slots run from 1 to {MAX_SLOT}"),
                        Some(String::from("slot 0 is the host bridge")),
                    );
                    continue;
                }
                (_, None) => {
                    self.error(
                        &device_path,
                        format!("{kind} finds no free PCI slot (bus 0 has {MAX_SLOT})"),
                        None,
                    );
                    continue;
                }
                _ => {}
            }
            let earlier = slots[..i].iter().position(|other| other == slot);
            if let (Some(j), Some(slot)) = (earlier, slot) {
                let line = self
                    .span(&index(&devices_path, j))
                    .map_or(0, |s| s.start.line);
                self.error(
                    &field(&device_path, "slot"),
                    format!(
                        "{kind} asks for slot {slot}, which {} on line {line} already has",
                        machine.devices[j].kind()
                    ),
                    Some(String::from(
                        "each PCI device needs a slot of its own; leave `slot` out to take the next free one",
                    )),
                );
            }
            if let Device::VirtioBlk { .. } = device {
                self.disk(device, &device_path);
            }
        }
        self.forwards(machine);
    }

    /// Port forwards: a guest port is a port (not 0) and forwarded once (a
    /// test names it as `{port:N}`), a host port other than 0 is taken
    /// once across every card, and a host port below 1024 needs root.
    fn forwards(&mut self, machine: &Machine) {
        let devices_path = path_of(&["machine", "devices"]);
        // (host port, line) and (guest port, line) already seen.
        let mut hosts: Vec<(u16, usize)> = Vec::new();
        let mut guests: Vec<(u16, usize)> = Vec::new();
        for (i, device) in machine.devices.iter().enumerate() {
            let Device::VirtioNet { forward, .. } = device else {
                continue;
            };
            let list = field(&index(&devices_path, i), "forward");
            for (j, Forward { host, guest }) in forward.iter().copied().enumerate() {
                let entry = index(&list, j);
                let line = self.span(&entry).map_or(0, |s| s.start.line);
                if guest == 0 {
                    self.error(
                        &field(&entry, "guest"),
                        String::from("guest port 0 is no port: name the port the guest listens on"),
                        Some(String::from("e.g. (host: 8080, guest: 80)")),
                    );
                } else if let Some((_, first)) = guests.iter().find(|(port, _)| *port == guest) {
                    self.error(
                        &field(&entry, "guest"),
                        format!("guest port {guest} is already forwarded on line {first}"),
                        Some(format!(
                            "forward each guest port once, so that `{{port:{guest}}}` in a test names one host port"
                        )),
                    );
                } else {
                    guests.push((guest, line));
                }
                if host == 0 {
                    continue;
                }
                if let Some((_, first)) = hosts.iter().find(|(port, _)| *port == host) {
                    self.error(
                        &field(&entry, "host"),
                        format!("host port {host} is already forwarded on line {first}"),
                        Some(String::from(
                            "QEMU can listen on a host port once; use `host: 0` to take any free port",
                        )),
                    );
                } else {
                    hosts.push((host, line));
                }
                if host < 1024 {
                    self.warning(
                        &field(&entry, "host"),
                        format!(
                            "host port {host} is privileged: QEMU cannot listen there without root"
                        ),
                        Some(String::from(
                            "use a port from 1024 up, or 0 for any free port",
                        )),
                    );
                }
            }
        }
    }

    /// Every `{port:N}` a test's host command names is a forwarded guest port.
    fn named_ports(&mut self, scenario: &Scenario) {
        let Some(test) = &scenario.test else {
            return;
        };
        let forwarded = crate::scenario::forwards(&scenario.machine.devices);
        let mut commands: Vec<(Path, &str)> = Vec::new();
        let display_path = path_of(&["test", "display"]);
        for (i, step) in test.display.iter().enumerate() {
            let actions = field(&index(&display_path, i), "actions");
            for (j, action) in step.actions.iter().enumerate() {
                if let DisplayAction::Run { command, .. } = action {
                    commands.push((field(&index(&actions, j), "command"), command));
                }
            }
        }
        let after_path = path_of(&["test", "after"]);
        for (i, check) in test.after.iter().enumerate() {
            commands.push((field(&index(&after_path, i), "run"), &check.run));
        }
        for (path, command) in commands {
            match named_guest_ports(command) {
                Err(text) => self.error(
                    &path,
                    format!("`{text}` names no port"),
                    Some(String::from("write {port:GUEST}, e.g. {port:80}")),
                ),
                Ok(ports) => {
                    for port in ports {
                        if !forwarded.iter().any(|f| f.guest == port) {
                            self.error(
                                &path,
                                format!("`{{port:{port}}}`: no VirtioNet forwards guest port {port}"),
                                Some(format!(
                                    "add forward: [(host: 0, guest: {port})] to the machine's VirtioNet"
                                )),
                            );
                        }
                    }
                }
            }
        }
    }

    /// A VirtioBlk names an existing `disk` or describes an `image` to
    /// build, not both; a built image has a size and its files absolute
    /// paths on a formatted volume.
    fn disk(&mut self, device: &Device, device_path: &[Step]) {
        let Device::VirtioBlk {
            disk,
            image,
            size,
            format,
            files,
            ..
        } = device
        else {
            return;
        };
        match (disk, image) {
            (Some(_), Some(_)) | (None, None) => self.error(
                device_path,
                String::from("VirtioBlk needs exactly one of `disk` (an existing image) and `image` (one the tool builds)"),
                Some(String::from(
                    "e.g. VirtioBlk(image: \"target/disks/NAME.img\", size: \"64M\", format: Fat32)",
                )),
            ),
            (Some(disk), None) => {
                if let Some(existing) = &self.environment.existing_disks
                    && !existing.contains(disk)
                {
                    self.error(
                        &field(device_path, "disk"),
                        format!("VirtioBlk's disk \"{disk}\" does not exist"),
                        Some(String::from(
                            "a disk is a raw image file, named relative to the scenario's directory",
                        )),
                    );
                }
                for (name, given) in [
                    ("size", size.is_some()),
                    ("format", format.is_some()),
                    ("files", !files.is_empty()),
                ] {
                    if given {
                        self.error(
                            &field(device_path, name),
                            format!("`{name}` describes a built `image`, not an existing `disk`"),
                            None,
                        );
                    }
                }
            }
            (None, Some(_)) => {
                match size {
                    None => self.error(
                        device_path,
                        String::from("a built VirtioBlk image needs a `size`"),
                        Some(String::from("e.g. size: \"64M\" (FAT32 needs at least 34M)")),
                    ),
                    Some(size) if *size == ByteSize(0) || size.0 % 512 != 0 => self.error(
                        &field(device_path, "size"),
                        format!("an image of {} bytes is not whole 512-byte sectors", size.0),
                        None,
                    ),
                    Some(size) if format == &Some(DiskFormat::Fat32) && size.0 < 34 << 20 => {
                        self.error(
                            &field(device_path, "size"),
                            format!("a FAT32 image needs at least 34M, not {} bytes", size.0),
                            None,
                        )
                    }
                    Some(_) => {}
                }
                if !files.is_empty() && format != &Some(DiskFormat::Fat32) {
                    self.error(
                        &field(device_path, "files"),
                        String::from("files can only be copied onto a formatted image"),
                        Some(String::from("add format: Fat32")),
                    );
                }
                let files_path = field(device_path, "files");
                for (j, file) in files.iter().enumerate() {
                    let bad = !file.to.starts_with('/')
                        || file.to.ends_with('/')
                        || file.to.split('/').any(|part| part == ".." || part == ".");
                    if bad {
                        self.error(
                            &field(&index(&files_path, j), "to"),
                            format!("\"{}\" is not an absolute file path on the image", file.to),
                            Some(String::from("e.g. to: \"/docs/A long name.txt\"")),
                        );
                    }
                }
            }
        }
    }

    /// A platform driver must be a child of the root init: core recognises
    /// it by the first element of its labels, which only the root init adds.
    fn platform_driver(&mut self, name: &str, path: &[Step]) {
        if self.depth > 0 || self.hardware_bound.is_some() {
            self.error(
                path,
                format!("\"{name}\" is declared the platform driver inside a nested init"),
                Some(String::from(
                    "the platform driver must be a child of the root init, which core recognises it by",
                )),
            );
        }
    }

    /// Checks every child's hardware declaration: each range on its own,
    /// against the reserved ranges, against what the enclosing nested init
    /// declares, against the siblings' declarations, and against the
    /// routes that must carry its requests.
    fn hardware(&mut self, init: &InitConfig, path: &[Step]) {
        let children_path = field(path, "children");
        let declared: Vec<Vec<(Claim, Path)>> = init
            .children
            .iter()
            .enumerate()
            .map(|(i, child)| declarations(&child.hardware, &index(&children_path, i)))
            .collect();
        let mut platform_drivers = 0;
        for (i, child) in init.children.iter().enumerate() {
            let child_path = index(&children_path, i);
            let name = &child.name;
            if child.hardware.platform {
                self.platform_driver(name, &field(&field(&child_path, "hardware"), "platform"));
                platform_drivers += 1;
                if platform_drivers > 1 {
                    self.error(
                        &field(&field(&child_path, "hardware"), "platform"),
                        format!("\"{name}\" is a second platform driver"),
                        Some(String::from(
                            "one component owns the PCI bus: declare `platform: true` for one child only",
                        )),
                    );
                }
            }
            for (claim, claim_path) in &declared[i] {
                if let Some(why) = malformed(claim) {
                    self.error(
                        claim_path,
                        format!("\"{name}\" declares {claim}, which cannot be claimed: {why}"),
                        None,
                    );
                    continue;
                }
                if let Some(reserved) = refusal(claim, child.hardware.platform) {
                    let hint = match reserved.holder {
                        Holder::Kernel => {
                            "the kernel drives these itself; no component may touch them"
                        }
                        Holder::PlatformDriver => {
                            "PCI configuration space, BARs and PCI interrupt lines are for the platform driver alone (`hardware: (platform: true)`); a driver gets its devices from a Platform session"
                        }
                    };
                    self.warning(
                        claim_path,
                        format!(
                            "\"{name}\" declares {claim}, which core refuses to every child: {reserved}"
                        ),
                        Some(String::from(hint)),
                    );
                }
                if let Some(memory) = self.machine_memory
                    && guest_ram(memory.0).iter().any(|ram| ram.overlaps(claim))
                {
                    self.warning(
                        claim_path,
                        format!(
                            "\"{name}\" declares {claim}, which is RAM on this machine (machine.memory {memory}): the kernel refuses device memory over RAM"
                        ),
                        Some(String::from(
                            "device memory lies outside RAM (e.g. the HPET at 0xFED0_0000); check the address",
                        )),
                    );
                }
                if let Some(bound) = &self.hardware_bound
                    && !bound.permits(claim)
                {
                    let message = format!(
                        "\"{name}\" declares {claim}, outside what its init may claim ({bound})"
                    );
                    self.error(
                        claim_path,
                        message,
                        Some(String::from(
                            "a nested init's children may claim only what the nested init itself declares in its `hardware`",
                        )),
                    );
                }
                let sibling = declared[..i].iter().enumerate().find_map(|(j, theirs)| {
                    theirs
                        .iter()
                        .find(|(other, _)| other.overlaps(claim))
                        .map(|(other, other_path)| (j, *other, other_path.clone()))
                });
                if let Some((j, other, other_path)) = sibling {
                    let line = self.span(&other_path).map_or(0, |s| s.start.line);
                    self.error(
                        claim_path,
                        format!(
                            "\"{name}\" declares {claim}, which overlaps {other} declared by \"{}\" on line {line}",
                            init.children[j].name
                        ),
                        Some(String::from(
                            "core gives each port, line and page to one session at a time, so only one of them could have it: declare it for one child",
                        )),
                    );
                }
            }
            for (service, kind) in HARDWARE_SERVICES.into_iter().zip(HARDWARE_FIELDS) {
                if !child.hardware.declares(service) {
                    continue;
                }
                if let RouteDecision::Denied { reason, .. } = route_session(init, name, service, "")
                {
                    self.error(
                        &field(&field(&child_path, "hardware"), kind),
                        format!(
                            "\"{name}\" declares {kind}, but its {service} requests are denied: {reason}"
                        ),
                        Some(format!(
                            "route them, e.g. `(service: \"{service}\", to: Parent)`"
                        )),
                    );
                }
            }
            for (r, route) in child.routes.iter().enumerate() {
                let Some(kind) = HARDWARE_SERVICES
                    .iter()
                    .position(|s| *s == route.service)
                    .map(|k| HARDWARE_FIELDS[k])
                else {
                    continue;
                };
                if route.to != RouteTarget::Deny
                    && !child.hardware.platform
                    && !child.hardware.declares(&route.service)
                {
                    self.warning(
                        &index(&field(&child_path, "routes"), r),
                        format!(
                            "\"{name}\" routes {} but declares no {kind}: init refuses every such request it makes",
                            route.service
                        ),
                        Some(format!(
                            "declare what it claims, e.g. `hardware: ({kind}: [...])`, or drop the route"
                        )),
                    );
                }
            }
        }
    }
}

/// The field of [`Hardware`] for each of [`HARDWARE_SERVICES`].
const HARDWARE_FIELDS: [&str; 3] = ["io_ports", "irqs", "io_mem"];

/// Each declared range of a child with its path in the text, in the order
/// [`Hardware::claims`] gives them.
fn declarations(hardware: &Hardware, child_path: &[Step]) -> Vec<(Claim, Path)> {
    let hardware_path = field(child_path, "hardware");
    let counts = [
        hardware.io_ports.len(),
        hardware.irqs.len(),
        hardware.io_mem.len(),
    ];
    let paths = HARDWARE_FIELDS
        .iter()
        .zip(counts)
        .flat_map(|(kind, count)| (0..count).map(move |k| (*kind, k)))
        .map(|(kind, k)| index(&field(&hardware_path, kind), k));
    hardware.claims().zip(paths).collect()
}

/// A path from plain field names.
fn path_of(names: &[&str]) -> Path {
    names
        .iter()
        .map(|n| Step::Field(String::from(*n)))
        .collect()
}
