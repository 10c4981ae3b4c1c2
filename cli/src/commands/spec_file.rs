//! Reading a job spec for `job run` and `job plan`: a file or `-` (stdin), JSON or
//! YAML by the file's extension or, failing that, by its first character.

use std::io::Read as _;

use gantry_api::{parse_job_spec, JobSpec};

use super::failure::{fail, Failure};

/// A spec as read: the bytes as they are (sent as they are, so the managers report
/// problems against what the operator wrote), their content type, and the parsed spec.
pub struct SpecFile {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub spec: JobSpec,
}

pub fn read(path: &str) -> Result<SpecFile, Failure> {
    let bytes = if path == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
            return fail(format!("cannot read the job spec from stdin: {e}"));
        }
        bytes
    } else {
        match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => return fail(format!("cannot read {path}: {e}")),
        }
    };
    let content_type = content_type(path, &bytes);
    let spec = match parse_job_spec(&bytes, Some(content_type)) {
        Ok(spec) => spec,
        Err(e) => {
            let name = if path == "-" { "stdin" } else { path };
            let format = if content_type == JSON { "JSON" } else { "YAML" };
            return fail(format!("{name} is not a valid job spec ({format}): {e}"));
        }
    };
    Ok(SpecFile {
        bytes,
        content_type,
        spec,
    })
}

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";

/// By extension (`.json`, `.yaml`, `.yml`); otherwise JSON when the first character
/// that is not blank is `{`, YAML else.
fn content_type(path: &str, bytes: &[u8]) -> &'static str {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return JSON;
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return YAML;
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => JSON,
        _ => YAML,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension_then_content() {
        assert_eq!(content_type("web.json", b"id: web"), JSON);
        assert_eq!(content_type("web.YML", b"{}"), YAML);
        assert_eq!(content_type("-", b"  \n{\"id\":1}"), JSON);
        assert_eq!(content_type("-", b"id: web"), YAML);
        assert_eq!(content_type("spec", b""), YAML);
    }
}
