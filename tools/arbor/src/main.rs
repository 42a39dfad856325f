//! `cargo arbor`: the one host tool. It builds what a scenario needs, packs
//! the boot archive, boots QEMU and reads what the guest prints.
//!
//! Each verb lives in its own module; this file only parses the command line.
//! Errors are `anyhow` chains: what failed, then what the tool was doing.

#[cfg(test)]
mod agreement;
mod archive;
mod bench;
mod check;
mod components;
mod configs;
mod disk_image;
mod graph;
mod needs;
mod new;
mod qemu;
mod qmp;
mod scenarios;
mod screenshot;
mod setup;
mod test;
mod workspace;

use anyhow::Context as _;
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
        /// Accelerator: auto (KVM when /dev/kvm answers and an earlier run did not find it slow), kvm or tcg.
        #[arg(long, default_value = "auto")]
        accel: qemu::AccelChoice,
        /// Save a PNG of the display (QMP screendump) once the scenario is
        /// ready, i.e. every line its test expects has appeared.
        #[arg(long)]
        screenshot: Option<std::path::PathBuf>,
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
    /// Validate scenarios (building their binaries to size quotas, never booting); explain a route.
    Check {
        /// Names from runtime-configs/ or paths to .ron files (default: all).
        scenarios: Vec<String>,
        /// Follow one session request: CHILD SERVICE [LABEL] (CHILD may be "nested/child").
        #[arg(long, num_args = 2..=3, value_names = ["CHILD", "SERVICE", "LABEL"])]
        explain: Option<Vec<String>>,
        /// Do not require every `binary` to be built by the workspace.
        #[arg(long)]
        allow_missing_binaries: bool,
        /// Print each child's declared quota against what it needs (its ELF's loading cost or its declared minimum).
        #[arg(long)]
        quota: bool,
        /// Size quotas from the ELFs already built instead of building them first.
        #[arg(long)]
        no_build: bool,
    },
    /// Draw a scenario's component tree and routes.
    Graph {
        /// A name from runtime-configs/ or a path to a .ron file.
        scenario: String,
        /// svg, dot or text.
        #[arg(long, default_value = "svg")]
        format: graph::Format,
        /// Write here instead of to stdout.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
    /// Make a new component from the template, with a scenario that tests it.
    New {
        /// The component's name: snake_case, e.g. demo_app.
        name: String,
        /// app (Log, Timer, config), server (its own session interface) or driver (ports, IRQ).
        #[arg(long)]
        kind: new::Kind,
    },
    /// Arbor's benchmark figures beside a Linux guest's in the same QEMU, with ratios.
    Bench {
        /// Only benchmarks (figures and scenarios) whose name contains this.
        filter: Option<String>,
        /// Instruction-exact: every guest under TCG with -icount (the default unless KVM is used).
        #[arg(long)]
        exact: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Accelerator: auto (KVM when /dev/kvm is usable and was not found slow), kvm, or tcg (= --exact).
        #[arg(long, default_value = "auto")]
        accel: qemu::AccelChoice,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Run {
            scenario,
            accel,
            screenshot,
        } => qemu::run_command(&scenario, accel, screenshot.as_deref())
            .with_context(|| format!("running scenario \"{scenario}\"")),
        Command::Test {
            filter,
            scenarios_only,
            accel,
        } => test::test_command(filter.as_deref(), scenarios_only, accel)
            .context("testing scenarios"),
        Command::Check {
            scenarios,
            explain,
            allow_missing_binaries,
            quota,
            no_build,
        } => check::check_command(
            &scenarios,
            explain.as_deref(),
            check::CheckOptions {
                allow_missing_binaries,
                quota,
                no_build,
            },
        )
        .map_err(anyhow::Error::msg)
        .context("checking scenarios"),
        Command::Graph {
            scenario,
            format,
            output,
        } => graph::graph_command(&scenario, format, output.as_deref())
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("drawing scenario \"{scenario}\"")),
        Command::New { name, kind } => new::new_command(&name, kind)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("making component \"{name}\"")),
        Command::Bench {
            filter,
            exact,
            json,
            accel,
        } => bench::bench_command(filter.as_deref(), json, accel, exact)
            .map_err(anyhow::Error::msg)
            .context("benchmarking"),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // What the tool was doing first, then each deeper cause.
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
