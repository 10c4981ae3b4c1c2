//! The client against a stand-in manager (a small axum app on a local port):
//! failover, the bearer token, the index header, path encoding and the
//! mapping of error answers.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::*;
use crate::error::{codes, ErrorBody};
use crate::job::fixtures::{EXAMPLE_JSON, EXAMPLE_YAML};
use crate::job::{parse_job_spec, JobType};
use crate::status::{roles, Member};

const TOKEN: &str = "s3cret";

fn example() -> JobSpec {
    parse_job_spec(EXAMPLE_JSON.as_bytes(), None).unwrap()
}

fn fail(status: StatusCode, body: ErrorBody) -> Response {
    (status, Json(body)).into_response()
}

fn with_index(index: u64, body: impl IntoResponse) -> Response {
    ([(INDEX_HEADER, index.to_string())], body).into_response()
}

async fn status(headers: HeaderMap) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return fail(
            StatusCode::UNAUTHORIZED,
            ErrorBody::new(codes::UNAUTHORIZED, "bad token"),
        );
    }
    Json(StatusResponse {
        id: 1,
        role: roles::LEADER.into(),
        leader: None,
        term: 2,
        commit_index: 10,
        applied_index: 10,
        members: vec![],
    })
    .into_response()
}

/// Echoes the query string in `status` so the test can see it.
async fn list_jobs(RawQuery(query): RawQuery) -> Response {
    let summary = JobSummary {
        id: "web".into(),
        kind: JobType::Service,
        replicas: 3,
        version: 1,
        status: query.unwrap_or_default(),
        modify_index: 5,
    };
    with_index(42, Json(vec![summary]))
}

async fn get_job(Path(id): Path<String>) -> Response {
    if id != "web" {
        return fail(
            StatusCode::NOT_FOUND,
            ErrorBody::new(codes::NOT_FOUND, format!("no job {id:?}")),
        );
    }
    let job = Job {
        spec: example(),
        version: 1,
        status: "running".into(),
        submitted_at_ms: 1,
        create_index: 5,
        modify_index: 5,
        unplaced: vec![],
    };
    with_index(43, Json(job))
}

async fn register(headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type == Some("text/plain") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected JSON or YAML").into_response();
    }
    let spec = parse_job_spec(&body, content_type).and_then(|s| s.validate().map(|()| s));
    match spec {
        Ok(spec) => {
            let registered = JobRegistered {
                id: spec.id,
                version: 1,
                index: 44,
                deployment_id: None,
            };
            (StatusCode::CREATED, Json(registered)).into_response()
        }
        Err(e) => fail(StatusCode::BAD_REQUEST, e.into()),
    }
}

async fn delete_job(Path(id): Path<String>) -> Response {
    with_index(46, Json(JobDeleted { id, index: 45 }))
}

/// Echoes the new replica count as the version.
async fn scale(Path(id): Path<String>, Json(request): Json<ScaleRequest>) -> Response {
    let registered = JobRegistered {
        id,
        version: request.replicas.into(),
        index: 47,
        deployment_id: None,
    };
    (StatusCode::CREATED, Json(registered)).into_response()
}

fn members(ids: &[u64]) -> Json<MembersResponse> {
    let members = ids
        .iter()
        .map(|&id| Member {
            id,
            addr: format!("127.0.0.1:46{id}6"),
            voter: true,
        })
        .collect();
    Json(MembersResponse { members })
}

async fn add_peer(Json(request): Json<AddPeerRequest>) -> Json<MembersResponse> {
    assert_eq!((request.id, request.addr.as_str()), (4, "127.0.0.1:4676"));
    members(&[1, 4])
}

async fn remove_peer(Path(id): Path<u64>) -> Json<MembersResponse> {
    assert_eq!(id, 4);
    members(&[1])
}

/// Starts the stand-in manager and returns its `host:port`.
async fn manager() -> String {
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/jobs", get(list_jobs).post(register))
        .route("/v1/jobs/{id}", get(get_job).delete(delete_job))
        .route("/v1/jobs/{id}/scale", post(scale))
        .route("/v1/operator/raft/peers", post(add_peer))
        .route("/v1/operator/raft/peers/{id}", delete(remove_peer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An address nothing listens on: connections to it are refused.
fn dead() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn client() -> Client {
    Client::new([manager().await], Some(TOKEN.into())).unwrap()
}

#[tokio::test]
async fn fails_over_to_a_live_manager_and_stays_there() {
    let live = manager().await;
    let client = Client::new([dead(), dead(), live], Some(TOKEN.into())).unwrap();
    assert_eq!(client.status().await.unwrap().role, "leader");
    assert_eq!(client.inner.current.load(Ordering::Relaxed), 2);
    assert_eq!(client.status().await.unwrap().id, 1);
}

#[tokio::test]
async fn all_managers_down_is_unreachable_with_each_reason() {
    let (a, b) = (dead(), dead());
    let client = Client::new([&a, &b], None).unwrap();
    let err = client.status().await.unwrap_err();
    match &err {
        ClientError::Unreachable(failures) => {
            let got: Vec<(&str, &str)> = failures
                .iter()
                .map(|f| (f.manager.as_str(), f.reason.as_str()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (a.as_str(), "connection refused"),
                    (b.as_str(), "connection refused")
                ]
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("no manager reachable: {a}: connection refused; {b}: connection refused")
    );
}

#[tokio::test]
async fn sends_the_bearer_token() {
    let addr = manager().await;
    let err = Client::new([&addr], None)
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some(codes::UNAUTHORIZED));
}

#[tokio::test]
async fn reads_carry_the_index() {
    let client = client().await;
    let jobs = client.list_jobs(false).await.unwrap();
    assert_eq!(jobs.index, 42);
    assert_eq!(jobs.value[0].status, "", "no query string unless stale");
    let jobs = client.list_jobs(true).await.unwrap();
    assert_eq!(jobs.value[0].status, "stale=true");

    let job = client.get_job("web", true).await.unwrap();
    assert_eq!(job.index, 43);
    assert_eq!(job.value.spec, example());
}

#[tokio::test]
async fn unknown_job_is_not_found_and_ids_are_encoded() {
    let err = client().await.get_job("a/b c", false).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "404 not_found: no job \"a/b c\"");
}

#[tokio::test]
async fn register_and_delete() {
    let client = client().await;
    let registered = client.register_job(&example()).await.unwrap();
    assert_eq!((registered.id.as_str(), registered.index), ("web", 44));

    let yaml = EXAMPLE_YAML.as_bytes().to_vec();
    client
        .register_job_raw(yaml, "application/yaml")
        .await
        .unwrap();

    assert_eq!(client.scale_job("web", 7).await.unwrap().version, 7);
    let deleted = client.delete_job("web").await.unwrap();
    assert_eq!((deleted.id.as_str(), deleted.index), ("web", 45));
}

#[tokio::test]
async fn bad_specs_come_back_as_api_errors() {
    let client = client().await;
    let body = EXAMPLE_JSON.replace("\"memory_mb\": 64", "\"memory_mb\": -64");
    let err = client
        .register_job_raw(body.into_bytes(), "application/json")
        .await
        .unwrap_err();
    let ClientError::Api { status, body } = &err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(*status, 400);
    assert_eq!(body.code(), codes::INVALID_SPEC);
    assert_eq!(
        body.error.field.as_deref(),
        Some("tasks[0].resources.memory_mb")
    );

    let err = client
        .register_job_raw(b"x".to_vec(), "text/plain")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "415 unsupported_media_type: expected JSON or YAML"
    );
}

#[tokio::test]
async fn peers() {
    let client = client().await;
    let after = client.add_peer(4, "127.0.0.1:4676").await.unwrap();
    assert_eq!(after.members.len(), 2);
    let after = client.remove_peer(4).await.unwrap();
    assert_eq!(after.members[0].id, 1);
}

#[test]
fn manager_addresses() {
    let client = Client::new(["127.0.0.1:4646, h2:1", "http://h3:2/prefix/"], None).unwrap();
    let urls: Vec<&str> = client.managers().iter().map(Url::as_str).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:4646/",
            "http://h2:1/",
            "http://h3:2/prefix/"
        ]
    );

    let call = Call::get(&["v1", "jobs", "a/b"]).query(stale_query(true));
    let url = url(&client.managers()[2], &call);
    assert_eq!(url.as_str(), "http://h3:2/prefix/v1/jobs/a%2Fb?stale=true");

    assert!(matches!(
        Client::new([" , "], None),
        Err(ClientError::Config(_))
    ));
    assert!(matches!(
        Client::new(["ftp://x:1"], None),
        Err(ClientError::Config(_))
    ));
    assert!(matches!(
        Client::new(["h:notaport"], None),
        Err(ClientError::Config(_))
    ));
}

#[test]
fn undecodable_answers() {
    let answer = Answer {
        index: None,
        body: Bytes::from_static(br#"{"id": 1, "role": 7}"#),
    };
    let err = answer.decode::<StatusResponse>().unwrap_err();
    assert_eq!(
        err,
        ClientError::Decode(
            "at role: invalid type: integer `7`, expected a string at line 1 column 19".into()
        )
    );
    assert!(matches!(answer.index(), Err(ClientError::Decode(_))));
}
