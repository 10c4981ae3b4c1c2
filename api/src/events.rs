//! The event stream, `GET /v1/events?index=N&topic=a,b`: every committed change to the
//! cluster state after index N, as server-sent events, then the changes as they commit.
//!
//! Each SSE message is one change:
//!
//! ```text
//! id: 42
//! event: allocation
//! data: {"index":42,"topic":"allocation","type":"upsert","key":"alloc/web-0-1a2b3c4d","object":{...}}
//! ```
//!
//! `index` is the Raft log index of the change; one log entry can change several
//! records, so several events may share an index (a key appears at most once per index,
//! with its value after the entry). `object` is the record as stored (a [`Job`],
//! [`JobVersion`], [`Node`], [`Allocation`], or a [`MembershipObject`]); `null` when the
//! record was deleted. Resuming with `?index=N` delivers exactly the changes with an index
//! greater than N, so resume from the last index whose events you have all seen.
//!
//! A manager keeps only its newest changes. If N is older than that, or the reader fell
//! behind while following, the stream sends one `event: truncated` message with
//! [`Truncated`] as data and ends: re-list what you need (its `X-Gantry-Index` is an index
//! you can resume from) and open the stream again.
//!
//! [`Job`]: crate::jobs::Job
//! [`JobVersion`]: crate::jobs::JobVersion
//! [`Node`]: crate::node::Node
//! [`Allocation`]: crate::allocation::Allocation

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::status::Member;

/// The SSE event name of the message that ends a stream whose start (or whose reader)
/// fell out of the manager's buffer.
pub const TRUNCATED: &str = "truncated";

/// What a change is about; the SSE event name of its message.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A job's current record (`job/<id>`).
    Job,
    /// A kept version of a job's spec (`jobv/<id>/<version>`).
    JobVersion,
    /// A node (`node/<id>`).
    Node,
    /// An allocation (`alloc/<id>`).
    Allocation,
    /// A deployment of a job version (`deployment/<id>`).
    Deployment,
    /// The managers' Raft membership (key `membership`).
    Membership,
    /// Tokens and join tokens. Only the kind of record changed is published (the key's
    /// first two segments, e.g. `acl/token`, so several may share a key and an index),
    /// never ids, names or hashes: `object` is always `null`.
    Acl,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Job,
        Topic::JobVersion,
        Topic::Node,
        Topic::Allocation,
        Topic::Deployment,
        Topic::Membership,
        Topic::Acl,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Job => "job",
            Topic::JobVersion => "job_version",
            Topic::Node => "node",
            Topic::Allocation => "allocation",
            Topic::Deployment => "deployment",
            Topic::Membership => "membership",
            Topic::Acl => "acl",
        }
    }

    /// Parses `topic=job,node` (empty items are ignored). An unknown name is an error
    /// that lists the known ones.
    pub fn parse_list(text: &str) -> Result<Vec<Topic>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Topic::from_str)
            .collect()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Topic {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Topic::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
                format!("unknown topic `{text}`; known: {}", known.join(", "))
            })
    }
}

/// Whether the record was written or removed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Upsert,
    Delete,
}

/// One committed change: the `data` of an SSE message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// The Raft log index the change was committed at.
    pub index: u64,
    pub topic: Topic,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The record's key in the replicated state (`job/web`, `alloc/web-0-1a2b3c4d`).
    pub key: String,
    /// The record after the change; `null` on delete.
    pub object: Option<serde_json::Value>,
}

impl Event {
    /// `object` decoded as the record type of its topic.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Option<Result<T, String>> {
        self.object
            .clone()
            .map(|v| serde_json::from_value(v).map_err(|e| format!("{}: {e}", self.key)))
    }
}

/// The `data` of an `event: truncated` message, the last of its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Truncated {
    /// The oldest index this manager can resume from now: it still holds every change
    /// after it.
    pub oldest_index: u64,
}

/// The `object` of a `membership` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembershipObject {
    pub members: Vec<Member>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_their_names() {
        for topic in Topic::ALL {
            assert_eq!(topic.as_str().parse::<Topic>(), Ok(topic));
            let json = serde_json::to_string(&topic).unwrap();
            assert_eq!(json, format!("\"{}\"", topic.as_str()));
        }
        assert_eq!(
            Topic::parse_list("job, node,,allocation"),
            Ok(vec![Topic::Job, Topic::Node, Topic::Allocation])
        );
        let error = Topic::parse_list("job,jobs").unwrap_err();
        assert!(error.contains("unknown topic `jobs`"), "{error}");
        assert!(error.contains("job_version"), "{error}");
    }

    #[test]
    fn an_event_has_the_documented_shape() {
        let event = Event {
            index: 7,
            topic: Topic::Job,
            kind: EventType::Delete,
            key: "job/web".into(),
            object: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"index":7,"topic":"job","type":"delete","key":"job/web","object":null})
        );
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}
