//! Drawing a laid-out tree as a self-contained SVG document.

use super::layout::*;
use super::level::*;
use super::text::{list_or_none, quota_text};
use std::fmt::Write as _;

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

/// What the SVG is made of, drawn in this order so labels stay readable.
#[derive(Default)]
pub(super) struct Canvas {
    pub(super) clusters: String,
    pub(super) lines: String,
    pub(super) boxes: String,
    pub(super) labels: String,
}

pub(super) fn label(canvas: &mut Canvas, x: f64, y: f64, text: &str) {
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

pub(super) fn draw(
    level: &Level,
    layout: &Layout,
    origin: (f64, f64),
    root: bool,
    canvas: &mut Canvas,
) {
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
