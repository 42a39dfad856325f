//! The tree for the terminal.

use super::level::*;
use arbor_config::Quota;
use std::fmt::Write as _;

pub(super) fn quota_text(quota: Quota) -> String {
    format!("{} RAM, {} caps", quota.ram, quota.caps.0)
}

pub(super) fn routes_text(level: &Level, from: usize) -> String {
    level
        .edges
        .iter()
        .filter(|e| e.from == from)
        .map(|e| {
            let target = match e.to {
                EdgeTarget::Parent => "parent".to_string(),
                EdgeTarget::Sibling(i) => level
                    .components
                    .get(i)
                    .map_or("?".to_string(), |c| c.name.clone()),
            };
            format!("{} → {target}", e.services.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tree for the terminal.
pub fn text_tree(title: &str, level: &Level) -> String {
    let mut output = format!(
        "{title}\n{} ({}; parent provides: {})\n",
        level.title,
        quota_text(level.budget),
        list_or_none(&level.parent_provides)
    );
    text_children(level, "", &mut output);
    output
}

pub(super) fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

pub(super) fn text_children(level: &Level, prefix: &str, output: &mut String) {
    for (i, component) in level.components.iter().enumerate() {
        let last = i + 1 == level.components.len();
        let (branch, continuation) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let binary = if component.binary == component.name {
            String::new()
        } else {
            format!(" [{}]", component.binary)
        };
        let provides = if component.provides.is_empty() {
            String::new()
        } else {
            format!("  provides {}", component.provides.join(", "))
        };
        let _ = writeln!(
            output,
            "{prefix}{branch}{}{binary}  {}{provides}",
            component.name,
            quota_text(component.quota)
        );
        let inner_prefix = format!("{prefix}{continuation}");
        let routes = routes_text(level, i);
        let bar = if component
            .nested
            .as_ref()
            .is_some_and(|n| !n.components.is_empty())
        {
            "│ "
        } else {
            "  "
        };
        if !routes.is_empty() {
            let _ = writeln!(output, "{inner_prefix}{bar}routes: {routes}");
        }
        if let Some(nested) = &component.nested {
            let _ = writeln!(
                output,
                "{inner_prefix}{bar}parent provides: {}",
                list_or_none(&nested.parent_provides)
            );
            text_children(nested, &inner_prefix, output);
        }
    }
}
