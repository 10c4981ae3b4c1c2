//! One DNS request in, one response out: checks the message, reads the local replica,
//! asks `answer` and writes the response (EDNS echoed, so UDP answers may exceed 512
//! bytes; past the client's size the response is truncated and the client retries over
//! TCP).

use super::answer::{self, Answer};
use crate::state::ClusterState;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use rand::seq::SliceRandom;
use std::sync::Arc;

/// The EDNS version this server speaks.
const EDNS_VERSION: u8 = 0;

pub struct Handler {
    pub state: Arc<ClusterState>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns.set_version(EDNS_VERSION);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());

        let answer = match check(request) {
            Err(code) => Answer {
                code,
                authoritative: false,
                answers: Vec::new(),
                additionals: Vec::new(),
            },
            Ok(()) => {
                // The question as asked (not lowercased): answers echo its spelling.
                let query = request.queries.queries()[0].original();
                if query.query_class() != DNSClass::IN {
                    Answer::refused()
                } else {
                    // The guard is dropped before anything is awaited.
                    let state = self.state.read();
                    let mut answer = answer::answer(query.name(), query.query_type(), &*state);
                    drop(state);
                    // Each client gets the addresses in its own order: most take the
                    // first, so the load spreads over the endpoints.
                    answer.answers.shuffle(&mut rand::rng());
                    answer
                }
            }
        };
        metadata.response_code = answer.code;
        metadata.authoritative = answer.authoritative;
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "cannot send a DNS response");
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// What the request must be: a standard query with one question, in an EDNS version we
/// speak. Otherwise the code to answer with.
fn check(request: &Request) -> Result<(), ResponseCode> {
    if request.metadata.message_type != MessageType::Query
        || request.metadata.op_code != OpCode::Query
    {
        return Err(ResponseCode::NotImp);
    }
    if request
        .edns
        .as_ref()
        .is_some_and(|edns| edns.version() > EDNS_VERSION)
    {
        return Err(ResponseCode::BADVERS);
    }
    if request.queries.queries().len() != 1 {
        return Err(ResponseCode::FormErr);
    }
    Ok(())
}
