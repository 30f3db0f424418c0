//! The `scx` binary: parse the command line, run it, map the outcome to an
//! exit code (0 pass, 1 violation, 2 bad input or usage).

use clap::Parser;
use scx_sim::cli::{self, BadInput, args::Cli};
use scx_sim::scenario::ScenarioError;
use std::process::ExitCode;

fn main() -> ExitCode {
    scx_sim::heap::configure();
    // Logging only when asked for: madsim opens a span per task poll, and a
    // subscriber that filters them all out still costs a few percent.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .init();
    }
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            if let Some(scenario) = error.downcast_ref::<ScenarioError>() {
                let report = miette::Report::new(ScenarioError {
                    location: scenario.location.clone(),
                    message: scenario.message.clone(),
                    help: scenario.help.clone(),
                    source_code: scenario.source_code.clone(),
                    span: scenario.span,
                    label: scenario.label.clone(),
                });
                eprintln!("error: {scenario}\n{report:?}");
            } else if error.downcast_ref::<BadInput>().is_some() {
                eprintln!("error: {error}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(2)
        }
    }
}
