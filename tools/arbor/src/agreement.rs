//! Proof that `cargo arbor check` and the running system agree: scenarios
//! are generated around the edges check draws (quotas exactly at a child's
//! loading cost, a byte or a page below it, and quotas that init's page
//! rounding brings down to it; nested inits with their budget exactly used
//! up or a page short), checked, and booted under TCG. Every child of a
//! scenario check accepts must start; every child check refuses for its
//! quota must be refused by init's loader.
//!
//! The generator is deterministic (a fixed seed), so a failure names a
//! scenario that can be written out and booted again.

use crate::needs::{self, load_cost};
use crate::qemu::{self, AccelChoice, Continue};
use crate::scenarios::LoadedScenario;
use crate::workspace;
use arbor_config::{ByteSize, Environment, INIT_BINARY, check_scenario, starting_cost, usable_ram};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A small, fixed pseudo-random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A quota around `floor`: at it, a byte or a page under it, or a little
/// over it (some of which init's page rounding brings back to it).
fn around(floor: u64, rng: &mut Rng) -> u64 {
    match rng.below(12) {
        0 => floor - 1,
        1 => floor - 4096,
        2..=4 => floor + 4095,
        5..=7 => floor + 4096 * (1 + rng.below(8)),
        _ => floor,
    }
}

/// One hello child named `name` with `ram`, routed to the Timer at `timer`.
fn hello(name: &str, ram: u64, timer: &str) -> String {
    format!(
        "(name: \"{name}\", binary: \"hello\", quota: (ram: \"{ram}\", caps: 16), \
         config: (greeting: \"{name}\", count: 1, period_ms: 1), \
         routes: [(service: \"Timer\", to: {timer}), (service: \"*\", to: Parent)])"
    )
}

/// A generated scenario and the children it starts, by name.
struct Generated {
    text: String,
    children: Vec<String>,
}

/// Generates scenario `seed` given the floors of `hello` and `init`.
fn generate(seed: u64, hello_floor: u64, hello_image: u64, init_floor: u64) -> Generated {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x1234_5678_9ABC_DEF1));
    let mut children = vec!["timer".to_string()];
    let mut entries = vec![
        "(name: \"timer\", binary: \"pit_timer\", quota: (ram: \"512K\", caps: 32), \
         provides: [\"Timer\"], hardware: (io_ports: [(first: 0x40, count: 4)], irqs: [2]), \
         routes: [(service: \"IoPort\", to: Parent), (service: \"Irq\", to: Parent), \
         (service: \"*\", to: Parent)])"
            .to_string(),
    ];
    for i in 0..1 + rng.below(3) {
        let name = format!("g{seed}_{i}");
        entries.push(hello(
            &name,
            around(hello_floor, &mut rng),
            "Child(\"timer\")",
        ));
        children.push(name);
    }
    if rng.below(2) == 0 {
        let nested = format!("n{seed}");
        let mut inner = Vec::new();
        let mut sum = 0;
        for i in 0..1 + rng.below(2) {
            let name = format!("{nested}_{i}");
            // Page multiples, so the budget below is exact.
            let ram = usable_ram(ByteSize(around(hello_floor, &mut rng))).0;
            sum += ram;
            inner.push(hello(&name, ram, "Parent"));
            children.push(name);
        }
        let slack = match rng.below(3) {
            0 => 0,
            1 => 64 << 10,
            _ => u64::MAX,
        };
        // A page short of what it needs, or exactly enough, or more.
        let overhead = starting_cost(&[ByteSize(hello_image)], inner.len()).0;
        let ram = if slack == u64::MAX {
            init_floor + overhead + sum - 4096
        } else {
            init_floor + overhead + sum + slack
        };
        entries.push(format!(
            "(name: \"{nested}\", binary: \"init\", quota: (ram: \"{ram}\", caps: 256), \
             routes: [(service: \"Timer\", to: Child(\"timer\")), (service: \"*\", to: Parent)], \
             config: (parent_provides: [\"Rom\", \"Log\", \"Timer\"], children: [{}]))",
            inner.join(", ")
        ));
        children.push(nested);
    }
    let text = format!(
        "Scenario(description: \"generated {seed}\", machine: (memory: \"64M\"), init: (\
         parent_provides: [\"Rom\", \"Log\", \"Irq\", \"IoPort\"], children: [\n{}\n]))\n",
        entries.join(",\n")
    );
    Generated { text, children }
}

/// What became of each child in one boot: started, or refused with a reason.
fn boot(text: &str, children: &[String]) -> BTreeMap<String, Result<(), String>> {
    let scenario = LoadedScenario {
        name: "generated".to_string(),
        text: text.to_string(),
        scenario: arbor_config::parse_scenario(text).expect("generated scenarios decode"),
    };
    let launch = qemu::prepare(&scenario, AccelChoice::Tcg).expect("prepare");
    let mut outcome = BTreeMap::new();
    let mut log = String::new();
    let _ = qemu::boot(&launch, Some(Duration::from_secs(20)), |line| {
        let _ = writeln!(log, "{line}");
        if std::env::var_os("AGREEMENT_LOG").is_some() {
            eprintln!("{line}");
        }
        for name in children {
            if line.contains(&format!("] started {name} (")) {
                outcome.insert(name.clone(), Ok(()));
            } else if let Some(at) = line.find(&format!("] cannot start {name}:")) {
                outcome.insert(name.clone(), Err(line[at..].to_string()));
            }
        }
        if outcome.len() == children.len() {
            Continue::Stop
        } else {
            Continue::Go
        }
    });
    assert_eq!(
        outcome.len(),
        children.len(),
        "not every child was started or refused:\n{log}"
    );
    outcome
}

/// How many generated scenarios are booted (each takes about half a second
/// under TCG).
const SAMPLES: u64 = 6;

#[test]
fn what_check_accepts_starts_and_what_it_refuses_does_not() {
    let started = Instant::now();
    let root = workspace::root();
    // Build what boots (so the costs below are those of the ELFs booted).
    let probe = generate(0, 1 << 20, 1 << 20, 1 << 20);
    let loaded = LoadedScenario {
        name: "probe".to_string(),
        text: probe.text.clone(),
        scenario: arbor_config::parse_scenario(&probe.text).unwrap(),
    };
    qemu::prepare(&loaded, AccelChoice::Tcg).expect("build");
    let environment: Environment = needs::environment(&root, &[], false).unwrap();
    let floor = |name: &str| {
        environment.components.as_ref().unwrap()[name]
            .ram_floor()
            .unwrap()
            .0
            .0
    };
    let (hello_floor, init_floor) = (floor("hello"), floor(INIT_BINARY));
    let hello_image = environment.components.as_ref().unwrap()["hello"]
        .image_size
        .unwrap()
        .0;
    let elf = std::fs::read(root.join("target/x86_64-unknown-none/release/hello")).unwrap();
    assert_eq!(
        load_cost(&elf).unwrap().0,
        hello_floor,
        "hello's floor is its ELF's cost"
    );

    let (mut accepted, mut refused) = (0, 0);
    let booting = Instant::now();
    for seed in 1..=SAMPLES {
        let generated = generate(seed, hello_floor, hello_image, init_floor);
        let report = check_scenario(&generated.text, &environment);
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        let outcome = boot(&generated.text, &generated.children);
        eprintln!(
            "scenario {seed}: {} children, {} errors from check, {} refused at boot",
            generated.children.len(),
            errors.len(),
            outcome.values().filter(|o| o.is_err()).count()
        );
        if errors.is_empty() {
            accepted += 1;
            for (name, result) in &outcome {
                assert!(
                    result.is_ok(),
                    "check accepted scenario {seed} but {name} did not start: {result:?}\n{}",
                    generated.text
                );
            }
        } else {
            refused += 1;
            // Each child check names as short of RAM, the loader refuses.
            for name in &generated.children {
                let named = errors
                    .iter()
                    .any(|e| e.contains(&format!("child \"{name}\" gets")));
                if named {
                    let result = &outcome[name];
                    assert!(
                        result.as_ref().is_err_and(|e| e.contains("loading needs")),
                        "check refused {name}'s quota in scenario {seed} but init: {result:?}\n{errors:?}"
                    );
                }
            }
            // A nested init's budget is judged with an upper bound of what
            // starting its children costs it (see `starting_cost`), so a
            // budget a page short may still boot; a child's own quota is
            // judged exactly, so a refused one never starts.
            let per_child = errors.iter().any(|e| e.contains(" gets "));
            assert!(
                !per_child || outcome.values().any(Result::is_err),
                "check refused scenario {seed} ({errors:?}) yet every child started\n{}",
                generated.text
            );
        }
    }
    eprintln!(
        "check/boot agreement: {accepted} accepted and {refused} refused scenarios agreed; \
         {:.1?} booting, {:.1?} in all",
        booting.elapsed(),
        started.elapsed()
    );
    assert!(
        accepted > 0 && refused > 0,
        "the sample must hold both verdicts"
    );
}
