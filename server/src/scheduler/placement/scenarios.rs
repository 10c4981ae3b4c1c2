//! Golden scenarios: small clusters and asks written as text, with the placements that
//! must come out, reviewed as text (in the style of toydb's goldenscript tests).
//!
//! Each file in `testdata/` is a script run against one fresh `ClusterView`. Blocks of
//! commands end with `---`, followed by the expected output up to a blank line. Lines
//! starting with `#` are comments. `UPDATE_GOLDEN=1 cargo test ...` rewrites the expected
//! output from what happened (then review the diff).
//!
//! ```text
//! algorithm spread                                    # bin_pack (the default) or spread
//! node n1 cpu=4000 mem=8192 zone=a drivers=docker,process ports=20000-20010 [down]
//! hold n1 db-0 job=db cpu=1000 mem=2048 priority=20 ports=5432
//! place web cpu=500 mem=256 [count=3] [priority=70] [ports=80,dyn] [driver=process]
//!       [together] [preempt] [where label.zone = a and node.name regex ^n]
//! explain web cpu=500 mem=256 ...                     # same options as place
//! release n1 web-0
//! usage n1
//! ```
//!
//! Allocations are named `<job>-<n>`, counting per job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use gantry_api::{Constraint, ConstraintOperator, PortRange, Resources};

use super::*;

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scheduler/placement/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for file in files {
        let script = std::fs::read_to_string(&file).unwrap();
        let (rewritten, mismatches) = run_script(&script);
        if update {
            std::fs::write(&file, rewritten).unwrap();
        } else if !mismatches.is_empty() {
            failures.push(format!("{}:\n{}", file.display(), mismatches.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs a script; returns it with the actual outputs in place, and the mismatches.
fn run_script(script: &str) -> (String, Vec<String>) {
    let mut runner = Runner::default();
    let mut out = String::new();
    let mut mismatches = Vec::new();
    let mut lines = script.lines().peekable();
    let mut commands: Vec<&str> = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() != "---" {
            out.push_str(line);
            out.push('\n');
            let command = line.split('#').next().unwrap().trim();
            if !command.is_empty() {
                commands.push(command);
            }
            continue;
        }
        let mut actual = String::new();
        for command in commands.drain(..) {
            runner.run(command, &mut actual);
        }
        let mut expected = String::new();
        while let Some(line) = lines.next_if(|l| !l.trim().is_empty()) {
            expected.push_str(line);
            expected.push('\n');
        }
        if actual != expected {
            mismatches.push(format!("expected:\n{expected}actual:\n{actual}"));
        }
        out.push_str("---\n");
        out.push_str(&actual);
    }
    (out, mismatches)
}

#[derive(Default)]
struct Runner {
    view: ClusterView,
    counters: BTreeMap<String, usize>,
}

impl Runner {
    fn run(&mut self, command: &str, out: &mut String) {
        let (command, clauses) = match command.split_once(" where ") {
            Some((c, w)) => (c, Some(w)),
            None => (command, None),
        };
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap();
        let name = words.next().unwrap_or_default().to_string();
        let mut args = BTreeMap::new();
        let mut flags = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((k, v)) => {
                    args.insert(k.to_string(), v.to_string());
                }
                None => flags.push(word.to_string()),
            }
        }
        let num = |args: &BTreeMap<String, String>, key: &str| -> u64 {
            args.get(key).map_or(0, |v| v.parse().expect(key))
        };
        match verb {
            "algorithm" => self.view.set_algorithm(match name.as_str() {
                "spread" => Algorithm::Spread,
                _ => Algorithm::BinPack,
            }),
            "node" => {
                let ports = args.get("ports").map_or(PortRange::default(), |r| {
                    let (start, end) = r.split_once('-').expect("ports=a-b");
                    PortRange {
                        start: start.parse().unwrap(),
                        end: end.parse().unwrap(),
                    }
                });
                let labels = args
                    .iter()
                    .filter(|(k, _)| !["cpu", "mem", "drivers", "ports"].contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.view.upsert_node(NodeInfo {
                    id: name.clone(),
                    name: name.clone(),
                    address: format!("{name}.local"),
                    capacity: Resources {
                        cpu_millis: num(&args, "cpu"),
                        memory_mb: num(&args, "mem"),
                    },
                    port_range: ports,
                    labels,
                    drivers: args
                        .get("drivers")
                        .map_or("docker", String::as_str)
                        .split(',')
                        .map(String::from)
                        .collect(),
                    schedulable: !flags.iter().any(|f| f == "down"),
                });
            }
            "hold" => {
                let node = name;
                let alloc = flags.first().expect("hold NODE ALLOC").clone();
                let r = Reservation {
                    alloc_id: alloc.clone(),
                    job_id: args.get("job").cloned().unwrap_or_else(|| alloc.clone()),
                    priority: args.get("priority").map_or(50, |p| p.parse().unwrap()),
                    resources: Resources {
                        cpu_millis: num(&args, "cpu"),
                        memory_mb: num(&args, "mem"),
                    },
                    host_ports: args
                        .get("ports")
                        .map(|p| p.split(',').map(|p| p.parse().unwrap()).collect())
                        .unwrap_or_default(),
                };
                if let Err(e) = self.view.reserve(&node, r) {
                    writeln!(out, "hold {alloc}: {e}").unwrap();
                }
            }
            "release" => {
                let alloc = flags.first().expect("release NODE ALLOC");
                if self.view.release(&name, alloc).is_none() {
                    writeln!(out, "release {alloc}: not held on {name}").unwrap();
                }
            }
            "usage" => match self.view.node_usage(&name) {
                Some((used, cap)) => writeln!(
                    out,
                    "{name}: cpu {}/{} mem {}/{} allocations {}",
                    used.cpu_millis,
                    cap.cpu_millis,
                    used.memory_mb,
                    cap.memory_mb,
                    self.view.reservations(&name).unwrap().len()
                )
                .unwrap(),
                None => writeln!(out, "{name}: unknown").unwrap(),
            },
            "place" | "explain" => {
                let ask = ask(&name, &args, &flags, clauses);
                if verb == "explain" {
                    writeln!(out, "{}", self.view.explain(&ask)).unwrap();
                    return;
                }
                for _ in 0..num(&args, "count").max(1) {
                    let n = self.counters.entry(name.clone()).or_default();
                    let alloc = format!("{name}-{n}");
                    *n += 1;
                    let result = if flags.iter().any(|f| f == "preempt") {
                        self.view.place_with_preemption(&ask, &alloc)
                    } else {
                        self.view.place(&ask, &alloc).map(|p| (p, Vec::new()))
                    };
                    match result {
                        Ok((p, evictions)) => {
                            for e in evictions {
                                writeln!(
                                    out,
                                    "evict {} on {}: {}",
                                    e.alloc_id, e.node_id, e.reason
                                )
                                .unwrap();
                            }
                            let ports = if p.host_ports.is_empty() {
                                String::new()
                            } else {
                                format!(" ports={:?}", p.host_ports)
                            };
                            writeln!(out, "{alloc} → {}{ports}  ({})", p.node_id, p.reason)
                                .unwrap();
                        }
                        Err(unplaced) => writeln!(out, "{alloc} unplaced: {unplaced}").unwrap(),
                    }
                }
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

fn ask(job: &str, args: &BTreeMap<String, String>, flags: &[String], clauses: Option<&str>) -> Ask {
    let num = |key: &str| args.get(key).map_or(0, |v| v.parse().expect(key));
    let mut ask = Ask::new(
        job,
        Resources {
            cpu_millis: num("cpu"),
            memory_mb: num("mem"),
        },
    );
    ask.priority = args.get("priority").map_or(50, |p| p.parse().unwrap());
    ask.drivers = vec![args
        .get("driver")
        .map_or("docker", String::as_str)
        .to_string()];
    ask.distinct_nodes = !flags.iter().any(|f| f == "together");
    if let Some(ports) = args.get("ports") {
        for port in ports.split(',') {
            match port {
                "dyn" => ask.dynamic_ports += 1,
                p => ask.static_ports.push(p.parse().unwrap()),
            }
        }
    }
    for clause in clauses.into_iter().flat_map(|c| c.split(" and ")) {
        let mut parts = clause.splitn(3, ' ');
        let attribute = parts.next().unwrap().to_string();
        let operator: ConstraintOperator =
            serde_json::from_value(serde_json::Value::String(parts.next().unwrap().into()))
                .expect("an operator");
        let value = parts.next().unwrap_or_default().to_string();
        ask.constraints.push(
            CompiledConstraint::new(&Constraint {
                attribute,
                operator,
                value,
            })
            .unwrap(),
        );
    }
    ask
}
