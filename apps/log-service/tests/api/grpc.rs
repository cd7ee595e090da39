//! The distributed-logging gRPC API against clients generated from the system's ORIGINAL
//! definitions (`tests/proto/`, compiled by build.rs into `OUT_DIR/original/`), never from
//! log-service's own protos: every field must decode right on the wire. And gRPC server
//! reflection, through tonic-reflection's client, as `grpcurl` uses it.

use std::collections::HashSet;

use futures_util::StreamExt;
use prost::Message as _;
use prost_types::value::Kind;
use prost_types::{FileDescriptorProto, Struct};
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use crate::helpers::{TestApp, spawn_app};

/// Clients generated from the original `logs.proto` and `query.proto`.
mod original {
    pub mod logs {
        include!(concat!(env!("OUT_DIR"), "/original/logs.rs"));
    }
    pub mod query {
        include!(concat!(env!("OUT_DIR"), "/original/query.rs"));
    }
}

use original::logs::log_ingestion_service_client::LogIngestionServiceClient;
use original::logs::{Log as SentLog, LogLevel};
use original::query::query_service_client::QueryServiceClient;
use original::query::{Empty, Log as ReadLog, TraceIdRequest};

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .expect("grpc connects")
}

/// A root entry and its child's error, on one trace, every field set.
fn entries() -> [SentLog; 2] {
    let root = SentLog {
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        parent_id: String::new(),
        span_id: "b7ad6b7169203331".into(),
        service: "checkout".into(),
        message: "order received".into(),
        level: LogLevel::Warn.into(),
        timestamp: "2025-04-16T14:30:00Z".into(),
    };
    let child = SentLog {
        parent_id: root.span_id.clone(),
        span_id: "00f067aa0ba902b7".into(),
        service: "payments".into(),
        message: "card declined".into(),
        level: LogLevel::Error.into(),
        timestamp: "2025-04-16T14:30:01Z".into(),
        ..root.clone()
    };
    [root, child]
}

/// What the query service must answer for `sent`: the same seven fields, the level spelled as a
/// lower-case name.
fn read_back(sent: &SentLog, level: &str) -> ReadLog {
    ReadLog {
        trace_id: sent.trace_id.clone(),
        parent_id: sent.parent_id.clone(),
        span_id: sent.span_id.clone(),
        service: sent.service.clone(),
        message: sent.message.clone(),
        level: level.into(),
        timestamp: sent.timestamp.clone(),
    }
}

fn string_of(value: &prost_types::Value) -> &str {
    match &value.kind {
        Some(Kind::StringValue(s)) => s,
        other => panic!("a string: {other:?}"),
    }
}

fn list_of<'a>(graph: &'a Struct, key: &str) -> &'a [prost_types::Value] {
    match &graph.fields[key].kind {
        Some(Kind::ListValue(list)) => &list.values,
        other => panic!("{key} is a list: {other:?}"),
    }
}

/// The graph of an original client's `Dag`: the ids of its nodes and its edges.
fn graph_of(graph: &Struct) -> (Vec<String>, Vec<(String, String)>) {
    let structs = |key| {
        list_of(graph, key).iter().map(move |v| match &v.kind {
            Some(Kind::StructValue(s)) => s.clone(),
            other => panic!("{key} holds structs: {other:?}"),
        })
    };
    let nodes = structs("nodes")
        .map(|n| string_of(&n.fields["id"]).to_owned())
        .collect();
    let edges = structs("edges")
        .map(|e| {
            let end = |k| string_of(&e.fields[k]).to_owned();
            (end("source"), end("target"))
        })
        .collect();
    (nodes, edges)
}

#[tokio::test]
async fn an_original_client_round_trips_every_field() {
    let app = spawn_app().await;
    let mut ingest = LogIngestionServiceClient::new(channel(&app).await);
    let [root, child] = entries();
    for entry in [&root, &child] {
        let ack = ingest.send_log(entry.clone()).await.unwrap().into_inner();
        assert_eq!(ack.status, "ok");
    }
    let mut query = QueryServiceClient::new(channel(&app).await);
    let trace = || TraceIdRequest {
        trace_id: root.trace_id.clone(),
    };

    // Oldest first for a trace, newest first for the listing.
    let by_trace = query.get_logs_by_trace_id(trace()).await.unwrap();
    let expected = vec![read_back(&root, "warn"), read_back(&child, "error")];
    assert_eq!(by_trace.into_inner().logs, expected);
    let all = query.get_logs(Empty {}).await.unwrap().into_inner().logs;
    assert_eq!(all, expected.into_iter().rev().collect::<Vec<_>>());

    let dag = query
        .get_dag_by_trace_id(trace())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dag.trace_id, root.trace_id);
    assert_eq!(dag.root_span_id, root.span_id);
    let (mut nodes, edges) = graph_of(dag.dag_json.as_ref().expect("dagJson is set"));
    nodes.sort();
    assert_eq!(nodes, [child.span_id.clone(), root.span_id.clone()]);
    assert_eq!(edges, [(root.span_id.clone(), child.span_id.clone())]);

    // The trace holds an error, so it is the one DAG listed, the same as asked for alone.
    let dags = query.get_dags(Empty {}).await.unwrap().into_inner().dags;
    assert_eq!(dags, [dag]);

    let unknown = TraceIdRequest {
        trace_id: "ffffffffffffffffffffffffffffffff".into(),
    };
    let missing = query
        .get_logs_by_trace_id(unknown.clone())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let missing = query.get_dag_by_trace_id(unknown).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn an_unset_level_is_info_and_an_unknown_one_is_refused_by_name() {
    let app = spawn_app().await;
    let mut ingest = LogIngestionServiceClient::new(channel(&app).await);
    let entry = SentLog {
        trace_id: "1".repeat(32),
        service: "inventory".into(),
        message: "stock counted".into(),
        ..SentLog::default()
    };
    ingest.send_log(entry.clone()).await.unwrap();
    let mut query = QueryServiceClient::new(channel(&app).await);
    let request = TraceIdRequest {
        trace_id: entry.trace_id.clone(),
    };
    let logs = query.get_logs_by_trace_id(request).await.unwrap();
    let logs = logs.into_inner().logs;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].level, "info");
    assert!(
        !logs[0].timestamp.is_empty(),
        "an empty timestamp means now"
    );

    let refused = ingest
        .send_log(SentLog { level: 42, ..entry })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("level: 42 is not a LogLevel"),
        "{}",
        refused.message()
    );
    // Refused before storage: nothing but the first entry was stored.
    let mut listed = query.get_logs(Empty {}).await.unwrap().into_inner().logs;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed.pop().unwrap().message, "stock counted");
}

/// Sends `requests` on one reflection stream and collects the answers, in order; an unknown
/// symbol ends the stream with its status.
async fn reflect(
    app: &TestApp,
    requests: Vec<MessageRequest>,
) -> Vec<Result<MessageResponse, tonic::Status>> {
    let mut client = ServerReflectionClient::new(channel(app).await);
    let requests = requests.into_iter().map(|message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let answers = client
        .server_reflection_info(futures_util::stream::iter(requests))
        .await
        .expect("reflection answers")
        .into_inner();
    let answers: Vec<Result<ServerReflectionResponse, tonic::Status>> = answers.collect().await;
    answers
        .into_iter()
        .map(|a| a.map(|a| a.message_response.expect("a reflection message")))
        .collect()
}

/// The file descriptors of one reflection answer.
fn files(answer: &MessageResponse) -> Vec<FileDescriptorProto> {
    match answer {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|raw| FileDescriptorProto::decode(raw.as_slice()).expect("a file descriptor"))
            .collect(),
        other => panic!("a file descriptor answer: {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_both_services_and_resolves_their_files() {
    let app = spawn_app().await;
    let answers = reflect(
        &app,
        vec![
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("query.QueryService".into()),
            MessageRequest::FileContainingSymbol("logs.Log".into()),
            MessageRequest::FileByFilename("google/protobuf/struct.proto".into()),
        ],
    )
    .await;
    let answers: Vec<MessageResponse> = answers.into_iter().map(Result::unwrap).collect();

    let MessageResponse::ListServicesResponse(list) = &answers[0] else {
        panic!("a service list: {:?}", answers[0]);
    };
    let names: HashSet<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains("logs.LogIngestionService"), "{names:?}");
    assert!(names.contains("query.QueryService"), "{names:?}");
    assert!(
        names.contains("grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );

    // query.proto: the four methods, and the Struct import a generic client must fetch next.
    let query = &files(&answers[1])[0];
    assert_eq!(query.package(), "query");
    assert_eq!(query.dependency, ["google/protobuf/struct.proto"]);
    let methods: Vec<&str> = query.service[0].method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        ["GetLogs", "GetDags", "GetLogsByTraceId", "GetDagByTraceId"]
    );
    let dag = query
        .message_type
        .iter()
        .find(|m| m.name() == "Dag")
        .unwrap();
    let dag_json = dag.field.iter().find(|f| f.name() == "dagJson").unwrap();
    assert_eq!(
        (dag_json.number(), dag_json.type_name()),
        (3, ".google.protobuf.Struct")
    );

    // logs.proto: the original numbers, as served.
    let logs = &files(&answers[2])[0];
    let log = logs
        .message_type
        .iter()
        .find(|m| m.name() == "Log")
        .unwrap();
    let numbers: Vec<(&str, i32)> = log.field.iter().map(|f| (f.name(), f.number())).collect();
    assert_eq!(
        numbers,
        [
            ("traceId", 1),
            ("parentId", 2),
            ("spanId", 3),
            ("service", 4),
            ("message", 5),
            ("level", 6),
            ("timestamp", 7)
        ]
    );

    let structs = &files(&answers[3])[0];
    assert_eq!(structs.package(), "google.protobuf");
    assert!(structs.message_type.iter().any(|m| m.name() == "Struct"));

    let unknown = MessageRequest::FileContainingSymbol("query.NoSuchService".into());
    let answers = reflect(&app, vec![unknown]).await;
    let status = answers[0]
        .as_ref()
        .expect_err("an unknown symbol is not found");
    assert_eq!(status.code(), tonic::Code::NotFound);
}
