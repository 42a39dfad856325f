//! Robustness and agreement: arbitrary bytes and mutated valid scenarios
//! must never make the parser, validator, outline or explainer panic; and
//! the explainer, the validator and init must route every request alike,
//! because all of them call `route_session`.

use arbor_config::outline::Outline;
use arbor_config::{
    Environment, Hop, InitConfig, RouteDecision, check_scenario, explain_route, parse_scenario,
    route_session,
};

/// A small deterministic PRNG (xorshift64*), so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

const DEMO: &str = include_str!("../../../runtime-configs/examples/routing_demo.ron");

/// Pieces of RON that make mutations land on interesting syntax.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "*",
    "init",
    "Parent",
    "Child(\"net\")",
    "AnyChild",
    "Deny",
    "\"12 MB\"",
    "name: \"timer\"",
    "binary: \"init\"",
    "config: (children: [])",
    "/*",
    "*/",
    "//",
    "r#\"",
    "\\",
    "é",
    "\u{0}",
    "99999999999999999999",
    "-1",
    "routes: [",
];

fn exercise(text: &str) {
    let report = check_scenario(text, &Environment::default());
    let _ = parse_scenario(text);
    let outline = Outline::new(text);
    for diagnostic in &report.diagnostics {
        let _ = diagnostic.to_string();
    }
    let _ = outline.locate(&[]);
    if let Some(init) = report.scenario.and_then(|s| s.init) {
        explain_all(&init);
    }
}

fn explain_all(init: &InitConfig) {
    for child in &init.children {
        for service in ["Timer", "Nic", ""] {
            let _ = explain_route(init, &child.name, service, "x");
        }
    }
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let length = rng.below(20).min(bytes.len() - at.min(bytes.len()));
                bytes.drain(at.min(bytes.len())..at.min(bytes.len()) + length);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = at.min(bytes.len());
                bytes.splice(at..at, token.bytes());
            }
            2 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] = rng.next() as u8;
            }
            3 if !bytes.is_empty() => {
                // Duplicate a stretch, e.g. a whole child entry.
                let start = at.min(bytes.len() - 1);
                let end = (start + rng.below(200)).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
            _ => {
                let at = at.min(bytes.len());
                bytes.truncate(at);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..2000 {
        let length = rng.below(120);
        let bytes: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
        exercise(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn mutated_scenarios_never_panic() {
    let mut rng = Rng(0x5eed_0002);
    let corpus: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/broken"))
            .unwrap()
            .map(|e| {
                String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap()).into_owned()
            })
            .chain([DEMO.to_string()])
            .collect();
    for round in 0..1500 {
        let seed = if round % 2 == 0 {
            DEMO
        } else {
            &corpus[rng.below(corpus.len())]
        };
        exercise(&mutate(&mut rng, seed));
    }
}

#[test]
fn demo_is_clean_and_every_mutation_keeps_errors_located() {
    let report = check_scenario(DEMO, &Environment::default());
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..500 {
        let text = mutate(&mut rng, DEMO);
        let lines = text.lines().count().max(1);
        for diagnostic in check_scenario(&text, &Environment::default()).diagnostics {
            let span = diagnostic
                .span
                .expect("findings in a scenario text have a place");
            assert!(span.start.line <= lines + 1, "{diagnostic} in\n{text}");
        }
    }
}

/// The explainer's first hop is exactly init's decision, for every child,
/// service and label the demo can produce; and each later hop is init's
/// decision at that level.
#[test]
fn explainer_agrees_with_init() {
    let scenario = parse_scenario(DEMO).unwrap();
    let root = scenario.init.unwrap();
    let services = [
        "Timer",
        "Log",
        "Rom",
        "Irq",
        "IoPort",
        "IoMem",
        "Platform",
        "Nic",
        "FileSystem",
        "Block",
    ];
    let labels = ["", "home", "shell/home", "bin/ls", "devices", "x"];
    let mut checked = 0;
    for child in &root.children {
        for service in services {
            for label in labels {
                let explanation = explain_route(&root, &child.name, service, label).unwrap();
                let Some(Hop::Routed { decision, .. }) = explanation.hops.first() else {
                    panic!("no first hop");
                };
                assert_eq!(decision, &route_session(&root, &child.name, service, label));
                checked += 1;
            }
        }
    }
    // Inside the nested init: each hop's decision is the decision of the init at that level.
    let net = root.children.iter().find(|c| c.name == "net").unwrap();
    let inner = net.config.as_ref().unwrap().as_init_config().unwrap();
    for child in &inner.children {
        for service in services {
            for label in labels {
                let explanation =
                    explain_route(&root, &format!("net/{}", child.name), service, label).unwrap();
                let mut hops = explanation.hops.iter();
                let Some(Hop::Routed { decision, .. }) = hops.next() else {
                    panic!()
                };
                assert_eq!(
                    decision,
                    &route_session(&inner, &child.name, service, label)
                );
                if let RouteDecision::Parent {
                    label: forwarded, ..
                } = decision
                {
                    let Some(Hop::Routed {
                        decision: outer,
                        child: asker,
                        ..
                    }) = hops.next()
                    else {
                        panic!()
                    };
                    assert_eq!(asker, "net");
                    assert_eq!(outer, &route_session(&root, "net", service, forwarded));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 300);
}

/// A route the validator calls broken is one init would deny.
#[test]
fn validator_errors_are_init_denials() {
    let text = r#"Scenario(description: "x", init: (parent_provides: ["Log"], children: [
        (name: "a", provides: ["A"], routes: [(service: "Log", to: Parent)]),
        (name: "b", routes: [(service: "A", to: Child("a")), (service: "Timer", to: Parent), (service: "B", to: Child("a")), (service: "C", to: AnyChild)]),
    ]))"#;
    let report = check_scenario(text, &Environment::default());
    let init = report.scenario.unwrap().init.unwrap();
    let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (service, allowed) in [
        ("A", true),
        ("Log", false),
        ("Timer", false),
        ("B", false),
        ("C", false),
    ] {
        let decision = route_session(&init, "b", service, "");
        assert_eq!(
            !matches!(decision, RouteDecision::Denied { .. }),
            allowed,
            "{service}: {decision:?}"
        );
    }
}
