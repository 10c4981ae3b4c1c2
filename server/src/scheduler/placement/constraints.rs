//! Job constraints, compiled once per ask and checked against node attributes.
//!
//! A constraint names an attribute of the node:
//!
//! | attribute | value |
//! |---|---|
//! | `label.<k>` | the node's label `k`, unset if it has none |
//! | `driver.<name>` | `"true"` when the node offers the driver, unset otherwise |
//! | `node.name`, `node.id`, `node.address` | the node's own |
//! | anything else | unset |
//!
//! Operators: `=` (set and equal), `!=` (unset or different), `regex` (set and matching,
//! unanchored unless the pattern anchors itself), `set_contains_any` / `set_contains_all`
//! (the value is a comma-separated list, the attribute a comma-separated set; set and
//! containing any / all of the list), `is_set`, `is_not_set`.
//!
//! Regexes are compiled here, once per ask, never per node. Labels and drivers are shared
//! by every node of a class ([`node_class`](super::node_class)), so those constraints are
//! decided once per class; only `node.*` ones are checked per node ([`Scope`]).

use std::collections::BTreeMap;
use std::fmt;

use gantry_api::{Constraint, ConstraintOperator};
use regex::Regex;

/// Where a constraint's attribute lives, and so how often it must be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Labels and drivers: the same for every node of a class.
    Class,
    /// `node.name`, `node.id`, `node.address`: one node at a time.
    Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Attribute {
    Label(String),
    Driver(String),
    NodeName,
    NodeId,
    NodeAddress,
    Unknown,
}

impl Attribute {
    fn parse(name: &str) -> Attribute {
        if let Some(key) = name.strip_prefix("label.") {
            return Attribute::Label(key.to_string());
        }
        if let Some(driver) = name.strip_prefix("driver.") {
            return Attribute::Driver(driver.to_string());
        }
        match name {
            "node.name" => Attribute::NodeName,
            "node.id" => Attribute::NodeId,
            "node.address" => Attribute::NodeAddress,
            _ => Attribute::Unknown,
        }
    }
}

/// The attributes of a node (or of every node of a class, for the class-scoped ones).
pub(crate) trait Attributes {
    fn label(&self, key: &str) -> Option<&str>;
    fn has_driver(&self, driver: &str) -> bool;
    /// `node.name`, `node.id`, `node.address`; never asked of a class.
    fn name(&self) -> Option<&str>;
    fn id(&self) -> Option<&str>;
    fn address(&self) -> Option<&str>;
}

impl Attributes for super::NodeInfo {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
    fn has_driver(&self, driver: &str) -> bool {
        self.drivers.iter().any(|d| d == driver)
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn address(&self) -> Option<&str> {
        Some(&self.address)
    }
}

/// How a constraint is tested, with its value already parsed.
#[derive(Clone, Debug)]
enum Test {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    ContainsAny(Vec<String>),
    ContainsAll(Vec<String>),
    IsSet,
    IsNotSet,
}

/// A constraint ready to be checked against nodes.
#[derive(Clone, Debug)]
pub struct CompiledConstraint {
    source: Constraint,
    attribute: Attribute,
    test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("constraint {constraint}: invalid regex: {error}")]
pub struct InvalidConstraint {
    pub constraint: String,
    pub error: String,
}

impl CompiledConstraint {
    pub fn new(constraint: &Constraint) -> Result<Self, InvalidConstraint> {
        let value = constraint.value.clone();
        let test = match constraint.operator {
            ConstraintOperator::Equal => Test::Equal(value),
            ConstraintOperator::NotEqual => Test::NotEqual(value),
            ConstraintOperator::Regex => {
                Test::Regex(Regex::new(&value).map_err(|e| InvalidConstraint {
                    constraint: describe(constraint),
                    error: e.to_string(),
                })?)
            }
            ConstraintOperator::SetContainsAny => Test::ContainsAny(set_items(&value)),
            ConstraintOperator::SetContainsAll => Test::ContainsAll(set_items(&value)),
            ConstraintOperator::IsSet => Test::IsSet,
            ConstraintOperator::IsNotSet => Test::IsNotSet,
        };
        Ok(CompiledConstraint {
            attribute: Attribute::parse(&constraint.attribute),
            source: constraint.clone(),
            test,
        })
    }

    pub fn source(&self) -> &Constraint {
        &self.source
    }

    pub(crate) fn scope(&self) -> Scope {
        match self.attribute {
            Attribute::NodeName | Attribute::NodeId | Attribute::NodeAddress => Scope::Node,
            Attribute::Label(_) | Attribute::Driver(_) | Attribute::Unknown => Scope::Class,
        }
    }

    /// `Some(id)` for `node.id = id`: the ask can only go to that node.
    pub(crate) fn pinned_id(&self) -> Option<&str> {
        match (&self.attribute, &self.test) {
            (Attribute::NodeId, Test::Equal(id)) => Some(id),
            _ => None,
        }
    }

    /// `Some(name)` for `node.name = name`.
    pub(crate) fn pinned_name(&self) -> Option<&str> {
        match (&self.attribute, &self.test) {
            (Attribute::NodeName, Test::Equal(name)) => Some(name),
            _ => None,
        }
    }

    pub(crate) fn admits(&self, node: &impl Attributes) -> bool {
        let value = match &self.attribute {
            Attribute::Label(key) => node.label(key),
            Attribute::Driver(driver) => node.has_driver(driver).then_some("true"),
            Attribute::NodeName => node.name(),
            Attribute::NodeId => node.id(),
            Attribute::NodeAddress => node.address(),
            Attribute::Unknown => None,
        };
        match (&self.test, value) {
            (Test::IsSet, v) => v.is_some(),
            (Test::IsNotSet, v) => v.is_none(),
            (Test::NotEqual(want), v) => v != Some(want.as_str()),
            (_, None) => false,
            (Test::Equal(want), Some(v)) => v == want,
            (Test::Regex(re), Some(v)) => re.is_match(v),
            (Test::ContainsAny(want), Some(v)) => {
                let have = set_items(v);
                want.iter().any(|w| have.contains(w))
            }
            (Test::ContainsAll(want), Some(v)) => {
                let have = set_items(v);
                want.iter().all(|w| have.contains(w))
            }
        }
    }
}

impl fmt::Display for CompiledConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&self.source))
    }
}

/// `label.zone = a`, `node.name regex ^web-`, `label.ssd is_set`.
pub(crate) fn describe(c: &Constraint) -> String {
    let op = match c.operator {
        ConstraintOperator::Equal => "=",
        ConstraintOperator::NotEqual => "!=",
        ConstraintOperator::Regex => "regex",
        ConstraintOperator::SetContainsAny => "set_contains_any",
        ConstraintOperator::SetContainsAll => "set_contains_all",
        ConstraintOperator::IsSet => "is_set",
        ConstraintOperator::IsNotSet => "is_not_set",
    };
    if c.operator.needs_value() {
        format!("{} {op} {}", c.attribute, c.value)
    } else {
        format!("{} {op}", c.attribute)
    }
}

/// `"a, b,,c"` → `["a", "b", "c"]`.
fn set_items(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Labels and drivers without a node: what every node of a class shares.
pub(crate) struct SharedAttributes<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub drivers: &'a [String],
}

impl Attributes for SharedAttributes<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
    fn has_driver(&self, driver: &str) -> bool {
        self.drivers.iter().any(|d| d == driver)
    }
    fn name(&self) -> Option<&str> {
        None
    }
    fn id(&self) -> Option<&str> {
        None
    }
    fn address(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::NodeInfo;
    use gantry_api::{PortRange, Resources};

    fn node() -> NodeInfo {
        NodeInfo {
            id: "n-1".into(),
            name: "web-1".into(),
            address: "10.0.0.1".into(),
            capacity: Resources {
                cpu_millis: 1000,
                memory_mb: 1000,
            },
            port_range: PortRange::default(),
            labels: [
                ("zone".to_string(), "a".to_string()),
                ("features".to_string(), "ssd, gpu,avx".to_string()),
            ]
            .into(),
            drivers: vec!["docker".into()],
            schedulable: true,
        }
    }

    fn check(attribute: &str, operator: ConstraintOperator, value: &str) -> bool {
        let c = CompiledConstraint::new(&Constraint {
            attribute: attribute.into(),
            operator,
            value: value.into(),
        })
        .unwrap();
        c.admits(&node())
    }

    use ConstraintOperator::*;

    #[test]
    fn equality_and_inequality() {
        assert!(check("label.zone", Equal, "a"));
        assert!(!check("label.zone", Equal, "b"));
        assert!(!check("label.rack", Equal, ""), "unset is never equal");
        assert!(check("label.zone", NotEqual, "b"));
        assert!(!check("label.zone", NotEqual, "a"));
        assert!(
            check("label.rack", NotEqual, "r1"),
            "unset differs from anything"
        );
        assert!(check("node.name", Equal, "web-1"));
        assert!(check("node.id", Equal, "n-1"));
        assert!(check("node.address", NotEqual, "10.0.0.2"));
        assert!(
            !check("cpu.arch", Equal, "x86"),
            "unknown attributes are unset"
        );
    }

    #[test]
    fn drivers_are_true_when_offered_and_unset_otherwise() {
        assert!(check("driver.docker", Equal, "true"));
        assert!(check("driver.docker", IsSet, ""));
        assert!(!check("driver.process", Equal, "true"));
        assert!(check("driver.process", IsNotSet, ""));
        assert!(check("driver.process", NotEqual, "true"));
    }

    #[test]
    fn regex_is_unanchored_and_needs_the_attribute() {
        assert!(check("node.name", Regex, "^web-\\d+$"));
        assert!(check("node.name", Regex, "eb"));
        assert!(!check("node.name", Regex, "^eb"));
        assert!(!check("label.rack", Regex, ".*"));
        let err = CompiledConstraint::new(&Constraint {
            attribute: "node.name".into(),
            operator: Regex,
            value: "(".into(),
        })
        .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("constraint node.name regex (: invalid regex"));
    }

    #[test]
    fn set_operators_split_on_commas_and_trim() {
        assert!(check("label.features", SetContainsAny, "arm, gpu"));
        assert!(!check("label.features", SetContainsAny, "arm,sve"));
        assert!(check("label.features", SetContainsAll, "avx,ssd"));
        assert!(!check("label.features", SetContainsAll, "avx,arm"));
        assert!(check("label.zone", SetContainsAll, "a"));
        assert!(!check("label.rack", SetContainsAny, "a"));
    }

    #[test]
    fn is_set_and_is_not_set() {
        assert!(check("label.zone", IsSet, ""));
        assert!(!check("label.rack", IsSet, ""));
        assert!(check("label.rack", IsNotSet, ""));
        assert!(!check("label.zone", IsNotSet, ""));
    }

    #[test]
    fn scope_and_pinning() {
        let c = |attribute: &str, operator| {
            CompiledConstraint::new(&Constraint {
                attribute: attribute.into(),
                operator,
                value: "x".into(),
            })
            .unwrap()
        };
        assert_eq!(c("label.zone", Equal).scope(), Scope::Class);
        assert_eq!(c("driver.docker", Equal).scope(), Scope::Class);
        assert_eq!(c("node.address", Equal).scope(), Scope::Node);
        assert_eq!(c("node.id", Equal).pinned_id(), Some("x"));
        assert_eq!(c("node.id", NotEqual).pinned_id(), None);
        assert_eq!(c("node.name", Equal).pinned_name(), Some("x"));
        assert_eq!(c("label.zone", Equal).to_string(), "label.zone = x");
        assert_eq!(c("label.zone", IsSet).to_string(), "label.zone is_set");
    }

    #[test]
    fn class_attributes_match_a_node_with_the_same_labels() {
        let n = node();
        let shared = SharedAttributes {
            labels: &n.labels,
            drivers: &n.drivers,
        };
        let c = CompiledConstraint::new(&Constraint {
            attribute: "label.zone".into(),
            operator: Equal,
            value: "a".into(),
        })
        .unwrap();
        assert_eq!(c.admits(&shared), c.admits(&n));
    }
}
