//! The rules a well-formed job spec must also satisfy.
//!
//! Parsing guarantees the shape; these checks catch specs that parse but
//! cannot be run (no tasks, zero memory, a health check on a port that does
//! not exist). They run on the manager before anything is committed, so a
//! bad spec is a 400 that names the field and changes nothing. The first
//! problem found is reported.

use std::collections::HashMap;

use super::{HealthCheck, HealthCheckKind, JobSpec, JobType, SpecError, TaskSpec};

/// The longest job id accepted.
pub const MAX_JOB_ID_LEN: usize = 128;

/// The most replicas a service or batch job may ask for.
pub const MAX_REPLICAS: u32 = 10_000;

/// Checks a job id: 1 to 128 characters from `[A-Za-z0-9_.-]`. Also useful
/// for ids taken from URLs. (`.` and `..` alone are refused: they are path
/// segments, not names.)
pub fn validate_job_id(id: &str) -> Result<(), SpecError> {
    if id.is_empty() {
        return Err(SpecError::new("id", "must not be empty"));
    }
    if id.len() > MAX_JOB_ID_LEN {
        return Err(SpecError::new(
            "id",
            format!(
                "is {} characters long; the limit is {MAX_JOB_ID_LEN}",
                id.len()
            ),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(SpecError::new(
            "id",
            format!("invalid character {c:?}; use only letters, digits, '_', '.' and '-'"),
        ));
    }
    if id == "." || id == ".." {
        return Err(SpecError::new("id", format!("{id:?} is not a valid id")));
    }
    Ok(())
}

impl JobSpec {
    /// Checks the spec's meaning; the error names the field path.
    ///
    /// For `global` jobs `replicas` is ignored (one instance runs on every
    /// eligible node), so it is not checked either.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_job_id(&self.id)?;
        if self.kind != JobType::Global && self.replicas > MAX_REPLICAS {
            return Err(SpecError::new(
                "replicas",
                format!("{} is more than the limit of {MAX_REPLICAS}", self.replicas),
            ));
        }
        if !(1..=100).contains(&self.priority) {
            return Err(SpecError::new(
                "priority",
                format!("{} is out of range; use 1 to 100", self.priority),
            ));
        }
        self.validate_constraints()?;
        self.validate_tasks()?;
        self.validate_update()
    }

    fn validate_constraints(&self) -> Result<(), SpecError> {
        for (i, c) in self.constraints.iter().enumerate() {
            let at = format!("constraints[{i}]");
            if c.attribute.trim().is_empty() {
                return Err(SpecError::new(
                    format!("{at}.attribute"),
                    "must not be empty",
                ));
            }
            if c.operator.needs_value() && c.value.is_empty() {
                return Err(SpecError::new(
                    format!("{at}.value"),
                    "must not be empty for this operator",
                ));
            }
            if c.operator == super::ConstraintOperator::Regex {
                if let Err(e) = regex::Regex::new(&c.value) {
                    return Err(SpecError::new(
                        format!("{at}.value"),
                        format!("invalid regex: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_tasks(&self) -> Result<(), SpecError> {
        if self.tasks.is_empty() {
            return Err(SpecError::new("tasks", "a job needs at least one task"));
        }
        let mut task_names: HashMap<&str, usize> = HashMap::new();
        // Port names and host ports are shared by all tasks of the job: they
        // run together on one node and services refer to ports by name.
        let mut port_names: HashMap<&str, String> = HashMap::new();
        let mut host_ports: HashMap<u16, String> = HashMap::new();

        for (i, task) in self.tasks.iter().enumerate() {
            let at = format!("tasks[{i}]");
            if task.name.trim().is_empty() {
                return Err(SpecError::new(format!("{at}.name"), "must not be empty"));
            }
            if let Some(first) = task_names.insert(&task.name, i) {
                return Err(SpecError::new(
                    format!("{at}.name"),
                    format!("duplicate task name {:?} (also tasks[{first}])", task.name),
                ));
            }
            validate_task(&at, task)?;

            for (j, port) in task.ports.iter().enumerate() {
                let at = format!("{at}.ports[{j}]");
                if let Some(first) = port_names.insert(&port.name, at.clone()) {
                    return Err(SpecError::new(
                        format!("{at}.name"),
                        format!("duplicate port name {:?} (also {first})", port.name),
                    ));
                }
                if let Some(host_port) = port.host_port {
                    if let Some(first) = host_ports.insert(host_port, at.clone()) {
                        return Err(SpecError::new(
                            format!("{at}.host_port"),
                            format!("host port {host_port} is also used by {first}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_update(&self) -> Result<(), SpecError> {
        let Some(update) = &self.update else {
            return Ok(());
        };
        if update.max_parallel == 0 {
            return Err(SpecError::new("update.max_parallel", "must be at least 1"));
        }
        if update.healthy_deadline <= update.min_healthy {
            return Err(SpecError::new(
                "update.healthy_deadline",
                format!(
                    "{} must be longer than min_healthy ({})",
                    update.healthy_deadline, update.min_healthy
                ),
            ));
        }
        if update.canary > MAX_REPLICAS {
            return Err(SpecError::new(
                "update.canary",
                format!("{} is more than {MAX_REPLICAS}", update.canary),
            ));
        }
        if update.auto_promote && update.canary == 0 {
            return Err(SpecError::new(
                "update.auto_promote",
                "promotes canaries: set update.canary too",
            ));
        }
        Ok(())
    }
}

/// The longest `shutdown_delay` a task may ask for.
pub const MAX_SHUTDOWN_DELAY: std::time::Duration = std::time::Duration::from_secs(600);

/// The checks that concern one task alone (`at` is its path, `tasks[i]`).
fn validate_task(at: &str, task: &TaskSpec) -> Result<(), SpecError> {
    if let Some(delay) = task.shutdown_delay {
        if delay.as_duration() > MAX_SHUTDOWN_DELAY {
            return Err(SpecError::new(
                format!("{at}.shutdown_delay"),
                format!("{delay} is longer than 10m"),
            ));
        }
    }
    if let Some(driver) = &task.driver {
        if !["docker", "process"].contains(&driver.as_str()) {
            return Err(SpecError::new(
                format!("{at}.driver"),
                format!("`{driver}` is not a driver; use `docker` or `process`"),
            ));
        }
    }
    if task.image.trim().is_empty() {
        return Err(SpecError::new(format!("{at}.image"), "must not be empty"));
    }
    if task.resources.cpu_millis == 0 {
        return Err(SpecError::new(
            format!("{at}.resources.cpu_millis"),
            "must be greater than 0",
        ));
    }
    if task.resources.memory_mb == 0 {
        return Err(SpecError::new(
            format!("{at}.resources.memory_mb"),
            "must be greater than 0",
        ));
    }
    for key in task.env.keys() {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(SpecError::new(
                format!("{at}.env"),
                format!("invalid variable name {key:?}"),
            ));
        }
    }
    for (j, port) in task.ports.iter().enumerate() {
        let at = format!("{at}.ports[{j}]");
        if port.name.trim().is_empty() {
            return Err(SpecError::new(format!("{at}.name"), "must not be empty"));
        }
        if port.container_port == 0 {
            return Err(SpecError::new(
                format!("{at}.container_port"),
                "must be 1 to 65535",
            ));
        }
        if port.host_port == Some(0) {
            return Err(SpecError::new(
                format!("{at}.host_port"),
                "must be 1 to 65535 (leave it out for a dynamic port)",
            ));
        }
        if let Some(service) = &port.service {
            validate_service_name(service)
                .map_err(|message| SpecError::new(format!("{at}.service"), message))?;
        }
        for (k, tag) in port.tags.iter().enumerate() {
            validate_tag(tag)
                .map_err(|message| SpecError::new(format!("{at}.tags[{k}]"), message))?;
        }
    }
    if let Some(health) = &task.health {
        validate_health(&format!("{at}.health"), health, task)?;
    }
    Ok(())
}

/// The longest service name: one DNS label.
pub const MAX_SERVICE_NAME_LEN: usize = 63;
/// The longest service tag.
pub const MAX_TAG_LEN: usize = 128;

/// A service name is one DNS label (RFC 1123): 1 to 63 lowercase letters, digits and
/// `-`, starting and ending with a letter or digit, so it can be used in DNS and URLs.
pub fn validate_service_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_SERVICE_NAME_LEN {
        return Err(format!(
            "{name:?} is {} characters long; a service name is at most {MAX_SERVICE_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{name:?} has the character {c:?}; use lowercase letters, digits and '-' (a DNS label)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("is longer than {MAX_TAG_LEN} characters"));
    }
    if tag.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{tag:?} must not contain spaces or control characters"
        ));
    }
    Ok(())
}

fn validate_health(at: &str, health: &HealthCheck, task: &TaskSpec) -> Result<(), SpecError> {
    if health.interval.is_zero() {
        return Err(SpecError::new(
            format!("{at}.interval"),
            "must be greater than 0",
        ));
    }
    if health.timeout.is_zero() {
        return Err(SpecError::new(
            format!("{at}.timeout"),
            "must be greater than 0",
        ));
    }
    match health.kind {
        HealthCheckKind::Http | HealthCheckKind::Tcp => {
            let Some(port) = &health.port else {
                return Err(SpecError::new(
                    format!("{at}.port"),
                    "an http or tcp check needs the name of one of the task's ports",
                ));
            };
            if !task.ports.iter().any(|p| &p.name == port) {
                return Err(SpecError::new(
                    format!("{at}.port"),
                    format!("the task has no port named {port:?}"),
                ));
            }
            if let Some(path) = &health.path {
                if !path.starts_with('/') {
                    return Err(SpecError::new(
                        format!("{at}.path"),
                        format!("{path:?} must start with '/'"),
                    ));
                }
            }
        }
        HealthCheckKind::Exec => {
            if health.command.is_empty() {
                return Err(SpecError::new(
                    format!("{at}.command"),
                    "an exec check needs a command",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::fixtures::EXAMPLE_JSON;
    use crate::job::{
        parse_job_spec, Constraint, ConstraintOperator, GDuration, PortSpec, UpdateStrategy,
    };

    fn example() -> JobSpec {
        parse_job_spec(EXAMPLE_JSON.as_bytes(), None).unwrap()
    }

    /// Applies `change` to the example job and returns the validation error.
    fn invalid(change: impl FnOnce(&mut JobSpec)) -> SpecError {
        let mut spec = example();
        change(&mut spec);
        spec.validate().unwrap_err()
    }

    fn port(name: &str, container_port: u16, host_port: Option<u16>) -> PortSpec {
        PortSpec {
            name: name.into(),
            container_port,
            host_port,
            service: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn example_is_valid() {
        example().validate().unwrap();
    }

    #[test]
    fn id_rules() {
        assert_eq!(
            invalid(|s| s.id.clear()).to_string(),
            "id: must not be empty"
        );
        assert_eq!(invalid(|s| s.id = "a".repeat(129)).field, "id");
        let err = invalid(|s| s.id = "web/1".into());
        assert_eq!(
            err.to_string(),
            "id: invalid character '/'; use only letters, digits, '_', '.' and '-'"
        );
        assert_eq!(invalid(|s| s.id = "..".into()).field, "id");
        validate_job_id(&"a".repeat(128)).unwrap();
        validate_job_id("web-1.v2_x").unwrap();
    }

    #[test]
    fn replicas_and_priority() {
        assert_eq!(invalid(|s| s.replicas = 10_001).field, "replicas");
        assert_eq!(invalid(|s| s.priority = 0).field, "priority");
        assert_eq!(invalid(|s| s.priority = 101).field, "priority");
        let mut spec = example();
        spec.replicas = 0;
        spec.validate().unwrap();
        spec.kind = JobType::Global;
        spec.replicas = u32::MAX; // ignored for global jobs
        spec.validate().unwrap();
    }

    #[test]
    fn tasks_are_required_and_uniquely_named() {
        assert_eq!(invalid(|s| s.tasks.clear()).field, "tasks");
        let err = invalid(|s| {
            let mut second = s.tasks[0].clone();
            second.ports.clear();
            second.health = None;
            s.tasks.push(second);
        });
        assert_eq!(err.field, "tasks[1].name");
        assert_eq!(err.message, "duplicate task name \"main\" (also tasks[0])");
        assert_eq!(
            invalid(|s| s.tasks[0].name = " ".into()).field,
            "tasks[0].name"
        );
    }

    #[test]
    fn image_and_resources() {
        assert_eq!(
            invalid(|s| s.tasks[0].image.clear()).field,
            "tasks[0].image"
        );
        let err = invalid(|s| s.tasks[0].resources.cpu_millis = 0);
        assert_eq!(
            err.to_string(),
            "tasks[0].resources.cpu_millis: must be greater than 0"
        );
        let err = invalid(|s| s.tasks[0].resources.memory_mb = 0);
        assert_eq!(err.field, "tasks[0].resources.memory_mb");
        let err = invalid(|s| {
            s.tasks[0].env.insert("A=B".into(), "c".into());
        });
        assert_eq!(err.field, "tasks[0].env");
    }

    #[test]
    fn ports() {
        let err = invalid(|s| s.tasks[0].ports[0].container_port = 0);
        assert_eq!(err.field, "tasks[0].ports[0].container_port");
        let err = invalid(|s| s.tasks[0].ports.push(port("http", 9090, None)));
        assert_eq!(err.field, "tasks[0].ports[1].name");
        assert!(err.message.contains("also tasks[0].ports[0]"), "{err}");
        let err = invalid(|s| s.tasks[0].ports[0].host_port = Some(0));
        assert_eq!(err.field, "tasks[0].ports[0].host_port");

        // Port names and host ports are unique across the job's tasks.
        let err = invalid(|s| {
            let mut sidecar = s.tasks[0].clone();
            sidecar.name = "sidecar".into();
            sidecar.health = None;
            s.tasks.push(sidecar);
        });
        assert_eq!(err.field, "tasks[1].ports[0].name");
        let err = invalid(|s| {
            s.tasks[0].ports[0].host_port = Some(80);
            s.tasks[0].ports.push(port("admin", 9090, Some(80)));
        });
        assert_eq!(
            err.to_string(),
            "tasks[0].ports[1].host_port: host port 80 is also used by tasks[0].ports[0]"
        );
    }

    #[test]
    fn service_names_are_dns_labels_and_tags_are_words() {
        let mut spec = example();
        spec.tasks[0].ports[0].service = Some("web-frontend-2".into());
        spec.tasks[0].ports[0].tags = vec!["primary".into(), "v=2".into()];
        spec.validate().unwrap();

        for bad in ["", "Web", "web_front", "-web", "web-", "web.front"] {
            let err = invalid(|s| s.tasks[0].ports[0].service = Some(bad.into()));
            assert_eq!(err.field, "tasks[0].ports[0].service", "{bad:?}: {err}");
        }
        let err = invalid(|s| s.tasks[0].ports[0].service = Some("a".repeat(64)));
        assert_eq!(err.field, "tasks[0].ports[0].service");
        validate_service_name(&"a".repeat(63)).unwrap();

        let err = invalid(|s| s.tasks[0].ports[0].tags = vec!["ok".into(), "two words".into()]);
        assert_eq!(err.field, "tasks[0].ports[0].tags[1]");
        let err = invalid(|s| s.tasks[0].ports[0].tags = vec![String::new()]);
        assert_eq!(err.field, "tasks[0].ports[0].tags[0]");
    }

    #[test]
    fn health_checks() {
        let err = invalid(|s| s.tasks[0].health.as_mut().unwrap().port = Some("admin".into()));
        assert_eq!(
            err.to_string(),
            "tasks[0].health.port: the task has no port named \"admin\""
        );
        let err = invalid(|s| s.tasks[0].health.as_mut().unwrap().port = None);
        assert_eq!(err.field, "tasks[0].health.port");
        let err = invalid(|s| s.tasks[0].health.as_mut().unwrap().path = Some("health".into()));
        assert_eq!(err.field, "tasks[0].health.path");
        let err = invalid(|s| s.tasks[0].health.as_mut().unwrap().interval = GDuration::ZERO);
        assert_eq!(err.field, "tasks[0].health.interval");

        let err = invalid(|s| s.tasks[0].health.as_mut().unwrap().kind = HealthCheckKind::Exec);
        assert_eq!(err.field, "tasks[0].health.command");
        let mut spec = example();
        let health = spec.tasks[0].health.as_mut().unwrap();
        health.kind = HealthCheckKind::Exec;
        health.command = vec!["true".into()];
        spec.validate().unwrap();
    }

    #[test]
    fn constraints() {
        let regex = |value: &str| Constraint {
            attribute: "node.name".into(),
            operator: ConstraintOperator::Regex,
            value: value.into(),
        };
        let err = invalid(|s| s.constraints.push(regex("web-(")));
        assert_eq!(err.field, "constraints[1].value");
        assert!(err.message.starts_with("invalid regex: "), "{err}");
        let mut spec = example();
        spec.constraints.push(regex("^web-[0-9]+$"));
        spec.validate().unwrap();

        assert_eq!(
            invalid(|s| s.constraints[0].value.clear()).field,
            "constraints[0].value"
        );
        assert_eq!(
            invalid(|s| s.constraints[0].attribute.clear()).field,
            "constraints[0].attribute"
        );
    }

    #[test]
    fn update_strategy() {
        fn update(s: &mut JobSpec) -> &mut UpdateStrategy {
            s.update.as_mut().unwrap()
        }
        assert_eq!(
            invalid(|s| update(s).max_parallel = 0).field,
            "update.max_parallel"
        );
        let err = invalid(|s| update(s).healthy_deadline = GDuration::from_secs(5));
        assert_eq!(
            err.to_string(),
            "update.healthy_deadline: 5s must be longer than min_healthy (5s)"
        );
    }
}
