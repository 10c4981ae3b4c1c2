//! Which engine handle runs each task of each allocation right now.
//!
//! Runners write it as they start, restart and remove tasks; the agent's HTTP endpoint
//! reads it to find the task whose logs a manager asks for.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::driver::{Driver, TaskHandle};
use crate::logs_http::{LookupError, TaskLookup};

#[derive(Clone, Default)]
pub struct TaskTable {
    inner: Arc<RwLock<HashMap<String, Vec<TaskEntry>>>>,
}

#[derive(Clone)]
pub struct TaskEntry {
    pub task: String,
    pub driver: Arc<dyn Driver>,
    pub handle: TaskHandle,
}

impl TaskTable {
    /// Records (or replaces) the handle of one task.
    pub fn set(&self, alloc_id: &str, entry: TaskEntry) {
        let mut table = self.inner.write().expect("task table lock");
        let tasks = table.entry(alloc_id.to_string()).or_default();
        tasks.retain(|t| t.task != entry.task);
        tasks.push(entry);
    }

    pub fn remove_allocation(&self, alloc_id: &str) {
        self.inner
            .write()
            .expect("task table lock")
            .remove(alloc_id);
    }

    /// The tasks of an allocation; `None` if the agent runs nothing for it.
    pub fn tasks(&self, alloc_id: &str) -> Option<Vec<TaskEntry>> {
        self.inner
            .read()
            .expect("task table lock")
            .get(alloc_id)
            .cloned()
    }
}

impl TaskLookup for TaskTable {
    fn find(
        &self,
        alloc_id: &str,
        task: Option<&str>,
    ) -> Result<(Arc<dyn Driver>, TaskHandle), LookupError> {
        let tasks = self.tasks(alloc_id).ok_or(LookupError::UnknownAllocation)?;
        let entry = match task {
            Some(name) => tasks
                .iter()
                .find(|t| t.task == name)
                .ok_or_else(|| LookupError::UnknownTask(name.to_string()))?,
            None if tasks.len() == 1 => &tasks[0],
            None => {
                let mut names: Vec<String> = tasks.iter().map(|t| t.task.clone()).collect();
                names.sort();
                return Err(LookupError::TaskRequired(names));
            }
        };
        Ok((entry.driver.clone(), entry.handle.clone()))
    }
}
