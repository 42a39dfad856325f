//! `cargo arbor graph`: the component tree and its routes as a picture.
//!
//! The scenario is first turned into a [`Level`] tree (components, their
//! quotas, nested inits, merged route edges), then drawn three ways: SVG
//! with our own layered layout (no Graphviz needed), DOT for those who have
//! Graphviz, and a text tree for the terminal.
//!
//! SVG layout: inside each init, components are put in rows by how deep
//! their session dependencies go, clients above the providers they use, at
//! most [`ROW_LIMIT`] boxes per row; a nested init is drawn as a rounded
//! cluster holding its own rows; the init itself is the header band at the
//! top of its cluster, where arrows for parent-routed services end.

use crate::scenarios;
use arbor_config::{
    ANY_SERVICE, ByteSize, CapCount, Environment, InitConfig, KERNEL_AND_CORE_RESERVE, LabelMatch,
    Quota, ROOT_CAPS, RouteDecision, RouteTarget, check_scenario, resolve_route,
};
use std::fmt::Write as _;

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

fn service_text(service: &str, label: Option<&LabelMatch>) -> String {
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
                RouteTarget::Parent => Some(EdgeTarget::Parent),
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
            let service = service_text(&route.service, route.label.as_ref());
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

fn quota_text(quota: Quota) -> String {
    format!("{} RAM, {} caps", quota.ram, quota.caps.0)
}

fn routes_text(level: &Level, from: usize) -> String {
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

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

fn text_children(level: &Level, prefix: &str, output: &mut String) {
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

/// A DOT string literal.
fn quote(text: &str) -> String {
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

fn dot_level(level: &Level, id: &str, header: &str, indent: &str, output: &mut String) {
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

// ---- SVG ----

/// Boxes per row before the row wraps.
pub const ROW_LIMIT: usize = 5;
const CHAR_WIDTH: f64 = 7.2;
const LINE_HEIGHT: f64 = 15.0;
const PAD: f64 = 8.0;
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 64.0;
const MARGIN: f64 = 14.0;

/// XML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn text_width(lines: &[String]) -> f64 {
    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_WIDTH
}

/// A laid-out level: its size, the lines of its header, and where each child sits.
struct Layout {
    width: f64,
    height: f64,
    header: Vec<String>,
    header_height: f64,
    /// (x, y) of each component relative to the level's corner, with its size.
    places: Vec<(f64, f64, f64, f64)>,
    nested: Vec<Option<Layout>>,
}

fn leaf_lines(component: &Component) -> Vec<String> {
    let mut lines = vec![component.name.clone()];
    if component.binary != component.name {
        lines.push(format!("bin: {}", component.binary));
    }
    lines.push(quota_text(component.quota));
    if !component.provides.is_empty() {
        lines.push(format!("provides: {}", component.provides.join(", ")));
    }
    lines
}

/// Row of each component: providers below the clients that use them.
fn rows(level: &Level) -> Vec<usize> {
    let count = level.components.len();
    // depth[i]: how long the chain of siblings that i depends on is.
    let mut depth = vec![0usize; count];
    // Bellman-Ford style relaxation, bounded so cycles cannot loop forever.
    for _ in 0..count {
        let mut changed = false;
        for edge in &level.edges {
            if let EdgeTarget::Sibling(to) = edge.to
                && to != edge.from
                && to < count
                && edge.from < count
                && depth[edge.from] < depth[to] + 1
                && depth[to] + 1 < count
            {
                depth[edge.from] = depth[to] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let deepest = depth.iter().copied().max().unwrap_or(0);
    depth.iter().map(|d| deepest - d).collect()
}

fn layout(level: &Level, header: Vec<String>) -> Layout {
    let header_height = header.len() as f64 * LINE_HEIGHT + PAD;
    let mut sizes = Vec::new();
    let mut nested = Vec::new();
    for component in &level.components {
        match &component.nested {
            Some(inner) => {
                let inner_layout = layout(inner, nested_header(component, inner));
                sizes.push((inner_layout.width, inner_layout.height));
                nested.push(Some(inner_layout));
            }
            None => {
                let lines = leaf_lines(component);
                sizes.push((
                    text_width(&lines) + 2.0 * PAD,
                    lines.len() as f64 * LINE_HEIGHT + 2.0 * PAD,
                ));
                nested.push(None);
            }
        }
    }
    // Group into visual rows, wrapping long ones.
    let row_of = rows(level);
    let mut visual_rows: Vec<Vec<usize>> = Vec::new();
    // Where each placed component sits across its row, from 0 to 1; a row is
    // ordered by where its clients above sit, which uncrosses most arrows.
    let mut across = vec![0.5f64; level.components.len()];
    for row in 0..=row_of.iter().copied().max().unwrap_or(0) {
        let mut members: Vec<(f64, usize)> = (0..level.components.len())
            .filter(|i| row_of[*i] == row)
            .map(|i| {
                let clients: Vec<f64> = level
                    .edges
                    .iter()
                    .filter(|e| {
                        e.to == EdgeTarget::Sibling(i)
                            && row_of.get(e.from).is_some_and(|r| *r < row)
                    })
                    .map(|e| across[e.from])
                    .collect();
                let key = if clients.is_empty() {
                    0.5
                } else {
                    clients.iter().sum::<f64>() / clients.len() as f64
                };
                (key, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = members.len().max(1) as f64;
        for (n, (_, i)) in members.iter().enumerate() {
            across[*i] = (n as f64 + 0.5) / count;
        }
        let ordered: Vec<usize> = members.into_iter().map(|(_, i)| i).collect();
        for chunk in ordered.chunks(ROW_LIMIT) {
            visual_rows.push(chunk.to_vec());
        }
    }
    let row_widths: Vec<f64> = visual_rows
        .iter()
        .map(|r| {
            r.iter().map(|i| sizes[*i].0).sum::<f64>() + GAP_X * (r.len().saturating_sub(1)) as f64
        })
        .collect();
    let content_width = row_widths.iter().copied().fold(0.0, f64::max);
    let width = content_width.max(text_width(&header)) + 2.0 * MARGIN;
    let mut places = vec![(0.0, 0.0, 0.0, 0.0); level.components.len()];
    let mut y = header_height + GAP_Y * 0.6;
    for (row, row_width) in visual_rows.iter().zip(&row_widths) {
        let mut x = (width - row_width) / 2.0;
        let height = row.iter().map(|i| sizes[*i].1).fold(0.0, f64::max);
        for i in row {
            places[*i] = (x, y, sizes[*i].0, sizes[*i].1);
            x += sizes[*i].0 + GAP_X;
        }
        y += height + GAP_Y;
    }
    let height = if visual_rows.is_empty() {
        header_height + MARGIN
    } else {
        y - GAP_Y + MARGIN
    };
    Layout {
        width,
        height,
        header,
        header_height,
        places,
        nested,
    }
}

fn nested_header(component: &Component, inner: &Level) -> Vec<String> {
    let mut header = vec![
        format!("{} [init]  {}", component.name, quota_text(component.quota)),
        format!("parent provides: {}", list_or_none(&inner.parent_provides)),
    ];
    if !component.provides.is_empty() {
        header.push(format!("provides: {}", component.provides.join(", ")));
    }
    header
}

/// What the SVG is made of, drawn in this order so labels stay readable.
#[derive(Default)]
struct Canvas {
    clusters: String,
    lines: String,
    boxes: String,
    labels: String,
}

fn label(canvas: &mut Canvas, x: f64, y: f64, text: &str) {
    let width = text.chars().count() as f64 * 6.3 + 6.0;
    let _ = writeln!(
        canvas.labels,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"14\" rx=\"3\" class=\"label-bg\"/><text x=\"{x:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"middle\">{}</text>",
        x - width / 2.0,
        y - 10.0,
        y,
        escape(text)
    );
}

fn draw(level: &Level, layout: &Layout, origin: (f64, f64), root: bool, canvas: &mut Canvas) {
    let (ox, oy) = origin;
    let class = if root { "root" } else { "cluster" };
    let _ = writeln!(
        canvas.clusters,
        "<rect x=\"{ox:.1}\" y=\"{oy:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"12\" class=\"{class}\"/>",
        layout.width, layout.height
    );
    let _ = writeln!(
        canvas.clusters,
        "<rect x=\"{ox:.1}\" y=\"{oy:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"12\" class=\"header\"/>",
        layout.width, layout.header_height
    );
    for (n, line) in layout.header.iter().enumerate() {
        let weight = if n == 0 { " font-weight=\"bold\"" } else { "" };
        let _ = writeln!(
            canvas.clusters,
            "<text x=\"{:.1}\" y=\"{:.1}\"{weight}>{}</text>",
            ox + MARGIN,
            oy + PAD + LINE_HEIGHT * (n as f64 + 0.75),
            escape(line)
        );
    }
    let absolute = |i: usize| {
        let (x, y, w, h) = layout.places[i];
        (ox + x, oy + y, w, h)
    };
    // Edges: spread the ends leaving one box so parallel arrows stay apart.
    for (k, edge) in level.edges.iter().enumerate() {
        if edge.from >= layout.places.len() {
            continue;
        }
        let siblings: Vec<usize> = level
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.from == edge.from)
            .map(|(j, _)| j)
            .collect();
        let slot = siblings.iter().position(|j| *j == k).unwrap_or(0) as f64;
        let spread = (slot - (siblings.len() as f64 - 1.0) / 2.0) * 14.0;
        let (sx, sy, sw, sh) = absolute(edge.from);
        let text = edge.services.join(", ");
        let (x1, y1, x2, y2) = match edge.to {
            EdgeTarget::Parent => {
                // A short stub up from the box, labelled: long lines to the
                // header would cross everything between. Off centre, because
                // arrows from siblings arrive at the centre.
                let x = sx + sw * 0.8;
                let _ = writeln!(
                    canvas.lines,
                    "<line x1=\"{x:.1}\" y1=\"{sy:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"edge parent\" marker-end=\"url(#arrow)\"/>",
                    sy - 16.0
                );
                label(canvas, x, sy - 20.0, &format!("↑ {text}"));
                continue;
            }
            EdgeTarget::Sibling(to) if to < layout.places.len() => {
                let (tx, ty, tw, th) = absolute(to);
                if ty > sy + sh {
                    (sx + sw / 2.0 + spread, sy + sh, tx + tw / 2.0, ty)
                } else if ty + th < sy {
                    (sx + sw / 2.0 + spread, sy, tx + tw / 2.0, ty + th)
                } else if tx > sx {
                    (sx + sw, sy + sh / 2.0 + spread / 2.0, tx, ty + th / 2.0)
                } else {
                    (sx, sy + sh / 2.0 + spread / 2.0, tx + tw, ty + th / 2.0)
                }
            }
            EdgeTarget::Sibling(_) => continue,
        };
        let _ = writeln!(
            canvas.lines,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" class=\"edge\" marker-end=\"url(#arrow)\"/>"
        );
        // Labels sit near the source, where arrows from one box are still apart.
        let t = 0.22;
        label(canvas, x1 + (x2 - x1) * t, y1 + (y2 - y1) * t + 4.0, &text);
    }
    for (i, component) in level.components.iter().enumerate() {
        let (x, y, w, h) = absolute(i);
        match (
            &component.nested,
            layout.nested.get(i).and_then(Option::as_ref),
        ) {
            (Some(inner), Some(inner_layout)) => draw(inner, inner_layout, (x, y), false, canvas),
            _ => {
                let _ = writeln!(
                    canvas.boxes,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"5\" class=\"component\"/>"
                );
                for (n, line) in leaf_lines(component).iter().enumerate() {
                    let style = if n == 0 {
                        " font-weight=\"bold\""
                    } else {
                        " class=\"detail\""
                    };
                    let _ = writeln!(
                        canvas.boxes,
                        "<text x=\"{:.1}\" y=\"{:.1}\"{style}>{}</text>",
                        x + PAD,
                        y + PAD + LINE_HEIGHT * (n as f64 + 0.75),
                        escape(line)
                    );
                }
            }
        }
    }
}

/// The scenario as a self-contained SVG document.
pub fn svg(title: &str, level: &Level) -> String {
    let header = vec![
        format!("{title}: {}  {}", level.title, quota_text(level.budget)),
        format!("core provides: {}", list_or_none(&level.parent_provides)),
    ];
    let layout = layout(level, header);
    let mut canvas = Canvas::default();
    draw(level, &layout, (0.0, 0.0), true, &mut canvas);
    let (width, height) = (layout.width + 2.0, layout.height + 2.0);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"-1 -1 {width:.0} {height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"12\">\n\
<title>{}</title>\n\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#445\"/></marker></defs>\n\
<style>.root{{fill:#f7f9fc;stroke:#8a94a6}} .cluster{{fill:#eef3ea;stroke:#6b8f5e;stroke-dasharray:5 3}} .header{{fill:#dde5f0;fill-opacity:0.6;stroke:none}} .component{{fill:#ffffff;stroke:#3b4a63;stroke-width:1.3}} .detail{{fill:#4a5568}} .edge{{stroke:#445;stroke-width:1.2}} .parent{{stroke:#8a5a00;stroke-dasharray:4 2}} .label{{font-size:10px;fill:#222}} .label-bg{{fill:#fffbe6;stroke:#d9c98c;stroke-width:0.6}}</style>\n\
{}{}{}{}</svg>\n",
        escape(title),
        canvas.clusters,
        canvas.lines,
        canvas.boxes,
        canvas.labels
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace;

    fn demo() -> Level {
        let text = std::fs::read_to_string(
            workspace::root().join("runtime-configs/examples/routing_demo.ron"),
        )
        .unwrap();
        scenario_level(&text).unwrap().unwrap()
    }

    #[test]
    fn edges_merge_per_target_and_skip_deny() {
        let level = demo();
        let shell = level
            .components
            .iter()
            .position(|c| c.name == "shell")
            .unwrap();
        let fs = level
            .components
            .iter()
            .position(|c| c.name == "fs")
            .unwrap();
        let to_fs: Vec<_> = level
            .edges
            .iter()
            .filter(|e| e.from == shell && e.to == EdgeTarget::Sibling(fs))
            .collect();
        assert_eq!(to_fs.len(), 1);
        assert_eq!(to_fs[0].services, ["FileSystem \"…home\""]);
        let to_parent = level
            .edges
            .iter()
            .find(|e| e.from == shell && e.to == EdgeTarget::Parent)
            .unwrap();
        assert_eq!(to_parent.services, ["Rom \"bin/…\"", "Log"]);
    }

    #[test]
    fn text_tree_shows_nesting_quotas_and_routes() {
        let tree = text_tree("routing_demo", &demo());
        assert!(
            tree.contains(
                "init (248M RAM, 16384 caps; parent provides: Rom, Log, Irq, IoPort, IoMem)"
            ),
            "{tree}"
        );
        assert!(
            tree.contains("├── net [init]  24M RAM, 512 caps\n"),
            "{tree}"
        );
        assert!(
            tree.contains("│   ├── nic_driver [virtio_net]  4M RAM, 128 caps  provides Nic"),
            "{tree}"
        );
        assert!(
            tree.contains("routes: Platform → platform; Timer → timer; * → parent"),
            "{tree}"
        );
    }

    #[test]
    fn svg_is_escaped_and_balanced() {
        let mut level = demo();
        level.components[0].name = "a<b>&\"c\"".to_string();
        let picture = svg("t", &level);
        assert!(picture.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
        assert!(!picture.contains("a<b>"));
        assert_eq!(
            picture.matches("<text").count(),
            picture.matches("</text>").count()
        );
        assert!(picture.starts_with("<svg ") && picture.ends_with("</svg>\n"));
        // Every component is drawn, nested ones inside their cluster.
        for name in ["platform", "fs", "nic_driver", "dhcp", "shell"] {
            assert!(picture.contains(&format!(">{name}</text>")), "{name}");
        }
    }

    #[test]
    fn boxes_in_one_level_do_not_overlap() {
        let level = demo();
        let header = vec!["x".to_string()];
        let laid = layout(&level, header);
        for (i, a) in laid.places.iter().enumerate() {
            for b in laid.places.iter().skip(i + 1) {
                let apart =
                    a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
            assert!(a.0 >= 0.0 && a.0 + a.2 <= laid.width);
        }
    }

    #[test]
    fn dot_has_clusters_and_labelled_edges() {
        let graph = dot("routing_demo", &demo());
        assert!(graph.contains("subgraph \"cluster_init/net\""), "{graph}");
        assert!(
            graph.contains("\"init/shell\" -> \"init/timer\" [label=\"Timer\"];"),
            "{graph}"
        );
        assert!(
            graph.contains("\"init/net/dhcp\" -> \"init/net\" [label=\"Timer, Log\"];"),
            "{graph}"
        );
    }
}
