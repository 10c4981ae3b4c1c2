//! The Raft node: openraft settings, the HTTP transport between managers, and the peer
//! routes that receive it. Peer messages are MessagePack, not JSON: log entries carry
//! opaque command bytes, and MessagePack keeps them compact.

pub mod codec;
pub mod network;
pub mod peer_routes;
pub mod recovery;
pub mod settings;
pub mod status;

pub use gantry_raft_store::{NodeId, Raft, TypeConfig};
