//! Encoding of peer messages (MessagePack with field names, so a message from a manager of
//! a newer version with an extra field still decodes).

use serde::{de::DeserializeOwned, Serialize};

pub const CONTENT_TYPE: &str = "application/msgpack";

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("peer messages always serialise")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}
