//! SVG layout: sizes of boxes and where each child sits in its init's rows.

use super::level::*;
use super::text::{list_or_none, quota_text};

/// Boxes per row before the row wraps.
pub const ROW_LIMIT: usize = 5;
pub(super) const CHAR_WIDTH: f64 = 7.2;
pub(super) const LINE_HEIGHT: f64 = 15.0;
pub(super) const PAD: f64 = 8.0;
pub(super) const GAP_X: f64 = 36.0;
pub(super) const GAP_Y: f64 = 64.0;
pub(super) const MARGIN: f64 = 14.0;

pub(super) fn text_width(lines: &[String]) -> f64 {
    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_WIDTH
}

/// A laid-out level: its size, the lines of its header, and where each child sits.
pub(super) struct Layout {
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) header: Vec<String>,
    pub(super) header_height: f64,
    /// (x, y) of each component relative to the level's corner, with its size.
    pub(super) places: Vec<(f64, f64, f64, f64)>,
    pub(super) nested: Vec<Option<Layout>>,
}

pub(super) fn leaf_lines(component: &Component) -> Vec<String> {
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
pub(super) fn rows(level: &Level) -> Vec<usize> {
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

pub(super) fn layout(level: &Level, header: Vec<String>) -> Layout {
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

pub(super) fn nested_header(component: &Component, inner: &Level) -> Vec<String> {
    let mut header = vec![
        format!("{} [init]  {}", component.name, quota_text(component.quota)),
        format!("parent provides: {}", list_or_none(&inner.parent_provides)),
    ];
    if !component.provides.is_empty() {
        header.push(format!("provides: {}", component.provides.join(", ")));
    }
    header
}
