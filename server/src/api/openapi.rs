//! The OpenAPI 3 document of the admin API, served at `GET /v1/openapi.json`.
//!
//! It is generated from the code: each handler carries a `#[utoipa::path]` annotation
//! (its parameters, body, answers and error answers) and every wire type in
//! `gantry-api` derives its schema, so the document changes with the code. Two things
//! hold for every route and are added here once rather than on each handler: the
//! `X-Gantry-Index` header on every answer, and the error body's schema.
//!
//! Left out on purpose: the peer routes (`/raft/*`: Raft messages between managers,
//! msgpack bodies) and the agent protocol (`/v1/agent/*`, see `gantry_api::session`):
//! neither is for operators or their tools. A unit test checks that every other route
//! of the router is in the document.

use crate::acl::access::{self, Access};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use gantry_api::acl::TokenKind;
use std::sync::OnceLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document, from every annotated handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gantry admin API",
        description = "The HTTP API of a Gantry manager: jobs, nodes, allocations and the \
                       Raft group. Any manager answers; writes are forwarded to the leader. \
                       Every answer carries `X-Gantry-Index`, the last log index the manager \
                       has applied. Reads are linearizable unless `?stale=true`; \
                       `?index=N&wait=30s` makes a read wait for a change after index N. \
                       Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}`.",
    ),
    paths(
        super::openapi::get,
        super::status::get_status,
        super::status::get_raft,
        super::peers::add_peer,
        super::peers::remove_peer,
        super::jobs::register,
        super::jobs::list,
        super::jobs::get,
        super::jobs::delete,
        super::jobs::versions,
        super::jobs::scale,
        super::jobs::revert,
        super::jobs::plan,
        super::nodes::list,
        super::nodes::get,
        super::nodes::drain,
        super::nodes::eligibility,
        super::allocations::list,
        super::allocations::get,
        super::logs::get,
        super::alloc_control::stop,
        super::alloc_control::restart,
        super::services::list,
        super::services::get,
        super::deployments::list,
        super::deployments::get,
        super::deployments::act_on,
        super::events::stream,
        super::acl::bootstrap,
        super::acl::list_tokens,
        super::acl::create_token,
        super::acl::delete_token,
        super::acl::token_self,
        super::acl::rotate_join_token,
        crate::metrics::scrape::render,
        super::snapshot::save,
        super::snapshot::restore,
        super::transfer_leader::transfer_leader,
    ),
    components(schemas(gantry_api::ErrorBody)),
    modifiers(&EveryAnswer),
    tags(
        (name = "status", description = "Where a manager stands in the cluster"),
        (name = "jobs", description = "Submitting and changing jobs"),
        (name = "nodes", description = "The worker machines, as their agents registered them"),
        (name = "allocations", description = "Placed instances of jobs"),
        (name = "services", description = "Where the healthy instances of named ports are"),
        (name = "deployments", description = "Rollouts of new job versions"),
        (name = "events", description = "The stream of committed changes"),
        (name = "operator", description = "The Raft group of managers"),
        (name = "acl", description = "Tokens (with `gantry server --acl`)"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds what every route has: the `X-Gantry-Index` header on each answer, and what
/// access control may answer (from the route table the ACL middleware uses).
struct EveryAnswer;

impl Modify for EveryAnswer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            TOKEN_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "With `gantry server --acl`: a token's secret. Without ACL no token \
                         is needed.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    document_access(operation, &method, path);
                    document_malformed_parameters(operation);
                    document_common_errors(operation, &method);
                }
            }
        }

        let index_header = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some(
                "The last Raft log index this manager had applied when it answered.",
            ))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response
                            .headers
                            .insert(INDEX_HEADER_NAME.to_string(), index_header.clone());
                    }
                }
            }
        }
    }
}

/// The name of the bearer-token security scheme.
const TOKEN_SCHEME: &str = "token";

/// A route with path or query parameters answers `400` when they cannot be read at all
/// (a path segment that is not UTF-8, a repeated query parameter: see `rejection`), even
/// where its own checks have nothing to refuse.
fn document_malformed_parameters(operation: &mut Operation) {
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let responses = &mut operation.responses.responses;
    if has_parameters && !responses.contains_key("400") {
        responses.insert(
            "400".into(),
            RefOr::T(error_response(
                "A path or query parameter that cannot be read (`bad_request`)",
            )),
        );
    }
}

const BODY_TOO_LARGE: &str = "The body is larger than the limit (`--max-body-bytes`)";
const READ_NOT_CONFIRMED: &str =
    "No quorum: the read could not be confirmed by the leader; retry, or read with `?stale=true`";
const WRITE_UNEXPECTED: &str = "The write was applied with an unexpected outcome (a bug)";
const WRITE_NOT_COMMITTED: &str =
    "No quorum (or this manager is shutting down): the write was not committed; retry";

/// Operations other than `GET` that commit nothing through Raft (a dry run; a route that
/// only says it is not supported): no write errors.
const NOT_WRITES: [&str; 2] = ["plan_job", "transfer_leader"];

/// The answers every route of a kind can give, documented here once rather than on each
/// handler (a handler's own text for the same status wins):
/// - a route with a body: `413` past the body limit;
/// - a read with `?stale`: `503` when the leader cannot confirm it;
/// - a write: `500` for an outcome it did not expect, `503` when it was not committed.
fn document_common_errors(operation: &mut Operation, method: &Method) {
    let reads_linearizably = operation
        .parameters
        .as_ref()
        .is_some_and(|ps| ps.iter().any(|p| p.name == "stale"));
    let writes = *method != Method::GET
        && !operation
            .operation_id
            .as_deref()
            .is_some_and(|id| NOT_WRITES.contains(&id));
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_response(description)));
    };
    if operation.request_body.is_some() {
        add("413", BODY_TOO_LARGE);
    }
    if reads_linearizably {
        add("503", READ_NOT_CONFIRMED);
    }
    if writes {
        add("500", WRITE_UNEXPECTED);
        add("503", WRITE_NOT_COMMITTED);
    }
}

/// An error answer: the error body.
fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
        .build()
}

/// The `401`/`403` answers and the token a route takes with ACL on: none for public
/// routes; `401` without a valid token otherwise; `403` too when a `read` token is not
/// enough.
fn document_access(operation: &mut Operation, method: &Method, path: &str) {
    let (unauthorized, forbidden) = match access::required(method, path) {
        Access::Public | Access::Peer | Access::Agent => return,
        Access::AnyToken | Access::Token(TokenKind::Read) => (true, false),
        Access::Token(_) => (true, true),
    };
    // Without ACL no token is needed: either requirement is met.
    operation.security = Some(vec![
        SecurityRequirement::default(),
        SecurityRequirement::new(TOKEN_SCHEME, Vec::<String>::new()),
    ]);
    let responses = &mut operation.responses.responses;
    if unauthorized {
        responses.insert(
            "401".into(),
            RefOr::T(error_response(
                "ACL is on and the request has no valid token (`unauthorized`)",
            )),
        );
    }
    if forbidden {
        responses.insert(
            "403".into(),
            RefOr::T(error_response(
                "ACL is on and the token's kind does not allow this (`forbidden`)",
            )),
        );
    }
}

/// `gantry_api::headers::INDEX_HEADER` as documented (HTTP header names are case-insensitive).
const INDEX_HEADER_NAME: &str = "X-Gantry-Index";

/// The document as JSON, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
    )
)]
pub async fn get() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// A boolean query flag as the server reads it: `true`, `1` or empty (the bare `?flag`)
/// for yes, `false` or `0` for no; anything else is a `400`.
pub fn flag_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["true", "false", "1", "0", ""]))
        .into()
}

/// A duration parameter (`?wait=30s`): the same text as the durations of a job spec.
pub fn duration_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(gantry_api::duration::SCHEMA_PATTERN))
        .examples(["30s"])
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Folders of `src/` whose routes are left out of the document on purpose (see the
    /// module comment).
    const UNDOCUMENTED: [&str; 2] = ["raft", "dispatcher"];

    /// `(METHOD, path)` of every `.route(...)` call in the server's source, outside the
    /// undocumented folders and outside test modules.
    fn routes_in_source() -> BTreeSet<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut sources = Vec::new();
        let mut files = vec![root.clone()];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path != root && UNDOCUMENTED.contains(&name) {
                    continue;
                }
                for entry in std::fs::read_dir(&path).unwrap() {
                    files.push(entry.unwrap().path());
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                sources.push((path, stem, code));
            }
        }
        // `const NAME: &str = "..."` of each file, for routes whose path is a constant.
        let constant = regex::Regex::new(r#"const ([A-Z_]+): &str = "([^"]*)""#).unwrap();
        let mut constants = std::collections::BTreeMap::new();
        for (_, stem, code) in &sources {
            for c in constant.captures_iter(code) {
                constants.insert((stem.clone(), c[1].to_string()), c[2].to_string());
            }
        }
        let mut routes = BTreeSet::new();
        for (path, stem, code) in &sources {
            for route in route_calls(code, path, |name| {
                let (module, name) = name.rsplit_once("::").unwrap_or((stem, name));
                let module = module.rsplit("::").next().unwrap_or(module);
                constants
                    .get(&(module.to_string(), name.to_string()))
                    .cloned()
            }) {
                routes.insert(route);
            }
        }
        routes
    }

    /// The routes of one file: each `.route("path" or CONSTANT, get(..).post(..))`.
    fn route_calls(
        code: &str,
        file: &Path,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Vec<(String, String)> {
        assert!(
            !code.contains(".nest("),
            "{}: nested routers are not understood by this test; list the routes flat",
            file.display()
        );
        let method = regex::Regex::new(r"\b(get|post|put|delete|patch)\(").unwrap();
        let mut found = Vec::new();
        for (start, _) in code.match_indices(".route(") {
            let call = balanced(&code[start + ".route(".len()..]).trim_start();
            let (path, handlers) = match call.strip_prefix('"') {
                Some(literal) => {
                    let end = literal.find('"').unwrap();
                    (literal[..end].to_string(), &literal[end + 1..])
                }
                None => {
                    let (name, handlers) = call.split_once(',').unwrap_or((call, ""));
                    let path = resolve(name.trim()).unwrap_or_else(|| {
                        panic!(
                            "{}: cannot find the route path `{}`",
                            file.display(),
                            name.trim()
                        )
                    });
                    (path, handlers)
                }
            };
            for m in method.captures_iter(handlers) {
                found.push((m[1].to_uppercase(), path.clone()));
            }
        }
        found
    }

    /// The text up to the parenthesis that closes the one just opened.
    fn balanced(text: &str) -> &str {
        let mut depth = 1;
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[..i];
                    }
                }
                _ => {}
            }
        }
        text
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = ApiDoc::openapi();
        let mut routes = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    routes.insert((method.to_string(), path.clone()));
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_of_the_router_is_documented_and_nothing_else() {
        let routes = routes_in_source();
        assert!(
            routes.contains(&("GET".into(), "/v1/jobs".into())),
            "the source scan found no job routes: {routes:?}"
        );
        let documented = documented();
        let missing: Vec<_> = routes.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes without #[utoipa::path] in ApiDoc: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "documented routes the router does not serve: {unknown:?}"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = ApiDoc::openapi();
        let mut seen = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for operation in operations.into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(
                    seen.insert(id.clone()),
                    "{path}: operation id `{id}` is taken"
                );
            }
        }
    }

    #[test]
    fn every_operation_documents_its_errors_and_the_index_header() {
        let doc = ApiDoc::openapi();
        for (path, item) in &doc.paths.paths {
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for operation in operations.into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(!operation.responses.responses.is_empty(), "{path} {id}");
                for (status, response) in &operation.responses.responses {
                    let RefOr::T(response) = response else {
                        panic!("{path} {id} {status}: a response reference");
                    };
                    assert!(
                        response.headers.contains_key(INDEX_HEADER_NAME),
                        "{path} {id} {status}: no index header"
                    );
                    if status.starts_with('4') || status.starts_with('5') {
                        let json = response.content.get("application/json");
                        let schema = json.and_then(|c| c.schema.as_ref());
                        assert!(
                            matches!(schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody")),
                            "{path} {id} {status}: the error answer is not an ErrorBody"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_is_valid_json_with_the_job_spec() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let spec = &doc["components"]["schemas"]["JobSpec"];
        assert_eq!(spec["additionalProperties"], false, "{spec}");
        let duration = &doc["components"]["schemas"]["GDuration"];
        assert_eq!(duration["type"], "string", "{duration}");
        let pattern = regex::Regex::new(duration["pattern"].as_str().unwrap()).unwrap();
        for text in ["2s", "1m30s", "1m 30s", "500ms", "1.5h"] {
            assert!(pattern.is_match(text), "{text}");
            assert!(text.parse::<gantry_api::GDuration>().is_ok(), "{text}");
        }
        for text in ["", "5", "soon", "-1s"] {
            assert!(!pattern.is_match(text), "{text}");
        }
    }
}
