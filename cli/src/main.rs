//! `gantry`: one binary for the manager (`server`), the node agent (`agent`), a local
//! development cluster (`dev`), and the operator commands.

mod commands;
mod config_file;
mod logging;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Gantry: a container orchestrator with replicated managers"
)]
struct Cli {
    /// Read settings from this YAML file; its keys are the flag names (`data-dir: ...`).
    /// Flags and `GANTRY_*` environment variables take precedence over it.
    #[arg(long, global = true, env = "GANTRY_CONFIG")]
    config: Option<std::path::PathBuf>,

    /// Log output: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "GANTRY_LOG_FORMAT", default_value = "text")]
    log_format: logging::LogFormat,

    /// Log filter, e.g. `info` or `gantry_server=debug,openraft=warn`.
    #[arg(
        long,
        global = true,
        env = "GANTRY_LOG",
        default_value = "info,openraft=warn"
    )]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a manager: a Raft peer that holds the cluster state and serves the API.
    Server(commands::server::ServerArgs),
    /// Run the node agent: runs the containers the managers assign to this node.
    Agent(commands::agent::AgentArgs),
    /// Run a local development cluster: three managers and one agent, in temporary
    /// directories.
    Dev(commands::dev::DevArgs),
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = config_file::path_from_args(&args) {
        config_file::apply(std::path::Path::new(&path))?;
    }
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => commands::server::run(args).await,
            Command::Agent(args) => commands::agent::run(args).await,
            Command::Dev(args) => commands::dev::run(args).await,
        }
    })
}
