//! The schema against real scenario text, good and bad.

extern crate std;

use super::*;

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
