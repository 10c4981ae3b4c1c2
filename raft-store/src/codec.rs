//! How stored values are encoded: MessagePack through rmp-serde, structs as maps.
//!
//! Named fields (`to_vec_named`) cost a few bytes per record but let a field be added to a
//! stored struct later without breaking the records already on disk.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;

/// Encodes `value`; `what` names it in the error.
pub(crate) fn encode<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|source| StoreError::Encode { what, source })
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|source| StoreError::Decode { what, source })
}
