//! The answer to one DNS question, from what the state says about services and nodes.
//!
//! Pure: a name, a record type and a [`Directory`] in; a response code and the records
//! out. The handler (`handler.rs`) reads the local replica and puts this on the wire.
//!
//! - `A` / `AAAA` of `<service>.service.gantry.`: one record per distinct address of its
//!   endpoints (IPv4 for `A`, IPv6 for `AAAA`).
//! - `SRV` of `<service>.service.gantry.` and `_<service>._tcp.service.gantry.`: one record
//!   per endpoint, `1 1 <host port> <node id>.node.gantry.`, with each target's `A`/`AAAA`
//!   in the additional section. A node whose address is a host name rather than an IP
//!   literal gets that host name as the target instead (no additional record): the client
//!   resolves it as usual, where `<node id>.node.gantry.` would lead nowhere.
//! - `A` / `AAAA` of `<node id>.node.gantry.`: the node's address, when it is an IP
//!   literal; a node registered with a host name has no address record here.
//! - A service no job declares and nothing serves, an unknown node, or any other name
//!   under `gantry.`: NXDOMAIN. A known service with no endpoint, a record type the name
//!   does not have, or an empty non-terminal (`service.gantry.`): NOERROR with no
//!   answer. Outside `gantry.`: REFUSED (this is no resolver).
//!
//! Every TTL is 0: endpoints come and go with health checks, so a cached answer would
//! send clients to instances already gone; clients ask again each time (the answer costs
//! one read of the local replica). Every answer under `gantry.` is authoritative.

use super::names::{self, Owner};
use gantry_api::ServiceEndpoint;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Time to live of every record: never cache (see the module comment).
pub const TTL: u32 = 0;
/// SRV priority and weight: every endpoint is as good as any other.
pub const SRV_PRIORITY: u16 = 1;
pub const SRV_WEIGHT: u16 = 1;

/// What the answers need from the cluster state.
pub trait Directory {
    /// The endpoints of the service whose name equals `service` ignoring ASCII case;
    /// `None` when no job declares such a service and nothing serves it.
    fn service(&self, service: &str) -> Option<Vec<ServiceEndpoint>>;
    /// The registered address of the node whose id equals `node` ignoring ASCII case;
    /// `None` when there is no such node.
    fn node_address(&self, node: &str) -> Option<String>;
}

/// One response: its code, whether it is authoritative, and its sections.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub code: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    fn empty(code: ResponseCode) -> Answer {
        Answer {
            code,
            authoritative: code != ResponseCode::Refused,
            answers: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// Not ours to answer: a name outside `gantry.`, a class other than `IN`.
    pub fn refused() -> Answer {
        Answer::empty(ResponseCode::Refused)
    }
}

/// The answer to `qtype` of `qname` (owner names in the answer are `qname` as asked).
pub fn answer(qname: &Name, qtype: RecordType, directory: &impl Directory) -> Answer {
    match names::owner(qname) {
        Owner::Outside => Answer::refused(),
        Owner::Unknown => Answer::empty(ResponseCode::NXDomain),
        Owner::Interior => Answer::empty(ResponseCode::NoError),
        Owner::Service { service, rfc2782 } => match directory.service(&service) {
            None => Answer::empty(ResponseCode::NXDomain),
            Some(endpoints) => service_answer(qname, qtype, rfc2782, &endpoints),
        },
        Owner::Node { node } => match directory.node_address(&node) {
            None => Answer::empty(ResponseCode::NXDomain),
            Some(address) => {
                let mut answer = Answer::empty(ResponseCode::NoError);
                answer.answers = address_records(qname, qtype, parse_ip(&address));
                answer
            }
        },
    }
}

fn service_answer(
    qname: &Name,
    qtype: RecordType,
    rfc2782: bool,
    endpoints: &[ServiceEndpoint],
) -> Answer {
    let mut answer = Answer::empty(ResponseCode::NoError);
    match qtype {
        RecordType::A | RecordType::AAAA if !rfc2782 => {
            let distinct: BTreeSet<IpAddr> = endpoints
                .iter()
                .filter_map(|e| parse_ip(&e.address))
                .collect();
            answer.answers = distinct
                .into_iter()
                .flat_map(|ip| address_records(qname, qtype, Some(ip)))
                .collect();
        }
        RecordType::SRV => {
            let mut glued = BTreeSet::new();
            for endpoint in endpoints {
                let Some((target, glue)) = target(endpoint) else {
                    continue;
                };
                answer.answers.push(Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::SRV(SRV::new(
                        SRV_PRIORITY,
                        SRV_WEIGHT,
                        endpoint.port,
                        target.clone(),
                    )),
                ));
                if let Some(glue) = glue {
                    if glued.insert(target.clone()) {
                        answer.additionals.push(glue);
                    }
                }
            }
        }
        _ => {}
    }
    answer
}

/// The SRV target of an endpoint and the address record to put beside it: its node's
/// name under `node.gantry.` with the node's IP; the node's host name itself when its
/// address is not an IP literal; `None` when neither makes a domain name.
fn target(endpoint: &ServiceEndpoint) -> Option<(Name, Option<Record>)> {
    match parse_ip(&endpoint.address) {
        Some(ip) => {
            let name = names::node_name(&endpoint.node_id)?;
            let glue = Record::from_rdata(name.clone(), TTL, rdata(ip));
            Some((name, Some(glue)))
        }
        None => {
            let mut host = Name::from_ascii(endpoint.address.trim_end_matches('.')).ok()?;
            host.set_fqdn(true);
            Some((host, None))
        }
    }
}

/// The `A` (IPv4) or `AAAA` (IPv6) record of `ip` when `qtype` asks for its family.
fn address_records(qname: &Name, qtype: RecordType, ip: Option<IpAddr>) -> Vec<Record> {
    match ip {
        Some(ip @ IpAddr::V4(_)) if qtype == RecordType::A => {
            vec![Record::from_rdata(qname.clone(), TTL, rdata(ip))]
        }
        Some(ip @ IpAddr::V6(_)) if qtype == RecordType::AAAA => {
            vec![Record::from_rdata(qname.clone(), TTL, rdata(ip))]
        }
        _ => Vec::new(),
    }
}

fn rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// A node's address as an IP, if it is an IP literal (`fd00::1` or `[fd00::1]`).
fn parse_ip(address: &str) -> Option<IpAddr> {
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Services (lowercase name → endpoints) and nodes (lowercase id → address).
    #[derive(Default)]
    struct Fixture {
        services: BTreeMap<String, Vec<ServiceEndpoint>>,
        nodes: BTreeMap<String, String>,
    }

    impl Directory for Fixture {
        fn service(&self, service: &str) -> Option<Vec<ServiceEndpoint>> {
            self.services.get(service).cloned()
        }
        fn node_address(&self, node: &str) -> Option<String> {
            self.nodes.get(node).cloned()
        }
    }

    fn endpoint(
        service: &str,
        alloc: &str,
        node: &str,
        address: &str,
        port: u16,
    ) -> ServiceEndpoint {
        ServiceEndpoint {
            service: service.into(),
            alloc_id: alloc.into(),
            job_id: "web".into(),
            node_id: node.into(),
            address: address.into(),
            port,
            tags: vec![],
        }
    }

    /// web-http: two endpoints on n1 (one address), one on n2, one on an IPv6 node and
    /// one on a node registered by host name; `idle` is declared with no endpoint.
    fn fixture() -> Fixture {
        let mut f = Fixture::default();
        f.services.insert(
            "web-http".into(),
            vec![
                endpoint("web-http", "a", "n1", "10.0.0.1", 20001),
                endpoint("web-http", "b", "n1", "10.0.0.1", 20002),
                endpoint("web-http", "c", "n2", "10.0.0.2", 20001),
                endpoint("web-http", "d", "n6", "fd00::6", 20003),
                endpoint("web-http", "e", "h1", "worker-1.example.internal", 20004),
            ],
        );
        f.services.insert("idle".into(), vec![]);
        for (id, address) in [
            ("n1", "10.0.0.1"),
            ("n2", "10.0.0.2"),
            ("n6", "[fd00::6]"),
            ("h1", "worker-1.example.internal"),
        ] {
            f.nodes.insert(id.into(), address.into());
        }
        f
    }

    /// The answer as text: the code, then `name ttl type data` per answer, then `+` and
    /// each additional record.
    fn ask(name: &str, qtype: RecordType) -> Vec<String> {
        // `from_ascii` keeps the case as written (`from_str` folds it).
        let answer = answer(&Name::from_ascii(name).unwrap(), qtype, &fixture());
        assert_eq!(
            answer.authoritative,
            answer.code != ResponseCode::Refused,
            "authoritative under gantry. only"
        );
        let line = |r: &Record| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data);
        let mut lines = vec![format!("{:?}", answer.code)];
        lines.extend(answer.answers.iter().map(line));
        lines.extend(answer.additionals.iter().map(|r| format!("+ {}", line(r))));
        lines
    }

    #[test]
    fn a_and_aaaa_give_each_distinct_address_once() {
        assert_eq!(
            ask("web-http.service.gantry.", RecordType::A),
            vec![
                "NoError",
                "web-http.service.gantry. 0 A 10.0.0.1",
                "web-http.service.gantry. 0 A 10.0.0.2",
            ]
        );
        assert_eq!(
            ask("Web-Http.Service.Gantry.", RecordType::AAAA),
            vec!["NoError", "Web-Http.Service.Gantry. 0 AAAA fd00::6"],
            "any case; the owner name is the name as asked"
        );
    }

    #[test]
    fn srv_gives_every_endpoint_with_its_node_as_target_and_glue() {
        let expected = |owner: &str| {
            vec![
                "NoError".to_string(),
                format!("{owner} 0 SRV 1 1 20001 n1.node.gantry."),
                format!("{owner} 0 SRV 1 1 20002 n1.node.gantry."),
                format!("{owner} 0 SRV 1 1 20001 n2.node.gantry."),
                format!("{owner} 0 SRV 1 1 20003 n6.node.gantry."),
                format!("{owner} 0 SRV 1 1 20004 worker-1.example.internal."),
                "+ n1.node.gantry. 0 A 10.0.0.1".to_string(),
                "+ n2.node.gantry. 0 A 10.0.0.2".to_string(),
                "+ n6.node.gantry. 0 AAAA fd00::6".to_string(),
            ]
        };
        assert_eq!(
            ask("web-http.service.gantry.", RecordType::SRV),
            expected("web-http.service.gantry.")
        );
        assert_eq!(
            ask("_web-http._tcp.service.gantry.", RecordType::SRV),
            expected("_web-http._tcp.service.gantry."),
            "the RFC 2782 form"
        );
        assert_eq!(
            ask("_web-http._tcp.service.gantry.", RecordType::A),
            vec!["NoError"],
            "the RFC 2782 form has SRV records only"
        );
    }

    #[test]
    fn nodes_have_the_address_they_registered_when_it_is_an_ip() {
        assert_eq!(
            ask("N1.node.gantry.", RecordType::A),
            vec!["NoError", "N1.node.gantry. 0 A 10.0.0.1"]
        );
        assert_eq!(
            ask("n6.node.gantry.", RecordType::AAAA),
            vec!["NoError", "n6.node.gantry. 0 AAAA fd00::6"]
        );
        assert_eq!(ask("n6.node.gantry.", RecordType::A), vec!["NoError"]);
        assert_eq!(
            ask("h1.node.gantry.", RecordType::A),
            vec!["NoError"],
            "a host name is no address record"
        );
        assert_eq!(ask("n9.node.gantry.", RecordType::A), vec!["NXDomain"]);
    }

    #[test]
    fn codes_for_unknown_empty_unsupported_and_outside() {
        let nx = vec!["NXDomain"];
        let empty = vec!["NoError"];
        assert_eq!(ask("nope.service.gantry.", RecordType::A), nx);
        assert_eq!(ask("_nope._tcp.service.gantry.", RecordType::SRV), nx);
        assert_eq!(ask("web.elsewhere.gantry.", RecordType::A), nx);
        assert_eq!(
            ask("idle.service.gantry.", RecordType::A),
            empty,
            "declared, no endpoint"
        );
        assert_eq!(ask("idle.service.gantry.", RecordType::SRV), empty);
        assert_eq!(ask("web-http.service.gantry.", RecordType::TXT), empty);
        assert_eq!(ask("web-http.service.gantry.", RecordType::MX), empty);
        assert_eq!(ask("service.gantry.", RecordType::A), empty);
        assert_eq!(ask("gantry.", RecordType::SOA), empty);
        assert_eq!(ask("example.com.", RecordType::A), vec!["Refused"]);
        assert_eq!(
            ask("web-http.service.gantry.com.", RecordType::A),
            vec!["Refused"]
        );
    }

    #[test]
    fn ip_literals_with_or_without_brackets() {
        assert_eq!(parse_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("[fd00::1]"), Some("fd00::1".parse().unwrap()));
        assert_eq!(parse_ip("fd00::1"), Some("fd00::1".parse().unwrap()));
        assert_eq!(parse_ip("worker-1"), None);
    }
}
