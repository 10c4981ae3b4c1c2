//! `gantry acl ...`: access control. The first management token (`bootstrap`), tokens
//! for people and programs, and the join token agents register with.

use clap::{Args, Subcommand, ValueEnum};
use gantry_api::acl::{AclToken, TokenKind};

use super::connect::{ClientArgs, Ctx};
use super::failure::{or_not_found, CmdResult, Needs};
use crate::cells;
use crate::output::time::{ago, now_ms};
use crate::output::{print_fields, print_json, Table};

#[derive(Args, Debug)]
pub struct AclArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Create the first management token and the first join token. Works once per
    /// cluster (managers started with --acl), without a token.
    Bootstrap {
        /// Use this secret for the management token (at least 16 characters) instead
        /// of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Operator tokens: create, list, revoke, and the one in use.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The join token agents register with (`gantry agent --join-token`).
    #[command(subcommand, name = "join-token")]
    JoinToken(JoinTokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; its secret is shown once.
    Create {
        /// Who or what uses it.
        #[arg(long)]
        name: String,
        /// read: read anything; write: also change jobs, nodes, allocations, peers,
        /// snapshots; management: also manage tokens and the join token.
        #[arg(long, value_enum)]
        kind: KindArg,
    },
    /// Every token (never their secrets).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's accessor id (see `gantry acl token list`).
        accessor: String,
    },
    /// The token this command sends (--token, GANTRY_TOKEN).
    #[command(name = "self")]
    Myself,
}

#[derive(Subcommand, Debug)]
pub enum JoinTokenCommand {
    /// Replace the join token: agents already registered keep working; new
    /// registrations need the new one.
    Rotate {
        /// Use this join token (at least 16 characters) instead of a generated one.
        #[arg(long)]
        join_token: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Read,
    Write,
    Management,
}

impl From<KindArg> for TokenKind {
    fn from(kind: KindArg) -> TokenKind {
        match kind {
            KindArg::Read => TokenKind::Read,
            KindArg::Write => TokenKind::Write,
            KindArg::Management => TokenKind::Management,
        }
    }
}

pub fn needs(command: &AclCommand) -> Needs {
    match command {
        AclCommand::Bootstrap { .. } => Needs::Nothing,
        AclCommand::Token(TokenCommand::Myself) => Needs::AnyToken,
        _ => Needs::Management,
    }
}

pub async fn run(ctx: &Ctx, command: AclCommand) -> CmdResult {
    match command {
        AclCommand::Bootstrap { secret } => {
            let answer = ctx.client.acl_bootstrap(secret).await?;
            if ctx.json {
                print_json(&answer);
                return Ok(());
            }
            println!("ACL bootstrapped. Keep these secrets: they are not shown again.\n");
            token_fields(ctx, &answer.token.token, Some(&answer.token.secret));
            println!();
            print_fields(&ctx.style, &[("Join token", answer.join_token.clone())]);
            println!(
                "\nUse the secret with --token or GANTRY_TOKEN; start agents with \
                 --join-token."
            );
            Ok(())
        }
        AclCommand::Token(TokenCommand::Create { name, kind }) => {
            let created = ctx.client.create_acl_token(&name, kind.into()).await?;
            if ctx.json {
                print_json(&created);
            } else {
                token_fields(ctx, &created.token, Some(&created.secret));
                println!("\nThe secret is shown once: keep it.");
            }
            Ok(())
        }
        AclCommand::Token(TokenCommand::List) => {
            let tokens = ctx.client.list_acl_tokens().await?;
            if ctx.json {
                print_json(&tokens);
                return Ok(());
            }
            let now = now_ms();
            let mut table = Table::new(["ACCESSOR", "NAME", "KIND", "CREATED"]);
            for t in &tokens {
                table.row(cells![
                    t.accessor_id.as_str(),
                    t.name.as_str(),
                    t.kind.as_str(),
                    ago(t.created_at_ms, now)
                ]);
            }
            table.print(&ctx.style);
            Ok(())
        }
        AclCommand::Token(TokenCommand::Revoke { accessor }) => {
            let revoked = ctx.client.revoke_acl_token(&accessor).await.map_err(|e| {
                or_not_found(e, || {
                    format!(
                        "no token with accessor `{accessor}` — `gantry acl token list` shows them"
                    )
                })
            })?;
            if ctx.json {
                print_json(&revoked);
            } else {
                println!(
                    "token `{}` ({}, {}) revoked",
                    revoked.accessor_id, revoked.name, revoked.kind
                );
            }
            Ok(())
        }
        AclCommand::Token(TokenCommand::Myself) => {
            let token = ctx.client.acl_token_self().await?;
            if ctx.json {
                print_json(&token);
            } else {
                token_fields(ctx, &token, None);
            }
            Ok(())
        }
        AclCommand::JoinToken(JoinTokenCommand::Rotate { join_token }) => {
            let rotated = ctx.client.rotate_join_token(join_token).await?;
            if ctx.json {
                print_json(&rotated);
            } else {
                print_fields(&ctx.style, &[("Join token", rotated.join_token.clone())]);
                println!(
                    "\nThe previous join token no longer registers nodes; agents already \
                     registered keep working."
                );
            }
            Ok(())
        }
    }
}

fn token_fields(ctx: &Ctx, token: &AclToken, secret: Option<&str>) {
    let mut fields = vec![
        ("Accessor", token.accessor_id.clone()),
        ("Name", token.name.clone()),
        ("Kind", token.kind.to_string()),
        ("Created", ago(token.created_at_ms, now_ms())),
    ];
    if let Some(secret) = secret {
        fields.insert(1, ("Secret", secret.to_string()));
    }
    print_fields(&ctx.style, &fields);
}
