//! Which routes need what, with ACL on.
//!
//! One table for the whole API, by method and path, so that a new route is covered the
//! moment it exists: anything not named here needs a `read` token to `GET` and a
//! `write` token otherwise. The only public routes are `GET /v1/status` (where a client
//! finds the leader) and `POST /v1/acl/bootstrap` (which works once). Peer routes and
//! agent routes have credentials of their own, checked where they are served.

use axum::http::Method;
use gantry_api::acl::TokenKind;

/// What a request must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing.
    Public,
    /// The cluster secret (checked by the peer routes).
    Peer,
    /// The join token or the node's secret (checked by the dispatcher's routes).
    Agent,
    /// Any valid token.
    AnyToken,
    /// A token of this kind or above.
    Token(TokenKind),
}

pub const STATUS_PATH: &str = "/v1/status";
pub const BOOTSTRAP_PATH: &str = "/v1/acl/bootstrap";
pub const TOKEN_SELF_PATH: &str = "/v1/acl/token/self";
const ACL_PREFIX: &str = "/v1/acl/";
const PEER_PREFIX: &str = "/v1/raft/";
const AGENT_PREFIX: &str = "/v1/agent/";
const SNAPSHOT_PATH: &str = "/v1/operator/snapshot";

pub fn required(method: &Method, path: &str) -> Access {
    let reads = *method == Method::GET || *method == Method::HEAD;
    if path == STATUS_PATH && reads {
        return Access::Public;
    }
    if path == BOOTSTRAP_PATH && *method == Method::POST {
        return Access::Public;
    }
    if path.starts_with(PEER_PREFIX) {
        return Access::Peer;
    }
    if path.starts_with(AGENT_PREFIX) {
        return Access::Agent;
    }
    if path == TOKEN_SELF_PATH && reads {
        return Access::AnyToken;
    }
    if path.starts_with(ACL_PREFIX) || path == "/v1/acl" {
        return Access::Token(TokenKind::Management);
    }
    // A snapshot holds the token hashes (and a chosen bootstrap secret's hash): an
    // operator's file, not a reader's.
    if path == SNAPSHOT_PATH {
        return Access::Token(TokenKind::Write);
    }
    if reads {
        Access::Token(TokenKind::Read)
    } else {
        Access::Token(TokenKind::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::*;
    use TokenKind::*;

    #[test]
    fn every_kind_of_route_is_classified() {
        let cases = [
            (Method::GET, "/v1/status", Public),
            (Method::POST, "/v1/status", Token(Write)),
            (Method::POST, "/v1/acl/bootstrap", Public),
            (Method::GET, "/v1/acl/bootstrap", Token(Management)),
            (Method::GET, "/v1/acl/token/self", AnyToken),
            (Method::GET, "/v1/acl/tokens", Token(Management)),
            (Method::POST, "/v1/acl/tokens", Token(Management)),
            (Method::DELETE, "/v1/acl/tokens/abc", Token(Management)),
            (Method::POST, "/v1/acl/join-token/rotate", Token(Management)),
            (Method::GET, "/v1/jobs", Token(Read)),
            (Method::GET, "/v1/jobs/web/versions", Token(Read)),
            (Method::POST, "/v1/jobs", Token(Write)),
            (Method::POST, "/v1/jobs/web/plan", Token(Write)),
            (Method::DELETE, "/v1/jobs/web", Token(Write)),
            (Method::PUT, "/v1/operator/snapshot", Token(Write)),
            (Method::GET, "/v1/operator/snapshot", Token(Write)),
            (Method::POST, "/v1/operator/raft/peers", Token(Write)),
            (Method::GET, "/v1/operator/raft", Token(Read)),
            (Method::GET, "/v1/events", Token(Read)),
            (Method::GET, "/metrics", Token(Read)),
            (Method::GET, "/v1/no/such/route", Token(Read)),
            (Method::POST, "/v1/raft/append", Peer),
            (Method::POST, "/v1/raft/propose", Peer),
            (Method::POST, "/v1/agent/register", Agent),
            (Method::GET, "/v1/agent/session", Agent),
        ];
        for (method, path, expected) in cases {
            assert_eq!(required(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn look_alike_paths_are_not_public() {
        assert_eq!(required(&Method::GET, "/v1/status/"), Token(Read));
        assert_eq!(required(&Method::GET, "/v1/statusx"), Token(Read));
        assert_eq!(
            required(&Method::POST, "/v1/acl/bootstrap/x"),
            Token(Management)
        );
        assert_eq!(
            required(&Method::POST, "/v1/operator/raft/append"),
            Token(Write)
        );
        assert_eq!(required(&Method::POST, "/v1/raftx/append"), Token(Write));
    }
}
