//! Turning a request body into a `JobSpec`, with errors that name the field.
//!
//! serde's own messages say *what* is wrong ("invalid value: integer `-64`,
//! expected u64") but not *where*; `serde_path_to_error` adds the path
//! (`tasks[0].resources.memory_mb`). Syntax errors have no field, so they
//! keep the line and column instead. JSON and YAML name the same field path
//! for the same mistake, so the API's answer does not depend on the format
//! (serde_yaml words a few messages differently).

use serde_json::error::Category;

use super::{JobSpec, SpecError};

/// Parses a job spec: YAML when `content_type` is `application/yaml`,
/// `application/x-yaml` or `text/yaml` (parameters such as `; charset=utf-8`
/// are ignored), JSON otherwise. Checks the shape only; call
/// [`JobSpec::validate`] for the meaning.
pub fn parse_job_spec(body: &[u8], content_type: Option<&str>) -> Result<JobSpec, SpecError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SpecError::new(
            "",
            "empty request body; expected a job spec",
        ));
    }
    if is_yaml(content_type) {
        parse_yaml(body)
    } else {
        parse_json(body)
    }
}

fn is_yaml(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type.split(';').next().unwrap_or("").trim();
    crate::headers::YAML_CONTENT_TYPES
        .iter()
        .any(|yaml| mime.eq_ignore_ascii_case(yaml))
}

fn parse_json(body: &[u8]) -> Result<JobSpec, SpecError> {
    // serde would also take a struct as an array of its fields in order;
    // a spec is always an object.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(SpecError::new("", "a job spec must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let spec: JobSpec = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            Category::Data => {
                let message = inner.to_string();
                let suffix = format!(" at line {} column {}", inner.line(), inner.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                field_error(&path, message)
            }
            Category::Syntax | Category::Eof | Category::Io => {
                let mut err = malformed("JSON", &inner);
                if first != Some(&b'{') {
                    err.message += " (YAML needs Content-Type: application/yaml)";
                }
                err
            }
        }
    })?;
    // Anything after the spec ("{...} {...}", a stray brace) is malformed too.
    de.end().map_err(|e| malformed("JSON", &e))?;
    Ok(spec)
}

fn parse_yaml(body: &[u8]) -> Result<JobSpec, SpecError> {
    // serde_yaml does not classify its errors, so find syntax errors first
    // with an untyped parse; whatever fails after that is about the data.
    let value =
        serde_yaml::from_slice::<serde_yaml::Value>(body).map_err(|e| malformed("YAML", &e))?;
    if !value.is_mapping() {
        return Err(SpecError::new("", "a job spec must be a YAML mapping"));
    }

    let de = serde_yaml::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde_yaml appends the position and prefixes its own path; drop
        // both so the message reads like JSON's.
        let message = inner.to_string();
        let suffix = match inner.location() {
            Some(at) if (at.line(), at.column()) != (1, 1) => {
                format!(" at line {} column {}", at.line(), at.column())
            }
            Some(at) => format!(" at position {}", at.index()),
            None => String::new(),
        };
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        // Its path is ours or, for an unknown field, our path's parent.
        let message = match message.split_once(": ") {
            Some((its_path, rest)) if !its_path.is_empty() && path.starts_with(its_path) => rest,
            _ => message,
        };
        field_error(&path, message)
    })
}

fn malformed(format: &str, err: &dyn std::fmt::Display) -> SpecError {
    SpecError::new("", format!("malformed {format}: {err}"))
}

/// An error at `path` (serde_path_to_error's form, `.` for the root). A
/// missing field is reported at its parent, so the field the message names
/// is appended to point at the key itself (unknown fields already end the
/// path).
fn field_error(path: &str, message: &str) -> SpecError {
    let path = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path.to_string(),
        Some(name) if path.is_empty() => name.to_string(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_string(),
    };
    SpecError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::fixtures::{EXAMPLE_JSON, EXAMPLE_YAML};
    use crate::job::{ConstraintOperator, GDuration, HealthCheckKind, JobType};

    const YAML: Option<&str> = Some("application/yaml");

    fn json_err(body: &str) -> SpecError {
        parse_job_spec(body.as_bytes(), Some("application/json")).unwrap_err()
    }

    fn yaml_err(body: &str) -> SpecError {
        parse_job_spec(body.as_bytes(), YAML).unwrap_err()
    }

    /// The example job with one substring replaced.
    fn example_with(from: &str, to: &str) -> String {
        assert!(EXAMPLE_JSON.contains(from), "fixture lacks {from}");
        EXAMPLE_JSON.replacen(from, to, 1)
    }

    fn yaml_example_with(from: &str, to: &str) -> String {
        assert!(EXAMPLE_YAML.contains(from), "fixture lacks {from}");
        EXAMPLE_YAML.replacen(from, to, 1)
    }

    #[test]
    fn example_json_parses() {
        let spec = parse_job_spec(EXAMPLE_JSON.as_bytes(), None).unwrap();
        assert_eq!(spec.id, "web");
        assert_eq!(spec.kind, JobType::Service);
        assert_eq!(spec.replicas, 3);
        assert_eq!(spec.constraints[0].operator, ConstraintOperator::Equal);
        let task = &spec.tasks[0];
        assert_eq!(task.command, ["httpd", "-f", "-p", "8080"]);
        assert_eq!(task.env["GREETING"], "hi");
        assert_eq!(task.resources.memory_mb, 64);
        assert_eq!(task.ports[0].container_port, 8080);
        let health = task.health.as_ref().unwrap();
        assert_eq!(health.kind, HealthCheckKind::Http);
        assert_eq!(health.interval, GDuration::from_secs(2));
        let update = spec.update.unwrap();
        assert_eq!(update.healthy_deadline, GDuration::from_secs(120));
        assert!(update.auto_revert);
        spec.validate().unwrap();
    }

    #[test]
    fn example_yaml_equals_json() {
        let json = parse_job_spec(EXAMPLE_JSON.as_bytes(), None).unwrap();
        let yaml = parse_job_spec(EXAMPLE_YAML.as_bytes(), YAML).unwrap();
        assert_eq!(json, yaml);
    }

    #[test]
    fn example_round_trips() {
        let spec = parse_job_spec(EXAMPLE_JSON.as_bytes(), None).unwrap();
        let json = serde_json::to_vec(&spec).unwrap();
        assert_eq!(parse_job_spec(&json, None).unwrap(), spec);
        let yaml = serde_yaml::to_string(&spec).unwrap();
        assert_eq!(parse_job_spec(yaml.as_bytes(), YAML).unwrap(), spec);
    }

    #[test]
    fn defaults_fill_in() {
        let body = r#"{"id": "x", "tasks": [{"name": "a", "image": "i",
                       "resources": {"cpu_millis": 1, "memory_mb": 1}}]}"#;
        let spec = parse_job_spec(body.as_bytes(), None).unwrap();
        assert_eq!(spec.kind, JobType::Service);
        assert_eq!((spec.replicas, spec.priority), (1, 50));
        assert!(spec.constraints.is_empty() && spec.restart.is_none() && spec.update.is_none());
        assert!(spec.tasks[0].command.is_empty() && spec.tasks[0].ports.is_empty());
        spec.validate().unwrap();

        let body = "id: x\nrestart: {}\nupdate: {max_parallel: 2}\ntasks: []";
        let spec = parse_job_spec(body.as_bytes(), YAML).unwrap();
        assert_eq!(spec.restart.unwrap(), Default::default());
        assert_eq!(spec.update.unwrap().max_parallel, 2);
        assert_eq!(spec.update.unwrap().min_healthy, GDuration::from_secs(10));
    }

    #[test]
    fn content_type_selects_the_format() {
        for ct in [
            "application/yaml",
            "application/x-yaml",
            "text/yaml; charset=utf-8",
        ] {
            parse_job_spec(EXAMPLE_YAML.as_bytes(), Some(ct)).unwrap();
        }
        for ct in [None, Some("application/json"), Some("text/plain")] {
            let err = parse_job_spec(EXAMPLE_YAML.as_bytes(), ct).unwrap_err();
            assert!(err.message.starts_with("malformed JSON"), "{err}");
            assert!(err
                .message
                .ends_with("(YAML needs Content-Type: application/yaml)"));
        }
    }

    #[test]
    fn malformed_json_gives_line_and_column() {
        let err = json_err("{\n  \"id\": \"web\",\n  \"tasks\": [\n}");
        assert_eq!(err.field, "");
        assert!(err.message.starts_with("malformed JSON: "), "{err}");
        assert!(err.message.contains("at line 4 column 1"), "{err}");

        let err = json_err(r#"{"id": "web""#);
        assert!(err.message.starts_with("malformed JSON: EOF"), "{err}");

        let err = json_err(&format!("{EXAMPLE_JSON} {{}}"));
        assert!(err.message.contains("trailing characters"), "{err}");
    }

    #[test]
    fn malformed_yaml_says_so() {
        let err = yaml_err("id: web\ntasks: [\n");
        assert_eq!(err.field, "");
        assert!(err.message.starts_with("malformed YAML: "), "{err}");
    }

    #[test]
    fn spec_must_be_an_object() {
        assert_eq!(
            json_err(r#"["web"]"#).message,
            "a job spec must be a JSON object"
        );
        assert_eq!(
            yaml_err("- web").message,
            "a job spec must be a YAML mapping"
        );
    }

    #[test]
    fn empty_body() {
        assert!(json_err(" \n").message.contains("empty request body"));
        assert!(yaml_err("").message.contains("empty request body"));
    }

    #[test]
    fn negative_memory_names_the_field() {
        let expected = "tasks[0].resources.memory_mb: invalid value: integer `-64`, expected u64";
        let err = json_err(&example_with("\"memory_mb\": 64", "\"memory_mb\": -64"));
        assert_eq!(err.field, "tasks[0].resources.memory_mb");
        assert_eq!(err.to_string(), expected);
        // serde_yaml words it "invalid type", but the field is the same.
        let err = yaml_err(&yaml_example_with("memory_mb: 64", "memory_mb: -64"));
        assert_eq!(err.field, "tasks[0].resources.memory_mb");
        assert!(
            err.message.ends_with("integer `-64`, expected u64"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = json_err(&example_with("\"replicas\": 3", "\"replicas\": \"3\""));
        assert_eq!(err.field, "replicas");
        assert!(
            err.message.starts_with("invalid type: string \"3\""),
            "{err}"
        );
        let err = json_err(&example_with("\"priority\": 50", "\"priority\": 500"));
        assert_eq!(
            err.to_string(),
            "priority: invalid value: integer `500`, expected u8"
        );
    }

    #[test]
    fn unknown_top_level_field_is_named() {
        let err = json_err(&example_with("\"replicas\": 3", "\"replica\": 3"));
        assert_eq!(err.field, "replica");
        assert!(
            err.message
                .starts_with("unknown field `replica`, expected one of"),
            "{err}"
        );
        let err = yaml_err(&yaml_example_with("replicas: 3", "replica: 3"));
        assert_eq!(err.field, "replica");
        assert!(err.message.starts_with("unknown field `replica`"), "{err}");
    }

    #[test]
    fn unknown_nested_field_is_named() {
        let err = json_err(&example_with(
            "\"memory_mb\": 64",
            "\"memory_mb\": 64, \"gpu\": 1",
        ));
        assert_eq!(err.field, "tasks[0].resources.gpu");
        assert!(err.message.starts_with("unknown field `gpu`"), "{err}");

        let err = json_err(&example_with(
            "\"auto_revert\": true",
            "\"auto_rollback\": true",
        ));
        assert_eq!(err.field, "update.auto_rollback");

        let err = yaml_err(&yaml_example_with("      path: /", "      paht: /"));
        assert_eq!(err.field, "tasks[0].health.paht");
        assert!(err.message.starts_with("unknown field `paht`"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let err = json_err(r#"{"id": "web"}"#);
        assert_eq!(err.to_string(), "tasks: missing field `tasks`");
        let err = yaml_err("id: web\ntasks:\n  - name: main\n    image: x\n");
        assert_eq!(
            err.to_string(),
            "tasks[0].resources: missing field `resources`"
        );
    }

    #[test]
    fn duplicate_field_is_named() {
        let err = json_err(r#"{"id": "a", "id": "b", "tasks": []}"#);
        assert_eq!(err.to_string(), "id: duplicate field `id`");
    }

    #[test]
    fn bad_duration_names_the_field() {
        let err = json_err(&example_with(
            "\"interval\": \"2s\"",
            "\"interval\": \"2 parsecs\"",
        ));
        assert_eq!(err.field, "tasks[0].health.interval");
        assert!(
            err.message.starts_with("invalid duration \"2 parsecs\""),
            "{err}"
        );
        let err = yaml_err(&yaml_example_with("delay: 1s", "delay: soon"));
        assert_eq!(err.field, "restart.delay");
        assert!(
            err.message.starts_with("invalid duration \"soon\""),
            "{err}"
        );
        let err = json_err(&example_with("\"delay\": \"1s\"", "\"delay\": 1"));
        assert_eq!(err.field, "restart.delay");
        assert!(err.message.contains("expected a duration string"), "{err}");
    }

    #[test]
    fn unknown_type_names_the_field() {
        let err = json_err(&example_with(
            "\"type\": \"service\"",
            "\"type\": \"daemon\"",
        ));
        assert_eq!(
            err.to_string(),
            "type: unknown variant `daemon`, expected one of `service`, `global`, `batch`"
        );
        let err = yaml_err(&yaml_example_with("type: service", "type: Service"));
        assert_eq!(err.field, "type");

        let err = json_err(&example_with("\"operator\": \"=\"", "\"operator\": \"==\""));
        assert_eq!(err.field, "constraints[0].operator");
        assert!(err.message.starts_with("unknown variant `==`"), "{err}");
    }

    #[test]
    fn is_set_needs_no_value() {
        let body = example_with(
            r#""operator": "=", "value": "a""#,
            r#""operator": "is_set""#,
        );
        let spec = parse_job_spec(body.as_bytes(), None).unwrap();
        assert_eq!(spec.constraints[0].operator, ConstraintOperator::IsSet);
        assert_eq!(spec.constraints[0].value, "");
        spec.validate().unwrap();
    }
}
