//! `--config FILE`: settings from a YAML file whose keys are the flag names
//! (`data-dir: /var/lib/gantry`, or `data_dir:`).
//!
//! Each key becomes the `GANTRY_*` environment variable of the same name unless that
//! variable is already set, and clap reads flags from those variables. So a flag on the
//! command line beats the environment, which beats the file.

use anyhow::Context;
use std::path::Path;

/// Finds `--config FILE` or `--config=FILE` (or `GANTRY_CONFIG`) in the arguments.
pub fn path_from_args(args: &[String]) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().cloned();
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.to_string());
        }
    }
    std::env::var("GANTRY_CONFIG").ok()
}

/// The `GANTRY_*` variables a config file sets, in file order.
pub fn env_from_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    env_from_yaml(&text).with_context(|| format!("config file {}", path.display()))
}

fn env_from_yaml(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let document: serde_yaml::Value = serde_yaml::from_str(text)?;
    let mapping = match document {
        serde_yaml::Value::Mapping(mapping) => mapping,
        serde_yaml::Value::Null => return Ok(Vec::new()),
        _ => anyhow::bail!("expected a mapping of setting names to values"),
    };
    let mut vars = Vec::new();
    for (key, value) in mapping {
        let key = key
            .as_str()
            .context("setting names must be strings")?
            .to_string();
        let value = match value {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    serde_yaml::Value::String(s) => Ok(s.clone()),
                    serde_yaml::Value::Number(n) => Ok(n.to_string()),
                    _ => anyhow::bail!("`{key}`: list items must be strings or numbers"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(","),
            _ => anyhow::bail!("`{key}`: expected a string, number, boolean or list"),
        };
        let name = format!("GANTRY_{}", key.replace('-', "_").to_ascii_uppercase());
        vars.push((name, value));
    }
    Ok(vars)
}

/// Applies the file's settings to this process's environment, without overriding
/// variables that are already set. Called before any thread is started.
pub fn apply(path: &Path) -> anyhow::Result<()> {
    for (name, value) in env_from_file(path)? {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called at the start of `main`, before the runtime or any other thread
            // exists, so nothing reads the environment concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_gantry_variables() {
        let vars = env_from_yaml(
            "id: 3\ndata-dir: /var/lib/gantry\nsnapshot_every: 500\ninitial-cluster: [\"1=a:1\", \"2=b:2\"]\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            vec![
                ("GANTRY_ID".into(), "3".into()),
                ("GANTRY_DATA_DIR".into(), "/var/lib/gantry".into()),
                ("GANTRY_SNAPSHOT_EVERY".into(), "500".into()),
                ("GANTRY_INITIAL_CLUSTER".into(), "1=a:1,2=b:2".into()),
            ]
        );
    }

    #[test]
    fn rejects_nested_values() {
        assert!(env_from_yaml("id: {a: 1}\n").is_err());
        assert!(env_from_yaml("- 1\n").is_err());
    }

    #[test]
    fn finds_the_config_flag() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            path_from_args(&args(&["gantry", "server", "--config", "f.yaml"])),
            Some("f.yaml".into())
        );
        assert_eq!(
            path_from_args(&args(&["gantry", "--config=g.yaml"])),
            Some("g.yaml".into())
        );
    }
}
