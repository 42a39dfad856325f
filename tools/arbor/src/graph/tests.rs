//! The graph's model and its three drawings.

use super::layout::layout;
use super::level::{EdgeTarget, Level};
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
        tree.contains("init (248M RAM, 16384 caps; parent provides: Rom, Log, Irq, IoPort, IoMem)"),
        "{tree}"
    );
    assert!(
        tree.contains("├── net [init]  24M RAM, 512 caps  provides Socket\n"),
        "{tree}"
    );
    assert!(
        tree.contains("│   └── stack [net]  4M RAM, 128 caps  provides Uplink, Socket"),
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
    for name in ["platform", "fs", "nic_driver", "stack", "shell"] {
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
        graph.contains("\"init/net/stack\" -> \"init/net\" [label=\"Timer, Log\"];"),
        "{graph}"
    );
}
