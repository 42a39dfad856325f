//! The schema against real scenario text, good and bad.

extern crate std;

use super::*;
use crate::label::LabelError;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

#[test]
fn full_scenario_parses() {
    let scenario = parse_scenario(
        r#"
        Scenario(
            description: "boots",
            machine: (memory: "256M"),
            kernel: (args: "selftest=invalid_opcode"),
            test: (expect: ["Arbor", "modules"], exit: Failure, timeout: "5s"),
        )"#,
    )
    .unwrap();
    assert_eq!(scenario.machine.memory, ByteSize(256 << 20));
    assert_eq!(scenario.kernel.args, "selftest=invalid_opcode");
    let test = scenario.test.unwrap();
    assert_eq!(test.expect, ["Arbor", "modules"]);
    assert_eq!(test.exit, ExitOutcome::Failure);
    assert_eq!(test.timeout, Duration { millis: 5000 });
}

#[test]
fn defaults_fill_what_is_left_out() {
    let scenario = parse_scenario(r#"Scenario(description: "minimal")"#).unwrap();
    assert_eq!(scenario.machine.memory, Machine::DEFAULT_MEMORY);
    assert!(scenario.kernel.args.is_empty());
    assert!(scenario.test.is_none());
}

#[test]
fn misspelled_field_is_an_error_at_its_position() {
    let error = parse_scenario("Scenario(\n  description: \"x\",\n  machin: (),\n)").unwrap_err();
    assert_eq!(error.location, Some(Location { line: 3, column: 3 }));
    assert!(error.message.contains("machin"), "{error}");
}

#[test]
fn bad_size_names_the_accepted_forms() {
    let error =
        parse_scenario(r#"Scenario(description: "x", machine: (memory: "12 MB"))"#).unwrap_err();
    assert!(error.message.contains("\"12 MB\" is not a size"), "{error}");
    assert!(error.location.is_some());
}

#[test]
fn memory_out_of_range_is_refused() {
    let error =
        parse_scenario(r#"Scenario(description: "x", machine: (memory: "1M"))"#).unwrap_err();
    assert!(error.message.contains("machine.memory is 1M"), "{error}");
}

#[test]
fn empty_expectation_is_refused() {
    let error = parse_scenario(r#"Scenario(description: "x", test: (expect: []))"#).unwrap_err();
    assert!(error.message.contains("test.expect is empty"), "{error}");
}

#[test]
fn sizes_parse_and_print() {
    assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
    assert_eq!(ByteSize::parse("512K"), Ok(ByteSize(512 << 10)));
    assert_eq!(ByteSize::parse("2G"), Ok(ByteSize(2 << 30)));
    assert!(ByteSize::parse("").is_err());
    assert!(ByteSize::parse("M").is_err());
    assert!(ByteSize::parse("-1M").is_err());
    assert!(ByteSize::parse("99999999999999999999G").is_err());
    assert!(ByteSize::parse("17179869184G").is_err());
    assert_eq!(std::format!("{}", ByteSize(128 << 20)), "128M");
    assert_eq!(std::format!("{}", ByteSize(1000)), "1000");
}

#[test]
fn durations_parse() {
    assert_eq!(Duration::parse("100ms"), Ok(Duration { millis: 100 }));
    assert_eq!(Duration::parse("20s"), Ok(Duration { millis: 20_000 }));
    assert_eq!(Duration::parse("2m"), Ok(Duration { millis: 120_000 }));
    assert!(Duration::parse("20").is_err());
    assert!(Duration::parse("1h").is_err());
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "(",
        "Scenario(",
        "Scenario(description: 5)",
        "\u{0}\u{ffff}",
        "Scenario(test: (expect: [1]))",
    ] {
        assert!(parse_scenario(text).is_err(), "{text:?}");
    }
}

fn routing_init() -> InitConfig {
    let scenario = parse_scenario(
        r#"Scenario(description: "r", init: (parent_provides: ["Log", "Rom"], children: [
            (name: "fs", provides: ["FileSystem"], routes: [(service: "Log", to: Parent)]),
            (name: "fs2", provides: ["FileSystem"], routes: [(service: "Log", to: Parent)]),
            (name: "app", routes: [
                (service: "FileSystem", label: Exact("data"), to: Child("fs2")),
                (service: "FileSystem", label: Prefix("home/"), to: Child("fs")),
                (service: "Rom", label: Suffix(".so"), to: Parent),
                (service: "Rom", to: Deny),
                (service: "*", to: Parent),
            ]),
        ]))"#,
    )
    .unwrap();
    scenario.init.unwrap()
}

#[test]
fn first_matching_route_wins_and_labels_compose() {
    let init = routing_init();
    assert_eq!(
        route_session(&init, "app", "FileSystem", "data"),
        RouteDecision::Child {
            route: 0,
            provider: "fs2".into(),
            label: "app -> data".into()
        }
    );
    assert_eq!(
        route_session(&init, "app", "FileSystem", "home/ada"),
        RouteDecision::Child {
            route: 1,
            provider: "fs".into(),
            label: "app -> home/ada".into()
        }
    );
    assert_eq!(
        route_session(&init, "app", "Rom", "libc.so"),
        RouteDecision::Parent {
            route: 2,
            label: "app -> libc.so".into()
        }
    );
    assert_eq!(
        route_session(&init, "app", "Rom", "secrets"),
        RouteDecision::Denied {
            route: Some(3),
            reason: Denial::DenyRoute
        }
    );
    assert_eq!(
        route_session(&init, "app", "Log", ""),
        RouteDecision::Parent {
            route: 4,
            label: "app".into()
        }
    );
    // "*" to Parent still needs the parent to provide the service.
    assert_eq!(
        route_session(&init, "app", "Timer", ""),
        RouteDecision::Denied {
            route: Some(4),
            reason: Denial::ParentDoesNotProvide
        }
    );
    // Unlabelled FileSystem falls through to "*" and the parent lacks it.
    assert!(matches!(
        route_session(&init, "app", "FileSystem", "tmp"),
        RouteDecision::Denied { route: Some(4), .. }
    ));
    assert_eq!(
        route_session(&init, "fs", "Timer", ""),
        RouteDecision::Denied {
            route: None,
            reason: Denial::NoMatchingRoute
        }
    );
    assert_eq!(
        route_session(&init, "ghost", "Log", ""),
        RouteDecision::Denied {
            route: None,
            reason: Denial::UnknownRequester
        }
    );
}

#[test]
fn forged_labels_are_refused_before_any_route_matches() {
    let init = routing_init();
    let bad = |error| RouteDecision::Denied {
        route: None,
        reason: Denial::BadLabel(error),
    };
    // The attack: one element posing as two, to match Suffix(".so") or a
    // prefix route while naming another module in its last element.
    assert_eq!(
        route_session(&init, "app", "Rom", "x.so -> config"),
        bad(LabelError::ContainsSeparator)
    );
    assert_eq!(
        route_session(&init, "app", "FileSystem", "home/ -> etc"),
        bad(LabelError::ContainsSeparator)
    );
    assert_eq!(
        route_session(&init, "app", "Log", "line\nbreak"),
        bad(LabelError::ControlCharacter)
    );
    let long = "x".repeat(4_000);
    assert_eq!(
        route_session(&init, "app", "Log", &long),
        bad(LabelError::TooLong)
    );
}

#[test]
fn a_nested_init_forwards_composed_labels_a_leaf_cannot() {
    let scenario = parse_scenario(
        r#"Scenario(description: "n", init: (parent_provides: ["Rom"], children: [
            (name: "sub", binary: "init", config: (children: []), routes: [(service: "Rom", label: Prefix("probe"), to: Parent)]),
            (name: "leaf", routes: [(service: "Rom", to: Parent)]),
        ]))"#,
    )
    .unwrap();
    let init = scenario.init.unwrap();
    assert_eq!(
        route_session(&init, "sub", "Rom", "probe -> config"),
        RouteDecision::Parent {
            route: 0,
            label: "sub -> probe -> config".into()
        }
    );
    assert!(matches!(
        route_session(&init, "leaf", "Rom", "probe -> config"),
        RouteDecision::Denied {
            reason: Denial::BadLabel(LabelError::ContainsSeparator),
            ..
        }
    ));
    assert!(matches!(
        route_session(&init, "sub", "Rom", "probe -> a->b"),
        RouteDecision::Denied {
            reason: Denial::BadLabel(LabelError::ContainsSeparator),
            ..
        }
    ));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let report = check_scenario(
        r#"Scenario(description: "x", init: (children: [
            (name: "a", routes: [(service: "Log", to: Parent)]),
            (name: "a", routes: [(service: "T", to: Child("zz"))]),
            (name: "c", quota: (ram: "1G", caps: 1)),
        ]))"#,
        &Environment::default(),
    );
    let messages: std::vec::Vec<_> = report
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        report.diagnostics.iter().filter(|d| d.is_error()).count(),
        4,
        "{messages:?}"
    );
    assert!(messages.contains(&"duplicate child name \"a\""));
    assert!(messages.contains(&"route to child \"zz\", which does not exist"));
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("route to Parent for \"Log\""))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("the children's RAM quotas add up to"))
    );
    // Ordered by place in the text.
    let lines: std::vec::Vec<_> = report
        .diagnostics
        .iter()
        .map(|d| d.span.unwrap().start.line)
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn nested_init_reads_its_config_rom_with_the_same_checks() {
    let has = Quota {
        ram: ByteSize(8 << 20),
        caps: CapCount(100),
    };
    let config = parse_init_config(
        r#"(parent_provides: ["Log"], children: [(name: "a", routes: [(service: "Log", to: Parent)])])"#,
        has,
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(config.children[0].name, "a");
    let error = parse_init_config(
        "(children: [\n  (name: \"a\"),\n  (name: \"a\"),\n])",
        has,
        &Environment::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.location,
        Some(Location {
            line: 3,
            column: 10
        })
    );
    assert_eq!(error.message, "duplicate child name \"a\"");
}

#[test]
fn child_config_is_kept_as_text_for_its_rom() {
    let scenario = parse_scenario(
        r#"Scenario(description: "x", init: (children: [(name: "hello", config: Greeting(text: "hi", n: 3))]))"#,
    )
    .unwrap();
    let child = &scenario.init.unwrap().children[0];
    assert_eq!(
        child.config.as_ref().unwrap().as_text(),
        r#"Greeting(text: "hi", n: 3)"#
    );
    assert_eq!(child.binary_name(), "hello");
    assert_eq!(child.restart, Restart::Never);
}

#[test]
fn hardware_declarations_parse_with_hex_and_sizes() {
    let scenario = parse_scenario(
        r#"
        Scenario(
            description: "a driver",
            init: (
                parent_provides: ["Log", "Irq", "IoPort", "IoMem"],
                children: [(
                    name: "timer",
                    hardware: (io_ports: [(first: 0x40, count: 4)], irqs: [2], io_mem: [(base: 0xFED0_0000, size: "4K")]),
                    routes: [(service: "*", to: Parent)],
                )],
            ),
        )"#,
    )
    .unwrap();
    let child = &scenario.init.unwrap().children[0];
    assert_eq!(
        child.hardware.io_ports,
        [PortRange {
            first: 0x40,
            count: 4
        }]
    );
    assert_eq!(child.hardware.irqs, [2]);
    assert_eq!(
        child.hardware.io_mem,
        [MemoryRange {
            base: 0xFED0_0000,
            size: ByteSize(4096)
        }]
    );
    assert!(child.hardware.permits(&Claim::Irq { line: 2 }));
}

#[test]
fn a_child_without_hardware_declares_nothing() {
    let scenario = parse_scenario(
        r#"Scenario(description: "x", init: (parent_provides: ["Log"], children: [(name: "a", routes: [(service: "*", to: Parent)])]))"#,
    )
    .unwrap();
    assert!(scenario.init.unwrap().children[0].hardware.is_empty());
}

#[test]
fn a_nested_childs_claim_must_lie_inside_its_inits_declaration() {
    let text = r#"Scenario(description: "x", init: (parent_provides: ["Log", "IoPort"], children: [
        (name: "sub", binary: "init", hardware: (io_ports: [(first: 0x70, count: 2)]), routes: [(service: "*", to: Parent)], config: (
            parent_provides: ["Log", "IoPort"],
            children: [(name: "rtc", hardware: (io_ports: [(first: 0x70, count: 2)]), routes: [(service: "*", to: Parent)])],
        )),
    ]))"#;
    let report = check_scenario(text, &Environment::default());
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let wider = text.replace(
        "(first: 0x70, count: 2)]), routes: [(service: \"*\", to: Parent)])]",
        "(first: 0x70, count: 3)]), routes: [(service: \"*\", to: Parent)])]",
    );
    let error = parse_scenario(&wider).unwrap_err();
    assert!(
        error
            .message
            .contains("outside what its init may claim (IoPort 0x70..0x72)"),
        "{error}"
    );
}

#[test]
fn a_nested_init_keeps_its_own_share_and_its_childrens_roms() {
    let text = r#"Scenario(description: "x", init: (parent_provides: ["Log", "Rom"], children: [
        (name: "sub", binary: "init", quota: (ram: "3M", caps: 256),
         routes: [(service: "*", to: Parent)],
         config: (parent_provides: ["Log", "Rom"], children: [
            (name: "a", binary: "app", quota: (ram: "1M", caps: 8)),
            (name: "b", binary: "app", quota: (ram: "1M", caps: 8)),
         ])),
    ]))"#;
    let environment = |own: u64, image: u64| {
        let mut components = alloc::collections::BTreeMap::new();
        components.insert(
            std::string::String::from("init"),
            ComponentNeeds {
                min_ram: Some(ByteSize(own)),
                ..ComponentNeeds::default()
            },
        );
        components.insert(
            std::string::String::from("app"),
            ComponentNeeds {
                image_size: Some(ByteSize(image)),
                ..ComponentNeeds::default()
            },
        );
        Environment::with_components(components)
    };
    // 3M less 1M for init, the ROM of `app` (100K: 16 + 25 + 2 pages) and
    // 2 × 4 pages of objects leaves 1844K: too little for 2M.
    assert_eq!(
        starting_cost(&[ByteSize(100 << 10)], 2),
        ByteSize((16 + 25 + 2 + 8) * 4096)
    );
    let report = check_scenario(text, &environment(1 << 20, 100 << 10));
    let errors: std::vec::Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .contains("add up to 2M with \"b\", more than the 1844K"),
        "{}",
        errors[0].message
    );
    let roomy = text.replace("3M", "3300K");
    assert!(
        check_scenario(&roomy, &environment(600 << 10, 100 << 10))
            .diagnostics
            .iter()
            .all(|d| !d.is_error())
    );
}

#[test]
fn every_typo_is_reported_and_checks_go_on() {
    let text = "Scenario(\n  descripton: \"x\",\n  machine: (memroy: \"64M\"),\n  init: (children: [(name: \"a\"), (name: \"a\", qutoa: (ram: \"1M\", caps: 1))]),\n)";
    let report = check_scenario(text, &Environment::default());
    let found: std::vec::Vec<std::string::String> = report
        .diagnostics
        .iter()
        .map(|d| std::format!("{d}"))
        .collect();
    assert_eq!(
        found,
        [
            "2:3: unknown field `descripton` in `Scenario`",
            "3:13: unknown field `memroy` in `Machine`",
            "4:41: duplicate child name \"a\"",
            "4:46: unknown field `qutoa` in `Child`",
        ]
    );
}

#[test]
fn built_disk_images_are_checked_with_their_position() {
    let text = r#"Scenario(
    description: "images",
    machine: (devices: [
        VirtioBlk(image: "target/a.img", size: "64M", format: Fat32,
                  files: [(from: "x.txt", to: "/dir/A long name.txt")]),
        VirtioBlk(image: "target/b.img", disk: "b.img"),
        VirtioBlk(image: "target/c.img"),
        VirtioBlk(image: "target/d.img", size: "1M", format: Fat32),
        VirtioBlk(image: "target/e.img", size: "1M", files: [(from: "x", to: "rel/../x")]),
    ]),
)"#;
    let report = check_scenario(text, &Environment::default());
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| {
            let at = d.span.map_or((0, 0), |s| (s.start.line, s.start.column));
            format!("{}:{}: {}", at.0, at.1, d.message)
        })
        .collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(
        messages[0].starts_with("6:9: VirtioBlk needs exactly one of `disk`"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("7:9: a built VirtioBlk image needs a `size`"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("8:") && messages[2].contains("FAT32 image needs at least 34M"),
        "{messages:?}"
    );
    assert!(
        messages[3].contains("9:") && messages[3].contains("only be copied onto a formatted"),
        "{messages:?}"
    );
    assert!(
        messages[4].contains("9:") && messages[4].contains("\"rel/../x\" is not an absolute"),
        "{messages:?}"
    );
}

#[test]
fn machine_devices_take_pinned_slots_and_are_checked() {
    let text = r#"Scenario(
    description: "devices",
    machine: (devices: [
        VirtioBlk(disk: "missing.img"),
        VirtioNet(),
        VirtioKeyboard(slot: 2),
        VirtioTablet(slot: 2),
        VirtioGpu(slot: 0),
    ]),
)"#;
    let devices = [
        Device::VirtioBlk {
            disk: Some("d.img".into()),
            image: None,
            size: None,
            format: None,
            files: Vec::new(),
            slot: None,
        },
        Device::VirtioNet {
            forward: Vec::new(),
            slot: None,
        },
        Device::VirtioKeyboard { slot: Some(2) },
        Device::VirtioTablet { slot: Some(2) },
        Device::VirtioGpu { slot: Some(0) },
    ];
    assert_eq!(
        crate::assign_slots(&devices),
        [Some(1), Some(3), Some(2), Some(2), Some(0)]
    );
    let environment = Environment {
        existing_disks: Some(Default::default()),
        ..Environment::default()
    };
    let report = check_scenario(text, &environment);
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.span.map_or(0, |s| s.start.line), d.message))
        .collect();
    assert_eq!(
        messages,
        [
            "4: VirtioBlk's disk \"missing.img\" does not exist",
            "7: VirtioTablet asks for slot 2, which VirtioKeyboard on line 6 already has",
            "8: VirtioGpu asks for slot 0; slots run from 1 to 31",
        ],
        "{messages:?}"
    );
    let unknown = check_scenario(
        "Scenario(description: \"x\", machine: (devices: [VirtioSound()]))",
        &Environment::default(),
    );
    assert!(unknown.has_errors());
    assert!(
        unknown.diagnostics[0].message.contains("VirtioSound"),
        "{:?}",
        unknown.diagnostics[0].message
    );
}

#[test]
fn port_forwards_are_checked_where_they_are_written() {
    let text = r#"Scenario(
    description: "forwards",
    machine: (devices: [
        VirtioNet(forward: [(host: 8080, guest: 80), (host: 0, guest: 0)]),
        VirtioNet(forward: [(host: 8080, guest: 81), (host: 0, guest: 80), (host: 22, guest: 22)]),
    ]),
    test: (expect: ["a"], display: [(after: "a", actions: [
        Run(command: "curl 127.0.0.1:{port:81} 127.0.0.1:{port:443}", expect: ["x"]),
        Run(command: "echo {port:http}"),
    ])]),
)"#;
    let report = check_scenario(text, &Environment::default());
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| {
            let at = d.span.map_or((0, 0), |s| (s.start.line, s.start.column));
            format!("{}:{}: {}", at.0, at.1, d.message)
        })
        .collect();
    assert_eq!(
        messages,
        [
            "4:71: guest port 0 is no port: name the port the guest listens on",
            "5:36: host port 8080 is already forwarded on line 4",
            "5:71: guest port 80 is already forwarded on line 4",
            "5:83: host port 22 is privileged: QEMU cannot listen there without root",
            "8:22: `{port:443}`: no VirtioNet forwards guest port 443",
            "9:22: `{port:http}` names no port",
        ],
        "{messages:?}"
    );
    let forward = |host, guest| crate::Forward { host, guest };
    let devices = [
        Device::VirtioNet {
            forward: alloc::vec![forward(8080, 80)],
            slot: None,
        },
        Device::VirtioGpu { slot: None },
        Device::VirtioNet {
            forward: alloc::vec![forward(0, 81), forward(22, 22)],
            slot: None,
        },
    ];
    assert_eq!(
        crate::forwards(&devices),
        [forward(8080, 80), forward(0, 81), forward(22, 22)]
    );
    assert_eq!(
        crate::named_guest_ports("a {port:1} {port:65535}"),
        Ok(alloc::vec![1, 65535])
    );
    assert!(crate::named_guest_ports("{port:65536}").is_err());
    assert!(crate::named_guest_ports("{port:8").is_err());
    let too_big = check_scenario(
        "Scenario(description: \"x\", machine: (devices: [VirtioNet(forward: [(host: 70000, guest: 80)])]))",
        &Environment::default(),
    );
    assert!(too_big.has_errors());
}

#[test]
fn one_platform_driver_at_the_root_only() {
    let text = r#"Scenario(
    description: "platform",
    init: (parent_provides: ["IoPort", "Irq", "IoMem"], children: [
        (name: "platform", hardware: (platform: true), routes: [(service: "*", to: Parent)]),
        (name: "second", hardware: (platform: true), routes: [(service: "*", to: Parent)]),
        (name: "driver", hardware: (io_mem: [(base: 0xFE00_0000, size: "16K")], irqs: [20]), routes: [(service: "*", to: Parent)]),
    ]),
)"#;
    let report = check_scenario(text, &Environment::default());
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.span.map_or(0, |s| s.start.line), d.message))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("5:") && m.contains("\"second\" is a second platform driver")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("6:") && m.contains("Irq 20") && m.contains("core refuses")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("IoMem 0xfe000000..0xfe004000") && m.contains("core refuses")),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("\"platform\"")),
        "{messages:?}"
    );
}
