//! `gantry events`: the committed changes to the cluster state, as the managers publish
//! them (`GET /v1/events`).
//!
//! Without `--follow` it prints what the manager holds after `--index` and exits: it
//! notes the manager's applied index first, and stops at the first change past it, or
//! once the stream has been quiet for [`QUIET`] (the held changes come at once; a quiet
//! stream has nothing more held for the topics asked). With `--follow` it keeps printing
//! until the manager ends the stream or Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use gantry_api::client::StreamMessage;
use gantry_api::events::{Event, Topic};
use serde_json::Value;

use super::connect::{ClientArgs, Ctx};
use super::failure::{fail, CmdResult, Failure, Needs};
use super::job_progress::serde_plain;

/// Without `--follow`: how long a quiet stream is waited on before it is taken as done.
const QUIET: Duration = Duration::from_millis(1000);

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Start after this log index. Default: every change the manager holds (without
    /// --follow), or only new changes (with --follow).
    #[arg(long, value_name = "N")]
    pub index: Option<u64>,

    /// Only this topic (repeat for several): job, job_version, node, allocation,
    /// deployment, membership, acl.
    #[arg(long = "topic", value_name = "TOPIC", value_parser = parse_topic)]
    pub topics: Vec<Topic>,

    /// Keep streaming new changes as they commit, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

fn parse_topic(text: &str) -> Result<Topic, String> {
    text.parse()
}

pub fn needs() -> Needs {
    Needs::Read
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> CmdResult {
    // The manager answering the status answers the stream too (the client stays with
    // the manager that answered), so its applied index bounds what it holds.
    let until = if args.follow {
        None
    } else {
        Some(ctx.client.status().await?.applied_index)
    };
    let start = match (args.index, args.follow) {
        (Some(index), _) => Some(index),
        (None, false) => Some(0),
        (None, true) => None,
    };
    let mut stream = ctx.client.events(start, &args.topics).await?;
    let mut printed = 0usize;
    if !ctx.json {
        println!(
            "{:<9} {:<12} {:<7} {:<40} SUMMARY",
            "INDEX", "TOPIC", "TYPE", "KEY"
        );
    }
    loop {
        let next = if args.follow {
            stream.next().await
        } else {
            match tokio::time::timeout(QUIET, stream.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(()),
            }
        };
        let message = match next {
            None => return Ok(()),
            Some(Err(e)) => return Err(Failure::Client(e)),
            Some(Ok(message)) => message,
        };
        match message {
            StreamMessage::Event(event) => {
                if until.is_some_and(|until| event.index > until) {
                    return Ok(());
                }
                print_event(ctx, &event);
                printed += 1;
            }
            StreamMessage::Truncated(truncated) => {
                // Asked for "everything held": start again from what is held.
                if args.index.is_none() && printed == 0 && start.is_some() {
                    stream = ctx
                        .client
                        .events(Some(truncated.oldest_index), &args.topics)
                        .await?;
                    continue;
                }
                let last = stream.last_index().unwrap_or(0);
                return fail(format!(
                    "the manager no longer holds the changes after index {last} (the oldest it \
                     can resume from is {}): re-read what you need (`gantry job list`, \
                     `gantry alloc list`...) and start again with --index {}",
                    truncated.oldest_index, truncated.oldest_index
                ));
            }
        }
    }
}

fn print_event(ctx: &Ctx, event: &Event) {
    let mut out = std::io::stdout().lock();
    let line = if ctx.json {
        serde_json::to_string(event).expect("events serialise")
    } else {
        format!(
            "{:<9} {:<12} {:<7} {:<40} {}",
            event.index,
            event.topic.as_str(),
            serde_plain(&event.kind),
            event.key,
            summary(event)
        )
    };
    let _ = writeln!(out, "{}", line.trim_end());
    let _ = out.flush();
}

/// A few words about the record after the change.
fn summary(event: &Event) -> String {
    let Some(object) = &event.object else {
        return String::new();
    };
    let s = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    let n = |key: &str| object.get(key).and_then(Value::as_u64).unwrap_or_default();
    match event.topic {
        Topic::Job => format!("version {} {}", n("version"), s("status")),
        Topic::JobVersion => format!("version {}", n("version")),
        Topic::Node => {
            let drain = if object.get("drain").and_then(Value::as_bool) == Some(true) {
                " draining"
            } else {
                ""
            };
            format!("{} {}{drain}", s("status"), s("eligibility"))
        }
        Topic::Allocation => format!("{}/{} on {}", s("desired"), s("client_state"), s("node_id")),
        Topic::Membership => object
            .get("members")
            .and_then(Value::as_array)
            .map(|members| {
                members
                    .iter()
                    .map(|m| {
                        let id = m.get("id").and_then(Value::as_u64).unwrap_or_default();
                        let voter = m.get("voter").and_then(Value::as_bool) == Some(true);
                        if voter {
                            id.to_string()
                        } else {
                            format!("{id} (learner)")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        Topic::Deployment | Topic::Acl => String::new(),
    }
}
