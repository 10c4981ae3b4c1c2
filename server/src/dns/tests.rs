//! The DNS interface end to end: a `DnsServer` on 127.0.0.1:0 over a cluster state built
//! by applying commands, asked over real sockets by hickory's DNS client (UDP, and TCP on
//! the same port).
//!
//! The state: nodes n1 (10.0.0.1), n2 (10.0.0.2) and n3 (10.0.0.3, down); job `web` with
//! port `http` (health-checked) and job `idle` with port `http` and nothing placed.
//! web-a on n1 and web-b on n2 are running and healthy, web-c on n1 is running but
//! unhealthy, web-d on n3 is healthy on a node that is down: exactly web-a and web-b
//! are endpoints of `web-http`.

use super::DnsServer;
use crate::services::test_cluster::TestCluster;
use gantry_api::{ClientState, Health, NodeStatus};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{DnsResponse, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::str::FromStr;

fn job(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","tasks":[{{"name":"main","image":"i",
        "resources":{{"cpu_millis":100,"memory_mb":32}},
        "ports":[{{"name":"http","container_port":80}}],
        "health":{{"type":"http","port":"http"}}}}]}}"#
    )
}

/// Places allocation `id` of `web` on `node` with host port `port` for `http`, and
/// reports it running with `health`.
fn run(c: &mut TestCluster, id: &str, node: &str, port: u16, health: Health) {
    c.place(id, "web", node, &[("main", "http", port)]);
    c.report(id, ClientState::Running, health);
}

fn cluster() -> TestCluster {
    let mut c = TestCluster::new();
    c.node("n1", "10.0.0.1", NodeStatus::Ready);
    c.node("n2", "10.0.0.2", NodeStatus::Ready);
    c.node("n3", "10.0.0.3", NodeStatus::Ready);
    c.job(&job("web"));
    c.job(&job("idle"));
    run(&mut c, "web-a", "n1", 20001, Health::Healthy);
    run(&mut c, "web-b", "n2", 20002, Health::Healthy);
    run(&mut c, "web-c", "n1", 20003, Health::Unhealthy);
    run(&mut c, "web-d", "n3", 20004, Health::Healthy);
    c.node("n3", "10.0.0.3", NodeStatus::Down);
    c
}

async fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default()).build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    client
}

async fn tcp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (stream, sender) = TcpClientStream::new(addr, None, None, TokioRuntimeProvider::new());
    let (client, background) =
        Client::<TokioRuntimeProvider>::new(stream.await.expect("TCP connect"), sender);
    tokio::spawn(background);
    client
}

async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    qtype: RecordType,
) -> DnsResponse {
    client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, qtype)
        .await
        .unwrap_or_else(|e| panic!("{name} {qtype}: {e}"))
}

/// The answer section's data as text, sorted (the server shuffles it).
fn answers(response: &DnsResponse) -> BTreeSet<String> {
    response
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_real_client_gets_exactly_the_healthy_endpoints() {
    let server = DnsServer::start("127.0.0.1:0".parse().unwrap(), cluster().state)
        .await
        .unwrap();
    let mut client = udp_client(server.local_addr()).await;

    // A: one record per distinct address of a healthy endpoint; TTL 0, authoritative.
    let a = ask(&mut client, "web-http.service.gantry.", RecordType::A).await;
    assert_eq!(a.response_code, ResponseCode::NoError);
    assert!(a.authoritative, "authoritative for gantry.");
    assert_eq!(answers(&a), set(&["10.0.0.1", "10.0.0.2"]));
    assert!(a.answers.iter().all(|r| r.ttl == 0
        && r.record_type() == RecordType::A
        && r.name == Name::from_str("web-http.service.gantry.").unwrap()));

    // SRV, both forms: every endpoint, its node as the target, the targets' addresses
    // in the additional section.
    for name in ["web-http.service.gantry.", "_web-http._tcp.service.gantry."] {
        let srv = ask(&mut client, name, RecordType::SRV).await;
        assert_eq!(srv.response_code, ResponseCode::NoError, "{name}");
        assert!(srv.authoritative);
        assert_eq!(
            answers(&srv),
            set(&["1 1 20001 n1.node.gantry.", "1 1 20002 n2.node.gantry."]),
            "{name}"
        );
        let glue: BTreeSet<String> = srv
            .additionals
            .iter()
            .filter(|r| matches!(r.data, RData::A(_)))
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            glue,
            set(&["n1.node.gantry. 10.0.0.1", "n2.node.gantry. 10.0.0.2"])
        );
    }

    // The targets resolve; any case is the same name.
    let node = ask(&mut client, "N2.Node.Gantry.", RecordType::A).await;
    assert_eq!(answers(&node), set(&["10.0.0.2"]));

    // A declared service with no endpoint: the name exists, with nothing in it.
    let idle = ask(&mut client, "idle-http.service.gantry.", RecordType::A).await;
    assert_eq!(idle.response_code, ResponseCode::NoError);
    assert!(idle.answers.is_empty());

    // Unknown names in the zone: NXDOMAIN, authoritatively.
    for name in ["nope.service.gantry.", "n9.node.gantry.", "x.gantry."] {
        let nx = ask(&mut client, name, RecordType::A).await;
        assert_eq!(nx.response_code, ResponseCode::NXDomain, "{name}");
        assert!(nx.authoritative, "{name}");
        assert!(nx.answers.is_empty());
    }

    // Outside the zone: not a resolver.
    let refused = ask(&mut client, "example.com.", RecordType::A).await;
    assert_eq!(refused.response_code, ResponseCode::Refused);
    assert!(!refused.authoritative);

    // TCP on the same port gives the same answers.
    let mut tcp = tcp_client(server.local_addr()).await;
    let srv = ask(&mut tcp, "_web-http._tcp.service.gantry.", RecordType::SRV).await;
    assert_eq!(
        answers(&srv),
        set(&["1 1 20001 n1.node.gantry.", "1 1 20002 n2.node.gantry."])
    );

    server.stop().await;
}

#[tokio::test]
async fn answers_follow_the_replica() {
    let mut c = cluster();
    let server = DnsServer::start("127.0.0.1:0".parse().unwrap(), c.state.clone())
        .await
        .unwrap();
    let mut client = udp_client(server.local_addr()).await;
    let before = ask(&mut client, "web-http.service.gantry.", RecordType::A).await;
    assert_eq!(answers(&before), set(&["10.0.0.1", "10.0.0.2"]));

    // n2 goes down: its endpoint leaves the next answer (TTL 0: nothing to wait out).
    c.node_status("n2", NodeStatus::Down);
    let after = ask(&mut client, "web-http.service.gantry.", RecordType::A).await;
    assert_eq!(answers(&after), set(&["10.0.0.1"]));
    server.stop().await;
}

#[tokio::test]
async fn a_long_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let mut c = cluster();
    // 100 more healthy endpoints of web-http on n1 and n2: some 5 KB of SRV records.
    for i in 0..100u16 {
        let node = if i % 2 == 0 { "n1" } else { "n2" };
        run(
            &mut c,
            &format!("web-x{i}"),
            node,
            21000 + i,
            Health::Healthy,
        );
    }
    let server = DnsServer::start("127.0.0.1:0".parse().unwrap(), c.state.clone())
        .await
        .unwrap();
    let name = "web-http.service.gantry.";

    let mut udp = udp_client(server.local_addr()).await;
    let cut = ask(&mut udp, name, RecordType::SRV).await;
    assert!(cut.truncation, "TC set: the client must ask again over TCP");
    assert!(cut.answers.len() < 102, "{} records", cut.answers.len());

    let mut tcp = tcp_client(server.local_addr()).await;
    let whole = ask(&mut tcp, name, RecordType::SRV).await;
    assert!(!whole.truncation);
    assert_eq!(whole.answers.len(), 102, "web-a, web-b and the 100");
    assert_eq!(whole.additionals.len(), 2, "n1 and n2, once each");
    server.stop().await;
}

#[tokio::test]
async fn a_taken_address_is_a_startup_error_naming_it() {
    let first = DnsServer::start("127.0.0.1:0".parse().unwrap(), cluster().state)
        .await
        .unwrap();
    let taken = first.local_addr();
    let error = match DnsServer::start(taken, cluster().state).await {
        Ok(_) => panic!("bound {taken} twice"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&format!("cannot serve DNS on {taken} (--dns-listen)")),
        "{error}"
    );
    first.stop().await;
}
