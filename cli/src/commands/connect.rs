//! What every operator command shares: which managers to talk to (`--address`,
//! `GANTRY_ADDR`), the token (`--token`, `GANTRY_TOKEN`), `--json`, and the client and
//! output style built from them.
//!
//! The flags are accepted before the command group (`gantry --json job list`) and
//! anywhere after it (`gantry job list --json`); a flag on the command line beats the
//! environment variable, which beats the default.

use std::time::Duration;

use clap::Args;
use gantry_api::{Client, ClientOptions};

use crate::output::Style;

/// The managers used when neither `--address` nor `GANTRY_ADDR` says otherwise.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// The connection flags of the operator commands.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// Managers to talk to, comma-separated (`host:port` or `http://host:port`); the
    /// first that accepts a connection answers. [env: GANTRY_ADDR] [default:
    /// http://127.0.0.1:4646]
    #[arg(long, global = true, value_name = "ADDRS")]
    pub address: Option<String>,

    /// ACL token (its secret) sent as `Authorization: Bearer`. [env: GANTRY_TOKEN]
    #[arg(long, global = true, value_name = "SECRET")]
    pub token: Option<String>,

    /// Print the API's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// Answer reads from the asked manager's own copy of the state: it may lag behind,
    /// but it answers without a quorum.
    #[arg(long, global = true)]
    pub stale: bool,
}

/// The same flags before the command group (`gantry --address ... job list`). Not
/// global there: `gantry agent` has an `--address` of its own.
#[derive(Args, Debug, Clone, Default)]
pub struct LeadingClientArgs {
    /// Managers to talk to (see the operator commands' --address). [env: GANTRY_ADDR]
    #[arg(long = "address", value_name = "ADDRS")]
    pub address: Option<String>,

    /// ACL token for the operator commands. [env: GANTRY_TOKEN]
    #[arg(long = "token", value_name = "SECRET")]
    pub token: Option<String>,

    /// Print the API's JSON instead of tables.
    #[arg(long = "json")]
    pub json: bool,

    /// Answer reads from the asked manager's own copy of the state (works without a
    /// quorum).
    #[arg(long = "stale")]
    pub stale: bool,
}

/// The resolved connection settings and output style of one command.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub client: Client,
    pub token: Option<String>,
    pub json: bool,
    /// Reads from the asked manager's own replica (`?stale=true`).
    pub stale: bool,
    pub style: Style,
}

impl Ctx {
    /// Flags after the group beat flags before it, which beat the environment.
    pub fn resolve(leading: &LeadingClientArgs, args: &ClientArgs) -> Result<Ctx, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let address = args
            .address
            .clone()
            .or_else(|| leading.address.clone())
            .or_else(|| env("GANTRY_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        let token = args
            .token
            .clone()
            .or_else(|| leading.token.clone())
            .or_else(|| env("GANTRY_TOKEN"))
            .filter(|t| !t.is_empty());
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(60),
        };
        let client = Client::with_options([address.as_str()], token.clone(), options)
            .map_err(|e| format!("{e} (check --address or GANTRY_ADDR)"))?;
        Ok(Ctx {
            client,
            token,
            json: args.json || leading.json,
            stale: args.stale || leading.stale,
            style: Style::detect(),
        })
    }

    /// A client for one manager only, with short timeouts, for probing each member.
    pub fn probe_client(&self, addr: &str) -> Option<Client> {
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
        };
        Client::with_options([addr], self.token.clone(), options).ok()
    }
}
