//! The three real services export to a real log-service over OTLP/gRPC; the order's trace comes
//! back whole over REST and over gRPC (a tonic client generated from the repository's protos).

use std::collections::HashSet;

use log_service::grpc::proto::query::TraceIdRequest;
use log_service::grpc::proto::query::query_service_client::QueryServiceClient;
use serde_json::Value;
use system_tests::{LogService, StackOptions, spawn_stack, wait_for_whole_trace};

const SERVICES: [&str; 3] = ["order-gateway", "payment-service", "email-service"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_trace_is_stored_whole_in_log_service() {
    let log_service = LogService::start().await;
    let rest = log_service.rest_url();
    let otlp = log_service.otlp_grpc_endpoint();
    let grpc = log_service.grpc_url();

    let stack = spawn_stack(StackOptions {
        otlp_endpoint: Some(otlp),
        ..StackOptions::default()
    })
    .await;
    let names = stack.names();
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);
    let trace_id = response.json["trace_id"].as_str().unwrap().to_owned();

    // REST: six spans with their parent chain, and log lines of all three services.
    let trace = wait_for_whole_trace(&stack.client, &rest, &trace_id, "in log-service").await;
    let spans = trace["spans"].as_array().unwrap();
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span {name}: {spans:#?}"))
    };
    let server = by_name("POST /create-order");
    let client = by_name("POST");
    let payment = by_name("POST /process-payment");
    let publish = by_name(&format!("publish {}", names.exchange));
    let process = by_name(&format!("process {}", names.queue));
    let send = by_name("send email");
    let chain = [server, client, payment, publish, process, send];
    for pair in chain.windows(2) {
        assert_eq!(
            pair[1]["parent_span_id"], pair[0]["span_id"],
            "{} -> {}",
            pair[0]["name"], pair[1]["name"]
        );
    }
    let kinds: Vec<&str> = chain.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "SERVER", "CLIENT", "SERVER", "PRODUCER", "CONSUMER", "INTERNAL"
        ]
    );
    let services: Vec<&str> = chain
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "order-gateway",
            "order-gateway",
            "payment-service",
            "payment-service",
            "email-service",
            "email-service"
        ]
    );
    for log in trace["logs"].as_array().unwrap() {
        assert_eq!(log["trace_id"], trace_id.as_str());
        assert!(
            chain.iter().any(|s| s["span_id"] == log["span_id"]),
            "log on an unknown span: {log}"
        );
    }

    // The DAG of the trace: rooted at the gateway's span, one edge per parent link.
    let dag: Value = stack
        .client
        .get(format!("{rest}/api/v1/traces/{trace_id}/dag"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dag = if dag["dag"].is_object() {
        dag["dag"].clone()
    } else {
        dag
    };
    assert_eq!(dag["edges"].as_array().unwrap().len(), 5, "{dag}");

    // gRPC query.QueryService: the same logs and DAG.
    let mut query = QueryServiceClient::connect(grpc).await.unwrap();
    let logs = query
        .get_logs_by_trace_id(TraceIdRequest {
            trace_id: trace_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .logs;
    let grpc_services: HashSet<&str> = logs.iter().map(|l| l.service.as_str()).collect();
    assert_eq!(grpc_services, HashSet::from(SERVICES));
    assert!(logs.iter().all(|l| l.trace_id == trace_id));
    let grpc_dag = query
        .get_dag_by_trace_id(TraceIdRequest {
            trace_id: trace_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grpc_dag.trace_id, trace_id);
    assert_eq!(grpc_dag.root_span_id, server["span_id"].as_str().unwrap());
    let unknown = query
        .get_dag_by_trace_id(TraceIdRequest {
            trace_id: "0".repeat(32),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_logs_also_travel_over_otlp_http_protobuf() {
    let log_service = LogService::start().await;
    let rest = log_service.rest_url();
    let otlp_http = log_service.otlp_http_endpoint();

    let stack = spawn_stack(StackOptions {
        otlp_endpoint: Some(otlp_http),
        env: vec![("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into())],
        ..StackOptions::default()
    })
    .await;
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);
    let trace_id = response.json["trace_id"].as_str().unwrap();

    wait_for_whole_trace(&stack.client, &rest, trace_id, "over OTLP/HTTP").await;
    stack.stop().await;
}
