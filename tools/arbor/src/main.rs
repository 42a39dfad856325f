//! `cargo arbor`: the one host tool. It builds what a scenario needs, packs
//! the boot archive, boots QEMU and reads what the guest prints.
//!
//! Each verb lives in its own module; this file only parses the command line.

mod archive;
mod bench;
mod qemu;
mod scenarios;
mod setup;
mod test;
mod workspace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo arbor",
    about = "Build, run and test Arbor scenarios",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a scenario in QEMU and stream its serial log.
    Run {
        /// A name from runtime-configs/ or a path to a .ron file.
        #[arg(default_value = scenarios::DEFAULT)]
        scenario: String,
        /// Accelerator: auto (KVM when /dev/kvm is usable), kvm or tcg.
        #[arg(long, default_value = "auto")]
        accel: qemu::AccelChoice,
    },
    /// Run the host unit tests, then every scenario's `test` section in QEMU.
    Test {
        /// Only scenarios whose name contains this.
        filter: Option<String>,
        /// Skip the host unit tests.
        #[arg(long)]
        scenarios_only: bool,
        /// Accelerator for the scenarios: tcg (default: every test must pass without KVM), kvm or auto.
        #[arg(long, default_value = "tcg")]
        accel: qemu::AccelChoice,
    },
    /// Boot the benchmark scenarios and measure the host baselines in one run.
    Bench {
        /// Only benchmarks (scenarios and host figures) whose name contains this.
        filter: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Accelerator: auto (KVM when /dev/kvm is usable), kvm or tcg.
        #[arg(long, default_value = "auto")]
        accel: qemu::AccelChoice,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { scenario, accel } => qemu::run_command(&scenario, accel),
        Command::Test {
            filter,
            scenarios_only,
            accel,
        } => test::test_command(filter.as_deref(), scenarios_only, accel),
        Command::Bench {
            filter,
            json,
            accel,
        } => bench::bench_command(filter.as_deref(), json, accel),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
