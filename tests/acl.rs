//! Auth end to end: three real managers started with `--acl` and a cluster secret.
//!
//! - Tokens: no token and an unknown token get `401` (the message says how to pass
//!   one), bootstrap works once (`409` after), a `read` token on a write and a `write`
//!   token on token administration get `403` and change nothing (read back after), a
//!   `management` token does everything, a token created on one manager works at once
//!   on the others, writes through a follower work, and a revoked token gets `401` on
//!   every manager. No secret is ever written to a manager's data dir.
//! - Peers: every peer route answers `401` to a request without the cluster secret (or
//!   with a wrong one, or with an operator token instead), a manager with the secret
//!   joins without any operator token, and one with a wrong secret cannot.
//! - Agents: `gantry agent --driver process` with a wrong or no join token is refused
//!   (its log says why, it keeps retrying, its node never appears); with the join token
//!   it registers, heartbeats (its allocation's status reaches the managers) and runs
//!   work; after the join token is rotated the old one registers nothing new, while the
//!   agents already registered carry on.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gantry_api::acl::{AclBootstrapResponse, AclToken, AclTokenWithSecret, JoinTokenResponse};
use reqwest::Method;
use serde_json::{json, Value};
use support::agent::AgentProcess;
use support::{free_ports, job, wait_until, Api, Body, Cluster, Options, Resp, GANTRY, SERIAL};

const WAIT: Duration = Duration::from_secs(60);
const CLUSTER_SECRET: &str = "test-cluster-secret-0123456789abcdef";

/// A cluster secret in a file, for `--cluster-secret-file`.
struct SecretFile {
    dir: tempfile::TempDir,
}

impl SecretFile {
    fn new() -> SecretFile {
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-acl-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("secret"), format!("{CLUSTER_SECRET}\n")).unwrap();
        std::fs::write(dir.path().join("wrong"), "another-secret-entirely-0000\n").unwrap();
        SecretFile { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    fn wrong_path(&self) -> PathBuf {
        self.dir.path().join("wrong")
    }

    fn options(&self) -> Options {
        Options {
            extra_args: vec![
                "--acl".into(),
                "--cluster-secret-file".into(),
                self.path().display().to_string(),
            ],
            ..Options::default()
        }
    }
}

async fn call(api: &Api, addr: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    api.request(addr, method.clone(), path, body.map(Body::Json))
        .await
        .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"))
}

fn expect(r: &Resp, status: u16, code: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.describe());
    if let Some(code) = code {
        assert_eq!(r.error_code(), Some(code), "{what}: {}", r.describe());
    }
}

fn decode<T: serde::de::DeserializeOwned>(r: &Resp, what: &str) -> T {
    serde_json::from_value(r.body.clone())
        .unwrap_or_else(|e| panic!("{what}: cannot decode ({e}): {}", r.describe()))
}

async fn bootstrap(cluster: &Cluster, addr: &str) -> AclBootstrapResponse {
    let r = call(
        &cluster.client(),
        addr,
        Method::POST,
        "/v1/acl/bootstrap",
        None,
    )
    .await;
    expect(&r, 201, None, "the first bootstrap");
    decode(&r, "bootstrap")
}

async fn create_token(api: &Api, addr: &str, name: &str, kind: &str) -> AclTokenWithSecret {
    let body = json!({"name": name, "kind": kind});
    let r = call(api, addr, Method::POST, "/v1/acl/tokens", Some(body)).await;
    expect(&r, 201, None, &format!("creating token {name}"));
    decode(&r, "a created token")
}

fn job_ids(r: &Resp) -> BTreeSet<String> {
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("not a job list: {}", r.describe()))
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_allow_what_their_kind_allows_and_nothing_else() {
    let _serial = SERIAL.lock().await;
    let secret = SecretFile::new();
    let cluster = Cluster::start_with(3, secret.options()).await;
    let leader = cluster.leader_id().await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let (l, f) = (cluster.addr(leader), cluster.addr(follower));
    let anon = cluster.client();

    // Public: where the leader is.
    let r = call(&anon, &f, Method::GET, "/v1/status", None).await;
    expect(&r, 200, None, "status without a token");

    // No token, or an unknown one: 401, saying how to pass one. Before bootstrap too.
    let bogus = anon.with_token(Some("gantry-token-not-a-real-one"));
    let routes = [
        (Method::GET, "/v1/jobs", None),
        (Method::POST, "/v1/jobs", Some(job("early"))),
        (Method::GET, "/v1/nodes", None),
        (Method::GET, "/v1/operator/raft", None),
        (Method::GET, "/v1/acl/tokens", None),
        (Method::GET, "/v1/acl/token/self", None),
        (Method::POST, "/v1/acl/join-token/rotate", None),
    ];
    for (method, path, body) in &routes {
        let r = call(&anon, &f, method.clone(), path, body.clone()).await;
        expect(
            &r,
            401,
            Some("unauthorized"),
            &format!("{method} {path} without a token"),
        );
        let message = r.error_message().unwrap();
        assert!(
            message.contains("--token") && message.contains("GANTRY_TOKEN"),
            "the message says how to pass a token: {message}"
        );
        let r = call(&bogus, &l, method.clone(), path, body.clone()).await;
        expect(
            &r,
            401,
            Some("unauthorized"),
            &format!("{method} {path} with a bad token"),
        );
        assert!(
            r.error_message().unwrap().contains("not valid"),
            "{}",
            r.describe()
        );
    }

    // Bootstrap once, through a follower; never again.
    let boot = bootstrap(&cluster, &f).await;
    assert_eq!(
        boot.token.token.kind,
        gantry_api::acl::TokenKind::Management
    );
    assert!(!boot.token.secret.is_empty() && !boot.join_token.is_empty());
    let root = anon.with_token(Some(&boot.token.secret));
    for (api, who) in [
        (&anon, "without a token"),
        (&root, "with the management token"),
    ] {
        let r = call(api, &l, Method::POST, "/v1/acl/bootstrap", None).await;
        expect(
            &r,
            409,
            Some("acl_bootstrapped"),
            &format!("a second bootstrap {who}"),
        );
    }
    for id in cluster.ids() {
        let r = call(
            &root,
            &cluster.addr(id),
            Method::GET,
            "/v1/acl/token/self",
            None,
        )
        .await;
        expect(&r, 200, None, "token/self");
        let me: AclToken = decode(&r, "token/self");
        assert_eq!(me, boot.token.token);
    }

    // Management creates read and write tokens (on the leader and on a follower).
    let reader = create_token(&root, &l, "reader", "read").await;
    let writer = create_token(&root, &f, "writer", "write").await;
    let r = call(
        &root,
        &l,
        Method::POST,
        "/v1/acl/tokens",
        Some(json!({"name": "x", "kind": "admin"})),
    )
    .await;
    expect(&r, 400, Some("bad_request"), "an unknown token kind");
    let read = anon.with_token(Some(&reader.secret));
    let write = anon.with_token(Some(&writer.secret));

    // A new token works at once on every manager.
    for id in cluster.ids() {
        let addr = cluster.addr(id);
        expect(
            &call(&read, &addr, Method::GET, "/v1/jobs", None).await,
            200,
            None,
            "read",
        );
        let r = call(&write, &addr, Method::GET, "/v1/acl/token/self", None).await;
        expect(&r, 200, None, "token/self of the write token");
        assert_eq!(r.body["kind"], "write");
    }

    // A write through a follower with a write token.
    let r = call(&write, &f, Method::POST, "/v1/jobs", Some(job("web"))).await;
    expect(&r, 201, None, "a write through a follower");
    let web_before = call(&read, &l, Method::GET, "/v1/jobs/web", None).await;
    expect(&web_before, 200, None, "reading the job");

    // A read token on writes: 403 naming both kinds, and nothing changes.
    let writes = [
        (Method::POST, "/v1/jobs".to_string(), Some(job("sneaky"))),
        (
            Method::POST,
            "/v1/jobs/web/scale".into(),
            Some(json!({"replicas": 5})),
        ),
        (Method::DELETE, "/v1/jobs/web".into(), None),
        (
            Method::POST,
            "/v1/operator/raft/peers".into(),
            Some(json!({"id": 9, "addr": "127.0.0.1:1"})),
        ),
        (
            Method::DELETE,
            format!("/v1/operator/raft/peers/{follower}"),
            None,
        ),
    ];
    for (method, path, body) in &writes {
        for addr in [&l, &f] {
            let r = call(&read, addr, method.clone(), path, body.clone()).await;
            expect(
                &r,
                403,
                Some("forbidden"),
                &format!("{method} {path} with a read token"),
            );
            let message = r.error_message().unwrap();
            assert!(
                message.contains("`write`") && message.contains("`read`"),
                "the message names the kind needed and the token's: {message}"
            );
        }
    }
    let jobs = call(&read, &f, Method::GET, "/v1/jobs", None).await;
    assert_eq!(job_ids(&jobs), BTreeSet::from(["web".to_string()]));
    let web_after = call(&read, &f, Method::GET, "/v1/jobs/web", None).await;
    assert_eq!(web_after.body["version"], web_before.body["version"]);
    assert_eq!(web_after.body["spec"], web_before.body["spec"]);
    assert_eq!(cluster.status(leader).await.unwrap().voters().len(), 3);

    // A write token (or a read one) on token administration: 403, nothing changes.
    let admin = [
        (
            Method::POST,
            "/v1/acl/tokens".to_string(),
            Some(json!({"name": "escalate", "kind": "management"})),
        ),
        (Method::GET, "/v1/acl/tokens".into(), None),
        (
            Method::DELETE,
            format!("/v1/acl/tokens/{}", boot.token.token.accessor_id),
            None,
        ),
        (Method::POST, "/v1/acl/join-token/rotate".into(), None),
    ];
    for (method, path, body) in &admin {
        for api in [&write, &read] {
            let r = call(api, &l, method.clone(), path, body.clone()).await;
            expect(&r, 403, Some("forbidden"), &format!("{method} {path}"));
            assert!(r.error_message().unwrap().contains("`management`"));
        }
    }

    // Management sees every token, never a secret.
    let r = call(&root, &f, Method::GET, "/v1/acl/tokens", None).await;
    expect(&r, 200, None, "listing tokens");
    let listed = r.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 3, "{}", r.describe());
    assert!(
        listed.iter().all(|t| t.get("secret").is_none()),
        "{}",
        r.describe()
    );
    let names: BTreeSet<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["bootstrap", "reader", "writer"]));

    // Revoking: the reader's token stops working on every manager.
    let path = format!("/v1/acl/tokens/{}", reader.token.accessor_id);
    let r = call(&root, &f, Method::DELETE, &path, None).await;
    expect(&r, 200, None, "revoking the read token");
    assert_eq!(decode::<AclToken>(&r, "revoked token"), reader.token);
    for id in cluster.ids() {
        let addr = cluster.addr(id);
        let read = read.clone();
        wait_until(
            &format!("manager {id} to refuse the revoked token"),
            WAIT,
            || {
                let (read, addr) = (read.clone(), addr.clone());
                async move {
                    let r = call(&read, &addr, Method::GET, "/v1/jobs", None).await;
                    if r.status == 401 && r.error_code() == Some("unauthorized") {
                        Ok(())
                    } else {
                        Err(r.describe())
                    }
                }
            },
        )
        .await;
    }
    let r = call(&root, &l, Method::DELETE, &path, None).await;
    expect(&r, 404, Some("not_found"), "revoking it again");
    // The last management token cannot be revoked (that would lock everyone out).
    let path = format!("/v1/acl/tokens/{}", boot.token.token.accessor_id);
    let r = call(&root, &l, Method::DELETE, &path, None).await;
    expect(
        &r,
        409,
        Some("conflict"),
        "revoking the last management token",
    );
    // The write token still works.
    let r = call(
        &write,
        &l,
        Method::POST,
        "/v1/jobs/web/scale",
        Some(json!({"replicas": 0})),
    )
    .await;
    assert!(r.is_success(), "{}", r.describe());

    // What the managers store holds hashes, never a secret (the accessor ids, which are
    // not secret, are there: the scan reads the right files).
    let secrets = [
        &boot.token.secret,
        &boot.join_token,
        &writer.secret,
        &reader.secret,
    ];
    for id in cluster.ids() {
        let data = cluster
            .manager(id)
            .log_path()
            .parent()
            .unwrap()
            .join("data");
        let stored = read_all(&data);
        assert!(
            contains(&stored, reader.token.accessor_id.as_bytes()),
            "manager {id}: the scan of {} found no token record",
            data.display()
        );
        for secret in secrets {
            assert!(
                !contains(&stored, secret.as_bytes()),
                "manager {id}: a secret is stored in plain under {}",
                data.display()
            );
        }
    }
}

/// Every byte of every file under `dir`.
fn read_all(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(content) = std::fs::read(&path) {
                bytes.extend(content);
            }
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_routes_need_the_cluster_secret() {
    let _serial = SERIAL.lock().await;
    let secret = SecretFile::new();
    let mut cluster = Cluster::start_with(3, secret.options()).await;
    let leader = cluster.leader_id().await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let term = cluster.status(leader).await.unwrap().term;
    let boot = bootstrap(&cluster, &cluster.addr(leader)).await;
    let http = cluster.client().reqwest().clone();

    let peer_paths = [
        "/v1/raft/append",
        "/v1/raft/vote",
        "/v1/raft/snapshot",
        "/v1/raft/propose",
        "/v1/raft/read-index",
    ];
    for id in cluster.ids() {
        for path in peer_paths {
            let url = cluster.url(id, path);
            let send = |header: Option<(&'static str, String)>| {
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/msgpack")
                    .body(vec![0x93u8, 0x01, 0x02, 0x03]);
                if let Some((name, value)) = header {
                    request = request.header(name, value);
                }
                request.send()
            };
            let bare = send(None).await.unwrap();
            assert_eq!(bare.status(), 401, "{path} on {id} without the secret");
            let body: Value = bare.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            let wrong = send(Some((
                "x-gantry-cluster-secret",
                "not-it-0123456789abc".into(),
            )));
            assert_eq!(
                wrong.await.unwrap().status(),
                401,
                "{path} with a wrong secret"
            );
            let token = format!("Bearer {}", boot.token.secret);
            let operator = send(Some(("authorization", token)));
            assert_eq!(operator.await.unwrap().status(), 401, "{path} with a token");
            // With the secret the request gets through (and these bytes are no message).
            let through = send(Some(("x-gantry-cluster-secret", CLUSTER_SECRET.into())));
            let status = through.await.unwrap().status();
            assert_ne!(status, 401, "{path} with the secret");
        }
    }
    let st = cluster.status(leader).await.unwrap();
    assert_eq!(
        (st.term, st.role.as_str()),
        (term, "leader"),
        "nothing moved"
    );

    // A manager with the secret joins through a follower, with no operator token.
    cluster.start_joining(4, follower);
    let expected = BTreeSet::from([1, 2, 3, 4]);
    wait_until("manager 4 to join as a voter", WAIT, || async {
        for id in cluster.ids() {
            let st = cluster.status(id).await?;
            if st.voters() != expected {
                return Err(format!("manager {id} lists voters {:?}", st.voters()));
            }
        }
        Ok(())
    })
    .await;

    // One with a wrong secret cannot.
    let intruder = Intruder::start(&cluster.addr(leader), &secret.wrong_path());
    wait_until("the intruder's join to be refused", WAIT, || async {
        let log = intruder.log();
        if log.contains("join refused") && log.contains("401") {
            Ok(())
        } else {
            Err(log.lines().last().unwrap_or("").to_string())
        }
    })
    .await;
    for id in cluster.ids() {
        let st = cluster.status(id).await.unwrap();
        assert_eq!(
            st.member_ids(),
            expected,
            "manager {id}: the intruder is no member"
        );
    }
}

/// A `gantry server` joining with the wrong cluster secret.
struct Intruder {
    child: Child,
    dir: tempfile::TempDir,
}

impl Intruder {
    fn start(via: &str, secret_file: &Path) -> Intruder {
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-intruder-")
            .tempdir()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(GANTRY)
            .args(["server", "--id", "5", "--listen"])
            .arg(format!("127.0.0.1:{}", free_ports(1)[0]))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--join", via, "--acl", "--cluster-secret-file"])
            .arg(secret_file)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn the intruder");
        Intruder { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_register_only_with_the_current_join_token() {
    let _serial = SERIAL.lock().await;
    let secret = SecretFile::new();
    let cluster = Cluster::start_with(3, secret.options()).await;
    let leader = cluster.addr(cluster.leader_id().await);
    let boot = bootstrap(&cluster, &leader).await;
    let root = cluster.client().with_token(Some(&boot.token.secret));
    let name = |role: &str| format!("acl-{role}-{}", std::process::id());
    let _reaper = Reaper(name("good"));

    // Refused: a wrong join token, and none.
    let wrong = AgentProcess::start(
        &cluster,
        &name("wrong"),
        "process",
        &["--join-token", "gantry-join-not-the-right-one"],
    );
    let none = AgentProcess::start(&cluster, &name("none"), "process", &[]);
    wait_refused(&wrong, "not this cluster's current join token").await;
    wait_refused(&none, "none was given").await;

    // Accepted: the join token. The node becomes ready and runs work, whose status
    // comes back on heartbeats (which present the node's own secret).
    let good = AgentProcess::start(
        &cluster,
        &name("good"),
        "process",
        &["--join-token", &boot.join_token, "--stop-grace", "2s"],
    );
    wait_ready(&root, &leader, &good.name).await;
    let spec = json!({
        "id": "acl-sleeper",
        "replicas": 1,
        "tasks": [{"name": "main", "driver": "process", "image": "none",
                   "command": ["sleep", "300"],
                   "resources": {"cpu_millis": 100, "memory_mb": 32}}]
    });
    let r = call(&root, &leader, Method::POST, "/v1/jobs", Some(spec)).await;
    expect(&r, 201, None, "submitting the job");
    wait_running(&root, &leader, "acl-sleeper", &good.name).await;

    // The refused agents' nodes never appeared, and they kept retrying.
    let nodes = node_names(&root, &leader).await;
    assert!(
        !nodes.contains(&wrong.name) && !nodes.contains(&none.name),
        "{nodes:?}"
    );
    for agent in [&wrong, &none] {
        wait_until(
            &format!("agent {} to try again", agent.name),
            WAIT,
            || async {
                agent.assert_alive();
                match refusals(agent) {
                    n if n >= 2 => Ok(()),
                    n => Err(format!("{n} refusal(s) logged")),
                }
            },
        )
        .await;
    }

    // Rotate: the old join token registers nothing new; the new one does; registered
    // agents carry on.
    let r = call(
        &root,
        &leader,
        Method::POST,
        "/v1/acl/join-token/rotate",
        None,
    )
    .await;
    expect(&r, 200, None, "rotating the join token");
    let rotated: JoinTokenResponse = decode(&r, "rotation");
    assert_ne!(rotated.join_token, boot.join_token);
    let late = AgentProcess::start(
        &cluster,
        &name("late"),
        "process",
        &["--join-token", &boot.join_token],
    );
    wait_refused(&late, "rotated").await;
    let renewed = AgentProcess::start(
        &cluster,
        &name("renewed"),
        "process",
        &["--join-token", &rotated.join_token],
    );
    wait_ready(&root, &leader, &renewed.name).await;
    assert!(!node_names(&root, &leader).await.contains(&late.name));
    wait_ready(&root, &leader, &good.name).await;
    wait_running(&root, &leader, "acl-sleeper", &good.name).await;
    assert_eq!(refusals(&good), 0, "{}", good.log_tail(40));

    // Clean up the task before the agents go.
    let r = call(&root, &leader, Method::DELETE, "/v1/jobs/acl-sleeper", None).await;
    expect(&r, 200, None, "deleting the job");
    wait_until("the sleeper to stop", WAIT, || async {
        let r = call(
            &root,
            &leader,
            Method::GET,
            "/v1/allocations?job=acl-sleeper",
            None,
        )
        .await;
        let running = r
            .body
            .as_array()
            .map(|a| a.iter().filter(|a| a["client_state"] == "running").count())
            .unwrap_or(0);
        if running == 0 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    good.stop();
}

/// Kills, on drop, what the process driver left running for node `.0` (the test
/// stops its job first; this is for a test that fails half-way).
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        let wanted = format!("GANTRY_NODE={}", self.0);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn refusals(agent: &AgentProcess) -> usize {
    agent
        .log_text()
        .lines()
        .filter(|l| l.contains("join token refused"))
        .count()
}

async fn wait_refused(agent: &AgentProcess, why: &str) {
    wait_until(
        &format!("agent {} to be refused ({why})", agent.name),
        WAIT,
        || async {
            agent.assert_alive();
            let log = agent.log_text();
            let refused = log
                .lines()
                .filter(|l| l.contains("join token refused") && l.contains(why))
                .count();
            if refused >= 1 && log.contains("gantry acl join-token rotate") {
                Ok(())
            } else {
                Err(log.lines().last().unwrap_or("").to_string())
            }
        },
    )
    .await;
}

async fn node_names(api: &Api, addr: &str) -> BTreeSet<String> {
    let r = call(api, addr, Method::GET, "/v1/nodes", None).await;
    expect(&r, 200, None, "listing nodes");
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_ready(api: &Api, addr: &str, node: &str) {
    wait_until(&format!("node {node} to be ready"), WAIT, || async {
        let r = call(api, addr, Method::GET, &format!("/v1/nodes/{node}"), None).await;
        match r.body["status"].as_str() {
            Some("ready") => Ok(()),
            _ => Err(r.describe()),
        }
    })
    .await;
}

async fn wait_running(api: &Api, addr: &str, job: &str, node: &str) {
    wait_until(&format!("job {job} to run on {node}"), WAIT, || async {
        let path = format!("/v1/allocations?job={job}");
        let r = call(api, addr, Method::GET, &path, None).await;
        let running = r.body.as_array().is_some_and(|all| {
            all.iter()
                .any(|a| a["client_state"] == "running" && a["node_id"] == node)
        });
        if running {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
}
