//! Harness for tests of the operator commands: runs the real `gantry` binary against a
//! [`Cluster`] the way an operator would, and hands back its exit code and output.
//!
//! Every run is bounded in time, gets `NO_COLOR=1` and a quiet log filter, and never
//! sees `GANTRY_ADDR`/`GANTRY_TOKEN` from the test's own environment: the address and
//! token are always the ones the test chose. [`GantryCli::json`] adds `--json`, requires
//! exit 0 and parses stdout, so tests look at the API's JSON, not at tables.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::{Cluster, GANTRY};

/// Bound on one command (the longest waits in the tests use `--deadline` below it).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What one run of the binary did.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: Vec<String>,
    /// `None` when it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "`gantry {}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Panics (with the output) unless it exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        self
    }

    /// Panics unless it exited with `code`.
    pub fn exit(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        self
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// stdout as JSON lines (one document per line).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e}): {}", self.describe()))
            })
            .collect()
    }

    /// Panics unless stderr contains `text`.
    pub fn stderr_has(self, text: &str) -> Run {
        assert!(
            self.stderr.contains(text),
            "expected stderr to contain {text:?}: {}",
            self.describe()
        );
        self
    }

    /// Panics unless stdout contains `text`.
    pub fn stdout_has(self, text: &str) -> Run {
        assert!(
            self.stdout.contains(text),
            "expected stdout to contain {text:?}: {}",
            self.describe()
        );
        self
    }
}

/// The CLI pointed at some managers, with or without a token.
#[derive(Debug, Clone)]
pub struct GantryCli {
    pub address: String,
    pub token: Option<String>,
    /// Extra environment for every run.
    pub env: Vec<(String, String)>,
}

impl GantryCli {
    /// Every manager of the cluster, comma-separated (the CLI fails over between them).
    pub fn new(cluster: &Cluster) -> GantryCli {
        GantryCli::at(&cluster.addrs().join(","))
    }

    /// `address` empty: no `--address` flag (the test sets `GANTRY_ADDR` in `env`, or
    /// means the default).
    pub fn at(address: &str) -> GantryCli {
        GantryCli {
            address: address.to_string(),
            token: None,
            env: Vec::new(),
        }
    }

    pub fn with_token(&self, token: &str) -> GantryCli {
        GantryCli {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// `args` with `--address` and `--token` added.
    fn full_args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if !self.address.is_empty() {
            all.push("--address".into());
            all.push(self.address.clone());
        }
        if let Some(token) = &self.token {
            all.push("--token".into());
            all.push(token.clone());
        }
        all
    }

    fn command(&self, all: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(GANTRY);
        cmd.args(all)
            .env_remove("GANTRY_ADDR")
            .env_remove("GANTRY_TOKEN")
            .env_remove("GANTRY_CONFIG")
            .env("NO_COLOR", "1")
            .env("GANTRY_LOG", "warn")
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts a command that keeps running (`events --follow`, `alloc logs -f`), its
    /// stdout read line by line; killed when dropped.
    pub fn spawn(&self, args: &[&str]) -> Streaming {
        let all = self.full_args(args);
        let mut child = self
            .command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GANTRY} {}: {e}", all.join(" ")));
        let stdout = child.stdout.take().expect("piped stdout");
        eprintln!("[cli] gantry {} (streaming)", args.join(" "));
        Streaming {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            seen: Vec::new(),
            args: all,
        }
    }

    /// Runs `gantry ARGS --address ... [--token ...]` with `stdin` fed in.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let all = self.full_args(args);
        let mut cmd = self.command(&all);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GANTRY} {}: {e}", all.join(" ")));
        if let Some(bytes) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(bytes).await.expect("write stdin");
            drop(pipe);
        }
        let output = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("`gantry {}` ran over {RUN_TIMEOUT:?}", all.join(" ")))
            .expect("wait for gantry");
        let run = Run {
            args: all,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        eprintln!(
            "[cli] gantry {} -> {:?}",
            run.args[..args.len()].join(" "),
            run.code
        );
        run
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// `gantry ARGS --json`: requires exit 0 and returns stdout parsed.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        self.run(&args).await.ok().json()
    }
}

/// A command still running, its stdout read as it comes.
pub struct Streaming {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Every line read so far.
    pub seen: Vec<String>,
    args: Vec<String>,
}

impl Streaming {
    /// Reads lines until one satisfies `wanted` (returned), panicking after `timeout`
    /// or when the output ends first.
    pub async fn line_where(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            match next {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Ok(Ok(None)) => panic!(
                    "`gantry {}` ended before the line waited for; it printed: {:?}",
                    self.args.join(" "),
                    self.seen
                ),
                Ok(Err(e)) => panic!("reading `gantry {}`: {e}", self.args.join(" ")),
                Err(_) => panic!(
                    "`gantry {}` printed no such line within {timeout:?}; it printed: {:?}",
                    self.args.join(" "),
                    self.seen
                ),
            }
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
