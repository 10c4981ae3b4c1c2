//! A test fake of the [`Application`]: an in-memory map, written through to the store.
//!
//! A command `key` stores `key = <index>`; a command `del:key` deletes `key`; the
//! command `clear` deletes everything. The response is the previous value (empty if
//! none), so tests can see what was applied.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use gantry_raft_store::{Application, Writes};

#[derive(Default)]
pub struct FakeApp {
    data: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    loads: AtomicUsize,
}

impl FakeApp {
    /// The application's current state.
    pub fn data(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.data.lock().unwrap().clone()
    }

    /// How many times `load` was called.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl Application for FakeApp {
    fn load(&self, data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        let mut map = BTreeMap::new();
        let mut previous: Option<Vec<u8>> = None;
        for (key, value) in data {
            if previous.as_ref().is_some_and(|p| *p >= key) {
                return Err(format!("keys out of order at {key:?}"));
            }
            previous = Some(key.clone());
            map.insert(key, value);
        }
        *self.data.lock().unwrap() = map;
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn apply(&self, index: u64, command: &[u8], writes: &mut Writes) -> Vec<u8> {
        let mut data = self.data.lock().unwrap();
        if command == b"clear" {
            writes.clear();
            data.clear();
            return Vec::new();
        }
        match command.strip_prefix(b"del:") {
            Some(key) => {
                writes.delete(key);
                data.remove(key).unwrap_or_default()
            }
            None => {
                let value = index.to_string().into_bytes();
                writes.put(command, value.clone());
                data.insert(command.to_vec(), value).unwrap_or_default()
            }
        }
    }
}

/// An application whose state cannot be loaded.
pub struct BrokenApp;

impl Application for BrokenApp {
    fn load(&self, _data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        Err("broken on purpose".to_string())
    }

    fn apply(&self, _index: u64, _command: &[u8], _writes: &mut Writes) -> Vec<u8> {
        Vec::new()
    }
}
