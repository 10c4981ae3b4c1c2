//! Why an operator command failed, told so that the reader knows what to do next, and
//! the exit code that goes with it.
//!
//! Most failures are a [`ClientError`]; they are explained once, at the end, where the
//! command's needs (a read, a write, management) are known and the cluster can be asked
//! more (which managers are up when there is no quorum, what kind a refused token is).

use gantry_api::client::Unreachable;
use gantry_api::{codes, ClientError};

use super::connect::Ctx;

/// Exit codes of the operator commands (also in `gantry --help`): 0 done, 2 bad usage
/// (clap's), and these.
pub mod exit {
    /// The command failed: a manager refused it, none could be reached, bad input.
    pub const ERROR: u8 = 1;
    /// A wait ended unfinished: `job run` with instances not running (or its deployment
    /// still rolling out) by `--deadline`, `node drain` with allocations still on the
    /// node by `--deadline`.
    pub const UNFINISHED: u8 = 3;
}

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// A call failed; explained by [`Failure::explain`].
    Client(ClientError),
    /// Already explained.
    Message(String),
    /// A wait ended before what it waited for (exit code 3).
    Unfinished(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Client(e)
    }
}

pub type CmdResult = Result<(), Failure>;

/// `Err(Failure::Message)`.
pub fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Message(message.into()))
}

/// Turns a `404` into `message` (e.g. "no job `x`"); other errors pass.
pub fn or_not_found(e: ClientError, message: impl FnOnce() -> String) -> Failure {
    if e.is_not_found() {
        Failure::Message(message())
    } else {
        Failure::Client(e)
    }
}

/// What a command needs of the token (the contract's kinds: read < write < management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any valid token (`acl token self`).
    AnyToken,
    Read,
    Write,
    Management,
    /// Nothing (`acl bootstrap`, `completion`).
    Nothing,
}

impl Needs {
    fn kind(&self) -> &'static str {
        match self {
            Needs::Read => "read",
            Needs::Write => "write",
            Needs::Management => "management",
            Needs::AnyToken | Needs::Nothing => "a valid token",
        }
    }
}

impl Failure {
    /// The message for people and the exit code.
    pub async fn explain(self, ctx: Option<&Ctx>, needs: Needs) -> (String, u8) {
        match self {
            Failure::Message(message) => (message, exit::ERROR),
            Failure::Unfinished(message) => (message, exit::UNFINISHED),
            Failure::Client(e) => (explain_client_error(e, ctx, needs).await, exit::ERROR),
        }
    }
}

async fn explain_client_error(e: ClientError, ctx: Option<&Ctx>, needs: Needs) -> String {
    match &e {
        ClientError::Unreachable(failures) => unreachable_message(failures),
        ClientError::Api { status, body } => {
            let message = body.message().to_string();
            match (*status, body.code()) {
                (503, codes::NO_QUORUM) => {
                    let mut text = no_quorum_message(ctx).await;
                    if needs == Needs::Read {
                        text.push_str(
                            "; meanwhile --stale answers reads from a manager's own copy",
                        );
                    }
                    text
                }
                (401, _) => unauthorized_message(ctx, &message),
                (403, _) => forbidden_message(ctx, needs, &message).await,
                (_, codes::INVALID_SPEC) => format!("invalid job spec: {message}"),
                (413, _) => format!("{message} (the managers' --max-body-bytes limits requests)"),
                (501, _) => message,
                (_, codes::NOT_FOUND) | (_, codes::CONFLICT) | (_, codes::BAD_REQUEST) => message,
                (_, codes::AGENT_UNREACHABLE) => {
                    format!(
                        "{message} — is the node's agent running and reachable from the managers?"
                    )
                }
                (421, _) => {
                    format!("{message} — the managers are changing leader; try again in a moment")
                }
                (status, code) => format!("{message} (HTTP {status}, {code})"),
            }
        }
        ClientError::Transport(text) => format!(
            "the connection to the manager failed mid-request: {text} — try again; if it \
             persists, check the managers' logs"
        ),
        ClientError::Decode(text) => format!(
            "the manager's answer was not understood: {text} — are the managers and this \
             CLI the same version (`gantry --version`)?"
        ),
        ClientError::Config(text) => format!("{text} — check --address or GANTRY_ADDR"),
    }
}

fn unreachable_message(failures: &[Unreachable]) -> String {
    let each = failures
        .iter()
        .map(|f| format!("{}: {}", f.manager, f.reason))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "cannot reach any manager ({each}) — is `gantry server` running? set --address or \
         GANTRY_ADDR"
    )
}

fn unauthorized_message(ctx: Option<&Ctx>, server: &str) -> String {
    if ctx.is_some_and(|c| c.token.is_some()) {
        format!(
            "the cluster refused your token ({server}) — it is unknown or was revoked: check \
             --token or GANTRY_TOKEN"
        )
    } else {
        "this cluster requires a token: pass --token or set GANTRY_TOKEN".to_string()
    }
}

async fn forbidden_message(ctx: Option<&Ctx>, needs: Needs, server: &str) -> String {
    let kind = match ctx {
        Some(ctx) => ctx.client.acl_token_self().await.ok().map(|t| t.kind),
        None => None,
    };
    let needs = needs.kind();
    match kind {
        Some(kind) => format!("your token (kind {kind}) cannot do this (needs {needs})"),
        None => format!("your token cannot do this (needs {needs}): {server}"),
    }
}

/// "no leader", with which managers answer and which do not.
async fn no_quorum_message(ctx: Option<&Ctx>) -> String {
    const ADVICE: &str = "check `gantry status` on each manager and that a majority of them is \
                          running";
    let Some(ctx) = ctx else {
        return format!("no leader: the managers cannot form a quorum — {ADVICE}");
    };
    let Ok(status) = ctx.client.status().await else {
        return format!("no leader: the managers cannot form a quorum — {ADVICE}");
    };
    let voters: Vec<_> = status.members.iter().filter(|m| m.voter).collect();
    let mut down = Vec::new();
    for member in &voters {
        let answers = match ctx.probe_client(&member.addr) {
            Some(client) => client.status().await.is_ok(),
            None => false,
        };
        if !answers {
            down.push(format!("{} ({})", member.id, member.addr));
        }
    }
    if down.is_empty() {
        format!(
            "no leader: all {} managers answer but none leads yet (an election is under way, or \
             they cannot reach each other) — {ADVICE}",
            voters.len()
        )
    } else {
        format!(
            "no leader: {} of {} managers unreachable ({}) — {ADVICE}",
            down.len(),
            voters.len(),
            down.join(", ")
        )
    }
}
