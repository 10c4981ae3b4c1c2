//! The names the DNS interface answers for, and what a query name refers to.
//!
//! Everything lives under `gantry.`, of which the managers are the authority:
//!
//! - `<service>.service.gantry.` — a service (`A`, `AAAA`, `SRV`);
//! - `_<service>._tcp.service.gantry.` — the same service in the RFC 2782 form (`SRV`);
//! - `<node id>.node.gantry.` — a node's address (`A`, `AAAA`): the targets of the SRV
//!   records.
//!
//! Matching ignores ASCII case, as DNS does. Service and node names may hold dots (a
//! default service name comes from the job id, which may; so may a node's name): such a
//! name spans several labels, joined back with `.` here. Gantry's own names never contain
//! a dot inside one label, so that is unambiguous. A name holding bytes a DNS label cannot
//! carry in text form (spaces, say) is simply never matched.

use hickory_proto::rr::Name;

/// The zone the managers answer for.
pub const ZONE: &str = "gantry";
/// Under [`ZONE`]: services.
pub const SERVICES: &str = "service";
/// Under [`ZONE`]: nodes, the targets of SRV records.
pub const NODES: &str = "node";
/// The protocol label of the RFC 2782 form (every published port is TCP).
pub const TCP: &str = "_tcp";

/// What a query name refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Not under `gantry.`: not ours to answer (REFUSED).
    Outside,
    /// A name that exists but holds no records of its own: `gantry.`, `service.gantry.`,
    /// `node.gantry.`, `_tcp.service.gantry.` (empty non-terminals: NOERROR, no answer).
    Interior,
    /// Under `gantry.` but of no known shape (NXDOMAIN).
    Unknown,
    /// `<service>.service.gantry.` (`rfc2782: false`) or `_<service>._tcp.service.gantry.`
    /// (`rfc2782: true`); `service` is lowercase.
    Service { service: String, rfc2782: bool },
    /// `<node id>.node.gantry.`; `node` is lowercase.
    Node { node: String },
}

/// Classifies a query name (absolute, as every name on the wire is).
pub fn owner(name: &Name) -> Owner {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    let Some((zone, below)) = labels.split_last() else {
        return Owner::Outside;
    };
    if zone != ZONE {
        return Owner::Outside;
    }
    let Some((kind, prefix)) = below.split_last() else {
        return Owner::Interior;
    };
    match kind.as_str() {
        SERVICES => service(prefix),
        NODES if prefix.is_empty() => Owner::Interior,
        NODES => Owner::Node {
            node: prefix.join("."),
        },
        _ => Owner::Unknown,
    }
}

/// The labels in front of `service.gantry.`.
fn service(prefix: &[String]) -> Owner {
    match prefix {
        [] => Owner::Interior,
        [tcp] if tcp == TCP => Owner::Interior,
        [first, middle @ .., tcp] if tcp == TCP && first.len() > 1 && first.starts_with('_') => {
            let mut parts = vec![&first[1..]];
            parts.extend(middle.iter().map(String::as_str));
            Owner::Service {
                service: parts.join("."),
                rfc2782: true,
            }
        }
        _ => Owner::Service {
            service: prefix.join("."),
            rfc2782: false,
        },
    }
}

/// `<node id>.node.gantry.`, the SRV target naming a node; `None` when the id cannot be a
/// domain name (an empty label, a label over 63 bytes, a name over 255).
pub fn node_name(node_id: &str) -> Option<Name> {
    let lower = node_id.to_ascii_lowercase();
    let labels = lower
        .split('.')
        .map(str::as_bytes)
        .chain([NODES.as_bytes(), ZONE.as_bytes()]);
    Name::from_labels(labels).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn of(text: &str) -> Owner {
        owner(&Name::from_str(text).unwrap())
    }

    fn service(name: &str, rfc2782: bool) -> Owner {
        Owner::Service {
            service: name.into(),
            rfc2782,
        }
    }

    #[test]
    fn services_in_both_forms_ignoring_case() {
        assert_eq!(of("web-http.service.gantry."), service("web-http", false));
        assert_eq!(of("Web-HTTP.Service.GANTRY."), service("web-http", false));
        assert_eq!(
            of("_web-http._tcp.service.gantry."),
            service("web-http", true)
        );
        assert_eq!(
            of("_WEB-http._TCP.service.gantry."),
            service("web-http", true)
        );
        // A default name from a job id with dots spans labels.
        assert_eq!(
            of("my.job-http.service.gantry."),
            service("my.job-http", false)
        );
        assert_eq!(
            of("_my.job-http._tcp.service.gantry."),
            service("my.job-http", true)
        );
        // `_tcp` alone in front is not the RFC form.
        assert_eq!(of("x._tcp.service.gantry."), service("x._tcp", false));
    }

    #[test]
    fn nodes_interiors_unknown_and_outside() {
        assert_eq!(of("n1.node.gantry."), Owner::Node { node: "n1".into() });
        assert_eq!(
            of("Rack1.N1.node.gantry."),
            Owner::Node {
                node: "rack1.n1".into()
            }
        );
        for interior in [
            "gantry.",
            "service.gantry.",
            "node.gantry.",
            "_tcp.service.gantry.",
        ] {
            assert_eq!(of(interior), Owner::Interior, "{interior}");
        }
        assert_eq!(of("web.other.gantry."), Owner::Unknown);
        assert_eq!(of("nope.gantry."), Owner::Unknown);
        assert_eq!(of("web-http.service.gantry.example.com."), Owner::Outside);
        assert_eq!(of("example.com."), Owner::Outside);
        assert_eq!(of("."), Owner::Outside);
    }

    #[test]
    fn node_names_round_trip() {
        let name = node_name("Rack1.N1").unwrap();
        assert_eq!(name.to_string(), "rack1.n1.node.gantry.");
        assert_eq!(
            owner(&name),
            Owner::Node {
                node: "rack1.n1".into()
            }
        );
        assert_eq!(node_name("a..b"), None, "an empty label");
        assert_eq!(node_name(&"x".repeat(64)), None, "a label over 63 bytes");
    }
}
