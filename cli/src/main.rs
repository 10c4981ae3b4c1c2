//! `gantry`: one binary for the manager (`server`), the node agent (`agent`), a local
//! development cluster (`dev`), and the operator commands that talk to the managers'
//! API (`job`, `deployment`, `node`, `alloc`, `service`, `operator`, `status`, `events`,
//! `acl`).

mod commands;
mod config_file;
mod logging;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::connect::{ClientArgs, Ctx, LeadingClientArgs};
use commands::failure::{exit, Needs};
use commands::{acl, alloc, completion, deployment, events, job, node, operator, service, status};

const AFTER_HELP: &str = "\
Operator commands talk to the managers at --address (or GANTRY_ADDR; default
http://127.0.0.1:4646), with the token of --token (or GANTRY_TOKEN) when the cluster
requires one. Add --json for the API's JSON instead of tables.

Exit codes:
  0  done
  1  the command failed: a manager refused it, none could be reached, bad input
  2  bad usage (unknown command or flag, missing argument)
  3  a wait ended unfinished: `job run` with instances not running or its deployment
     still rolling out, or `node drain` with allocations left, by --deadline";

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Gantry: a container orchestrator with replicated managers",
    after_help = AFTER_HELP
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

    #[command(flatten)]
    client: LeadingClientArgs,

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
    /// Submit, follow, inspect, scale, revert and stop jobs.
    Job(job::JobArgs),
    /// Rollouts of new job versions: list, inspect, promote canaries, fail, pause,
    /// resume.
    Deployment(deployment::DeploymentArgs),
    /// Worker nodes: list, inspect, drain, eligibility.
    Node(node::NodeArgs),
    /// Allocations (placed instances): list, inspect, logs, restart, stop.
    Alloc(alloc::AllocArgs),
    /// Service discovery: services and their healthy endpoints.
    Service(service::ServiceArgs),
    /// The managers: Raft membership and snapshots of the whole state.
    Operator(operator::OperatorArgs),
    /// The cluster at a glance: leader, term, managers, nodes and jobs.
    Status(status::StatusArgs),
    /// The committed changes to the cluster state, from an index on (`--follow` to keep
    /// streaming).
    Events(events::EventsArgs),
    /// Access control: bootstrap, tokens, the agents' join token.
    Acl(acl::AclArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(completion::CompletionArgs),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = config_file::path_from_args(&args) {
        if let Err(e) = config_file::apply(std::path::Path::new(&path)) {
            eprintln!("Error: {e:?}");
            return ExitCode::from(exit::ERROR);
        }
    }
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let daemon = |result: anyhow::Result<()>| match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::from(exit::ERROR)
        }
    };
    match cli.command {
        Command::Server(args) => daemon(runtime.block_on(commands::server::run(args))),
        Command::Agent(args) => daemon(runtime.block_on(commands::agent::run(args))),
        Command::Dev(args) => daemon(runtime.block_on(commands::dev::run(args))),
        Command::Completion(args) => {
            completion::run(args, &mut Cli::command());
            ExitCode::SUCCESS
        }
        command => {
            commands::restore_default_sigpipe();
            runtime.block_on(operate(cli.client, command))
        }
    }
}

/// Runs an operator command: resolves the connection flags, runs it, and explains a
/// failure on stderr with its exit code.
async fn operate(leading: LeadingClientArgs, command: Command) -> ExitCode {
    let (args, needs): (&ClientArgs, Needs) = match &command {
        Command::Job(a) => (&a.client, job::needs(&a.command)),
        Command::Deployment(a) => (&a.client, deployment::needs(&a.command)),
        Command::Node(a) => (&a.client, node::needs(&a.command)),
        Command::Alloc(a) => (&a.client, alloc::needs(&a.command)),
        Command::Service(a) => (&a.client, service::needs(&a.command)),
        Command::Operator(a) => (&a.client, operator::needs(&a.command)),
        Command::Status(a) => (&a.client, status::needs()),
        Command::Events(a) => (&a.client, events::needs()),
        Command::Acl(a) => (&a.client, acl::needs(&a.command)),
        Command::Server(_) | Command::Agent(_) | Command::Dev(_) | Command::Completion(_) => {
            unreachable!("not an operator command")
        }
    };
    let ctx = match Ctx::resolve(&leading, args) {
        Ok(ctx) => ctx,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = match command {
        Command::Job(a) => job::run(&ctx, a.command).await,
        Command::Deployment(a) => deployment::run(&ctx, a.command).await,
        Command::Node(a) => node::run(&ctx, a.command).await,
        Command::Alloc(a) => alloc::run(&ctx, a.command).await,
        Command::Service(a) => service::run(&ctx, a.command).await,
        Command::Operator(a) => operator::run(&ctx, a.command).await,
        Command::Status(_) => status::run(&ctx).await,
        Command::Events(a) => events::run(&ctx, a).await,
        Command::Acl(a) => acl::run(&ctx, a.command).await,
        Command::Server(_) | Command::Agent(_) | Command::Dev(_) | Command::Completion(_) => {
            unreachable!("not an operator command")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (message, code) = failure.explain(Some(&ctx), needs).await;
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
