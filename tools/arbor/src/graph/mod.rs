//! `cargo arbor graph`: the component tree and its routes as a picture.
//!
//! The scenario is first turned into a [`Level`] tree (components, their
//! quotas, nested inits, merged route edges), then drawn three ways: SVG
//! with our own layered layout (no Graphviz needed), DOT for those who have
//! Graphviz, and a text tree for the terminal.
//!
//! SVG layout: inside each init, components are put in rows by how deep
//! their session dependencies go, clients above the providers they use, at
//! most `layout::ROW_LIMIT` boxes per row; a nested init is drawn as a rounded
//! cluster holding its own rows; the init itself is the header band at the
//! top of its cluster, where arrows for parent-routed services end.
//!
//! The parts: `level` (the tree the picture is of), `text`, `dot`, and the
//! SVG in two steps, `layout` (sizes and positions) and `svg` (drawing).

mod dot;
mod layout;
mod level;
mod svg;
#[cfg(test)]
mod tests;
mod text;

use crate::scenarios;
use arbor_config::{ByteSize, CapCount, InitConfig, Quota};
use dot::{dot, quote};
use level::{build_level, scenario_level};
use svg::svg;
use text::text_tree;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A self-contained SVG picture.
    Svg,
    /// Graphviz DOT.
    Dot,
    /// A tree for the terminal.
    Text,
}

/// `cargo arbor graph SCENARIO [--format F] [-o FILE]`.
pub fn graph_command(
    name: &str,
    format: Format,
    output: Option<&std::path::Path>,
) -> Result<std::process::ExitCode, String> {
    let path = scenarios::locate(name)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let level = scenario_level(&text)?;
    let title = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    let drawn = match (&level, format) {
        (Some(level), Format::Svg) => svg(&title, level),
        (Some(level), Format::Dot) => dot(&title, level),
        (Some(level), Format::Text) => text_tree(&title, level),
        (None, Format::Text) => format!("{title}: no init section (kernel only)\n"),
        (None, Format::Dot) => format!(
            "digraph {} {{ label={}; }}\n",
            quote(&title),
            quote("kernel only: no init section")
        ),
        (None, Format::Svg) => svg(
            &title,
            &build_level(
                &InitConfig {
                    parent_provides: vec![],
                    default_quota: Quota::DEFAULT_CHILD,
                    budget: None,
                    children: vec![],
                },
                "init (none: kernel only)".to_string(),
                Quota {
                    ram: ByteSize(0),
                    caps: CapCount(0),
                },
            ),
        ),
    };
    match output {
        Some(file) => {
            std::fs::write(file, drawn)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            eprintln!("arbor: wrote {}", file.display());
        }
        None => print!("{drawn}"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
