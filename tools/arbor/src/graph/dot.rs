//! Graphviz DOT: nested inits as clusters.

use super::level::*;
use super::text::{list_or_none, quota_text};
use std::fmt::Write as _;

/// A DOT string literal.
pub(super) fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Graphviz DOT: nested inits as clusters, each init as a node its children's
/// parent routes point to.
pub fn dot(title: &str, level: &Level) -> String {
    let mut output = format!(
        "digraph {} {{\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=monospace, fontsize=10];\n  edge [fontname=monospace, fontsize=9];\n",
        quote(title)
    );
    dot_level(
        level,
        &level.title,
        &format!(
            "{} ({})\\nparent provides: {}",
            level.title,
            quota_text(level.budget),
            list_or_none(&level.parent_provides)
        ),
        "  ",
        &mut output,
    );
    output.push_str("}\n");
    output
}

pub(super) fn dot_level(level: &Level, id: &str, header: &str, indent: &str, output: &mut String) {
    let _ = writeln!(
        output,
        "{indent}subgraph {} {{",
        quote(&format!("cluster_{id}"))
    );
    let _ = writeln!(output, "{indent}  style=rounded; color=gray40;");
    let _ = writeln!(
        output,
        "{indent}  {} [label={}, shape=plaintext];",
        quote(id),
        quote(header).replace("\\\\n", "\\n")
    );
    let node_id = |i: usize| {
        format!(
            "{id}/{}",
            level.components.get(i).map_or("", |c| c.name.as_str())
        )
    };
    for (i, component) in level.components.iter().enumerate() {
        match &component.nested {
            Some(nested) => {
                let header = format!(
                    "{} [init] ({})\\nparent provides: {}\\nprovides: {}",
                    component.name,
                    quota_text(component.quota),
                    list_or_none(&nested.parent_provides),
                    list_or_none(&component.provides)
                );
                dot_level(nested, &node_id(i), &header, &format!("{indent}  "), output);
            }
            None => {
                let provides = if component.provides.is_empty() {
                    String::new()
                } else {
                    format!("\nprovides: {}", component.provides.join(", "))
                };
                let label = format!(
                    "{}\n{}\n{}{provides}",
                    component.name,
                    component.binary,
                    quota_text(component.quota)
                );
                let _ = writeln!(
                    output,
                    "{indent}  {} [label={}];",
                    quote(&node_id(i)),
                    quote(&label)
                );
            }
        }
    }
    for edge in &level.edges {
        let to = match edge.to {
            EdgeTarget::Parent => id.to_string(),
            EdgeTarget::Sibling(i) => node_id(i),
        };
        let _ = writeln!(
            output,
            "{indent}  {} -> {} [label={}];",
            quote(&node_id(edge.from)),
            quote(&to),
            quote(&edge.services.join(", "))
        );
    }
    let _ = writeln!(output, "{indent}}}");
}
