//! The `coroner` binary: parse the command line, then run the agent (with logging) or one of the
//! client commands (`crashes`, `show`, `groups`, `watch`), whose errors carry their exit code.

use std::process::ExitCode;

use clap::Parser;
use coroner::config::{AgentArgs, Cli, ClientCommand, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn agent(args: AgentArgs) -> anyhow::Result<()> {
    if let Err(invalid) = args.validate() {
        for i in &invalid {
            eprintln!("coroner: invalid setting {i}");
        }
        anyhow::bail!(
            "{} invalid setting(s); see `coroner agent --help`",
            invalid.len()
        );
    }
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("coroner")
        .build()?;
    runtime.block_on(coroner::agent::run(args, shutdown_signal()))?;
    Ok(())
}

/// Runs a client command on a current-thread runtime: one request at a time needs no more.
fn client(cmd: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coroner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(coroner::client::run(cmd, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coroner: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(args) => match agent(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("coroner: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Client(cmd) => client(cmd),
    }
}
