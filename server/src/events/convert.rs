//! From what an apply wrote to the events readers see.
//!
//! The state machine records every change as a key/value write (`state::keys`); the key's
//! prefix says the topic. The event's JSON is built once, here, with the stored value
//! spliced in as `object` (it is JSON already), so holding and sending an event costs one
//! string. Several writes of one key at one index (commands batched into one log entry)
//! become one event with the last value. Keys of access control never carry their value,
//! nor anything past the record's kind (`acl/token`, never the accessor id), and keys of
//! no known topic are not published.

use crate::state::acl::PREFIX as ACL_PREFIX;
use crate::state::keys;
use gantry_api::events::{EventType, MembershipObject, Topic};
use gantry_api::status::Member;
use openraft::{BasicNode, Membership};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One change ready for the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub topic: Topic,
    pub data: Arc<str>,
}

/// The events of the writes one log entry made, in the order their keys were first
/// written.
pub fn changes(index: u64, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<Change> {
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(ops.len());
    for (i, (key, _)) in ops.iter().enumerate() {
        last.insert(key.as_slice(), i);
    }
    let mut emitted: HashSet<&[u8]> = HashSet::with_capacity(last.len());
    let mut out = Vec::with_capacity(last.len());
    for (key, _) in ops {
        if !emitted.insert(key.as_slice()) {
            continue;
        }
        let (key, value) = &ops[last[key.as_slice()]];
        out.extend(change(index, key, value.as_deref()));
    }
    out
}

/// The event of one write, or `None` for a key of no topic.
fn change(index: u64, key: &[u8], value: Option<&[u8]>) -> Option<Change> {
    let key = std::str::from_utf8(key).ok()?;
    let kind = if value.is_some() {
        EventType::Upsert
    } else {
        EventType::Delete
    };
    let (topic, key, value) = if let Some(rest) = key.strip_prefix(ACL_PREFIX) {
        // `acl/token/<accessor>` → `acl/token`: the kind of record, nothing else.
        let kind_end = rest.find('/').map_or(key.len(), |i| ACL_PREFIX.len() + i);
        (Topic::Acl, &key[..kind_end], None)
    } else {
        (topic_of(key)?, key, value)
    };
    let object = match value {
        Some(bytes) => match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => std::str::from_utf8(bytes).ok()?,
            Err(e) => {
                tracing::warn!(key, error = %e, "a stored record is not JSON; its event carries no object");
                "null"
            }
        },
        None => "null",
    };
    Some(Change {
        topic,
        data: event_json(index, topic, kind, key, object),
    })
}

fn topic_of(key: &str) -> Option<Topic> {
    // `jobv/` before `job/`: neither is a prefix of the other, but keep the order obvious.
    [
        (keys::JOB_VERSION_PREFIX, Topic::JobVersion),
        (keys::JOB_PREFIX, Topic::Job),
        (keys::NODE_PREFIX, Topic::Node),
        (keys::ALLOCATION_PREFIX, Topic::Allocation),
        (keys::DEPLOYMENT_PREFIX, Topic::Deployment),
    ]
    .into_iter()
    .find(|(prefix, _)| key.starts_with(prefix))
    .map(|(_, topic)| topic)
}

/// The event of a membership change applied at `index`.
pub fn membership(index: u64, membership: &Membership<u64, BasicNode>) -> Change {
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let object = MembershipObject {
        members: membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect(),
    };
    let object = serde_json::to_string(&object).expect("a membership serialises");
    Change {
        topic: Topic::Membership,
        data: event_json(
            index,
            Topic::Membership,
            EventType::Upsert,
            "membership",
            &object,
        ),
    }
}

/// `{"index","topic","type","key","object"}` with `object` already JSON.
fn event_json(index: u64, topic: Topic, kind: EventType, key: &str, object: &str) -> Arc<str> {
    let kind = match kind {
        EventType::Upsert => "upsert",
        EventType::Delete => "delete",
    };
    let key = serde_json::to_string(key).expect("a string serialises");
    Arc::from(format!(
        r#"{{"index":{index},"topic":"{topic}","type":"{kind}","key":{key},"object":{object}}}"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::events::Event;
    use std::collections::{BTreeMap, BTreeSet};

    fn put(key: &str, value: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))
    }

    fn del(key: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (key.as_bytes().to_vec(), None)
    }

    fn events(index: u64, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<Event> {
        changes(index, ops)
            .into_iter()
            .map(|c| {
                let event: Event = serde_json::from_str(&c.data).unwrap();
                assert_eq!(event.topic, c.topic);
                event
            })
            .collect()
    }

    #[test]
    fn each_key_prefix_has_its_topic_and_values_become_objects() {
        let got = events(
            9,
            &[
                put("job/web", r#"{"v":1}"#),
                put("jobv/web/00000000000000000001", r#"{"v":2}"#),
                put("node/n1", r#"{"v":3}"#),
                del("alloc/a\"1"),
                put("settings/x", "{}"),
            ],
        );
        let summary: Vec<(Topic, EventType, &str)> = got
            .iter()
            .map(|e| (e.topic, e.kind, e.key.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Topic::Job, EventType::Upsert, "job/web"),
                (
                    Topic::JobVersion,
                    EventType::Upsert,
                    "jobv/web/00000000000000000001"
                ),
                (Topic::Node, EventType::Upsert, "node/n1"),
                (Topic::Allocation, EventType::Delete, "alloc/a\"1"),
            ]
        );
        assert!(got.iter().all(|e| e.index == 9));
        assert_eq!(got[2].object, Some(serde_json::json!({"v": 3})));
        assert_eq!(got[3].object, None);
    }

    #[test]
    fn one_event_per_key_per_index_with_the_last_value() {
        let got = events(
            3,
            &[
                put("job/a", r#"{"n":1}"#),
                put("job/b", r#"{"n":1}"#),
                put("job/a", r#"{"n":2}"#),
                del("job/b"),
            ],
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].object, Some(serde_json::json!({"n": 2})));
        assert_eq!(
            (got[1].key.as_str(), got[1].kind),
            ("job/b", EventType::Delete)
        );
    }

    #[test]
    fn access_control_events_carry_only_the_kind_of_record() {
        let secret = r#"{"accessor_id":"a1","name":"ci","kind":"write","secret_hash":"ab12"}"#;
        let got = events(
            4,
            &[
                put("acl/token/a1", secret),
                put("acl/node/n1", r#""ffee""#),
                put("acl/join-token", r#""0011""#),
                del("acl/token/a2"),
            ],
        );
        let keys: BTreeSet<(&str, EventType)> =
            got.iter().map(|e| (e.key.as_str(), e.kind)).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                ("acl/token", EventType::Upsert),
                ("acl/node", EventType::Upsert),
                ("acl/join-token", EventType::Upsert),
                ("acl/token", EventType::Delete),
            ])
        );
        assert!(got
            .iter()
            .all(|e| e.topic == Topic::Acl && e.object.is_none()));
        let raw: String = changes(4, &[put("acl/token/a1", secret)])
            .iter()
            .map(|c| c.data.to_string())
            .collect();
        for secret_part in ["a1", "ci", "ab12", "secret_hash"] {
            assert!(!raw.contains(secret_part), "{raw} shows {secret_part}");
        }
    }

    #[test]
    fn a_membership_lists_members_and_voters() {
        let nodes = BTreeMap::from([
            (1, BasicNode::new("127.0.0.1:1")),
            (2, BasicNode::new("127.0.0.1:2")),
            (3, BasicNode::new("127.0.0.1:3")),
        ]);
        let m = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        let change = membership(12, &m);
        let event: Event = serde_json::from_str(&change.data).unwrap();
        assert_eq!(
            (event.index, event.topic, event.key.as_str()),
            (12, Topic::Membership, "membership")
        );
        let object: MembershipObject = event.decode().unwrap().unwrap();
        let voters: Vec<(u64, bool)> = object.members.iter().map(|m| (m.id, m.voter)).collect();
        assert_eq!(voters, vec![(1, true), (2, true), (3, false)]);
    }
}
