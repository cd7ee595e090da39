//! Builds the DAG of one trace: nodes are spans, edges go parent -> child.
//!
//! The input is untrusted telemetry, so the builder never walks the graph recursively and never
//! assumes it is a tree: duplicate span ids are merged, edges to unknown parents are dropped (the
//! child becomes another root), and a cycle simply leaves no parentless span, in which case the
//! earliest span is reported as the root. Everything is a single pass over sorted maps, so the
//! cost is O(n log n) whatever the shape.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Level, LogView, SpanStatus, SpanView, duration_ms};

/// One span of the DAG.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DagNode {
    pub id: String,
    pub service: String,
    pub name: String,
    /// Highest log level seen on the span (lower-case, as the distributed-logging gRPC API shows it).
    pub level: String,
    pub error: bool,
    pub duration_ms: f64,
}

/// Parent -> child.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DagEdge {
    pub source: String,
    pub target: String,
}

/// The DAG of one trace.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dag {
    pub trace_id: String,
    /// The earliest span without a parent in the trace (empty when the trace has no span id at all).
    pub root_span_id: String,
    /// Every span without a parent in the trace; more than one means broken propagation.
    pub roots: Vec<String>,
    pub error: bool,
    pub nodes: Vec<DagNode>,
    pub edges: Vec<DagEdge>,
}

impl Dag {
    /// The `dagJson` payload of the distributed-logging gRPC API: `{"nodes": [...], "edges": [...]}`.
    pub fn graph_json(&self) -> serde_json::Value {
        serde_json::json!({ "nodes": self.nodes, "edges": self.edges })
    }
}

struct Acc {
    service: String,
    name: String,
    parent: Option<String>,
    start_ns: i64,
    end_ns: i64,
    level: Option<Level>,
    error: bool,
}

/// Builds the DAG from spans, or from the logs' span and parent ids when the trace has no spans.
pub fn build(trace_id: &str, spans: &[SpanView], logs: &[LogView]) -> Dag {
    let mut nodes: BTreeMap<String, Acc> = BTreeMap::new();
    if !spans.is_empty() {
        for span in spans {
            let entry = nodes.entry(span.span_id.clone()).or_insert_with(|| Acc {
                service: span.service.clone(),
                name: span.name.clone(),
                parent: span.parent_span_id.clone(),
                start_ns: span.start_ns,
                end_ns: span.end_ns,
                level: None,
                error: false,
            });
            entry.error |= span.status_code == SpanStatus::Error;
        }
        for log in logs {
            if let Some(node) = log
                .context
                .span_id
                .as_ref()
                .and_then(|id| nodes.get_mut(id))
            {
                node.level = node.level.max(Some(log.level));
                node.error |= log.level.is_error();
            }
        }
    } else {
        for log in logs {
            let Some(span_id) = log.context.span_id.clone() else {
                continue;
            };
            let entry = nodes.entry(span_id).or_insert_with(|| Acc {
                service: log.service_name.clone(),
                name: log.message.chars().take(80).collect(),
                parent: None,
                start_ns: log.timestamp_ns,
                end_ns: log.timestamp_ns,
                level: None,
                error: false,
            });
            if entry.parent.is_none() {
                entry.parent = log.context.parent_span_id.clone();
            }
            entry.start_ns = entry.start_ns.min(log.timestamp_ns);
            entry.end_ns = entry.end_ns.max(log.timestamp_ns);
            entry.level = entry.level.max(Some(log.level));
            entry.error |= log.level.is_error();
        }
    }

    let mut edges = BTreeSet::new();
    let mut roots: Vec<(i64, String)> = Vec::new();
    for (id, acc) in &nodes {
        match acc.parent.as_deref().filter(|p| !p.is_empty()) {
            Some(parent) if parent != id && nodes.contains_key(parent) => {
                edges.insert(DagEdge {
                    source: parent.to_owned(),
                    target: id.clone(),
                });
            }
            _ => roots.push((acc.start_ns, id.clone())),
        }
    }
    roots.sort();
    // A pure cycle has no parentless span: fall back to the earliest span so a root is always named.
    let root_span_id = roots
        .first()
        .map(|(_, id)| id.clone())
        .or_else(|| {
            nodes
                .iter()
                .min_by_key(|(id, acc)| (acc.start_ns, (*id).clone()))
                .map(|(id, _)| id.clone())
        })
        .unwrap_or_default();

    let mut ordered: Vec<(&String, &Acc)> = nodes.iter().collect();
    ordered.sort_by(|a, b| (a.1.start_ns, a.0).cmp(&(b.1.start_ns, b.0)));
    let dag_nodes: Vec<DagNode> = ordered
        .into_iter()
        .map(|(id, acc)| {
            let level = match (acc.level, acc.error) {
                (Some(level), _) => level,
                (None, true) => Level::Error,
                (None, false) => Level::Info,
            };
            DagNode {
                id: id.clone(),
                service: acc.service.clone(),
                name: acc.name.clone(),
                level: level.as_str().to_ascii_lowercase(),
                error: acc.error,
                duration_ms: duration_ms(acc.start_ns, acc.end_ns),
            }
        })
        .collect();

    Dag {
        trace_id: trace_id.to_owned(),
        error: dag_nodes.iter().any(|n| n.error),
        root_span_id,
        roots: roots.into_iter().map(|(_, id)| id).collect(),
        nodes: dag_nodes,
        edges: edges.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogContext, NewSpan, SpanKind, format_ts};
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>, start: i64, status: SpanStatus) -> SpanView {
        NewSpan {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            service: format!("svc-{id}"),
            name: format!("op-{id}"),
            kind: SpanKind::Internal,
            start_ns: start,
            end_ns: start + 2_000_000,
            status,
            status_message: None,
            attributes: "{}".into(),
            links: "[]".into(),
            events: "[]".into(),
        }
        .into()
    }

    fn log(span: &str, parent: Option<&str>, ts: i64, level: Level) -> LogView {
        LogView {
            id: ts,
            tenant_id: "default".into(),
            timestamp: format_ts(ts),
            timestamp_ns: ts,
            service_name: format!("svc-{span}"),
            level,
            message: format!("msg {span}"),
            context: LogContext {
                trace_id: Some("t".into()),
                span_id: Some(span.into()),
                parent_span_id: parent.map(str::to_owned),
                ..LogContext::default()
            },
            metadata: json!({}),
        }
    }

    #[test]
    fn a_chain_of_spans_gives_one_root_and_parent_child_edges() {
        let spans = vec![
            span("c", Some("b"), 30, SpanStatus::Unset),
            span("a", None, 10, SpanStatus::Unset),
            span("b", Some("a"), 20, SpanStatus::Ok),
        ];
        let dag = build("t", &spans, &[]);
        assert_eq!(dag.root_span_id, "a");
        assert_eq!(dag.roots, vec!["a"]);
        let ids: Vec<_> = dag.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            dag.edges,
            vec![
                DagEdge {
                    source: "a".into(),
                    target: "b".into()
                },
                DagEdge {
                    source: "b".into(),
                    target: "c".into()
                },
            ]
        );
        assert!(!dag.error);
        assert_eq!(dag.nodes[0].duration_ms, 2.0);
    }

    #[test]
    fn error_comes_from_span_status_or_an_error_log_on_the_span() {
        let spans = vec![
            span("a", None, 10, SpanStatus::Unset),
            span("b", Some("a"), 20, SpanStatus::Error),
            span("c", Some("a"), 30, SpanStatus::Unset),
        ];
        let logs = vec![
            log("c", None, 31, Level::Error),
            log("a", None, 11, Level::Info),
        ];
        let dag = build("t", &spans, &logs);
        let by_id = |id: &str| dag.nodes.iter().find(|n| n.id == id).unwrap().clone();
        assert!(!by_id("a").error);
        assert_eq!(by_id("a").level, "info");
        assert!(by_id("b").error);
        assert!(by_id("c").error);
        assert_eq!(by_id("c").level, "error");
        assert!(dag.error);
    }

    #[test]
    fn orphans_and_several_roots_are_all_reported_with_the_earliest_as_root() {
        let spans = vec![
            span("late-root", None, 50, SpanStatus::Unset),
            span("orphan", Some("missing"), 5, SpanStatus::Unset),
            span("child", Some("late-root"), 60, SpanStatus::Unset),
        ];
        let dag = build("t", &spans, &[]);
        assert_eq!(dag.root_span_id, "orphan");
        assert_eq!(dag.roots, vec!["orphan", "late-root"]);
        assert_eq!(dag.edges.len(), 1);
    }

    #[test]
    fn cycles_and_self_parents_terminate_and_still_name_a_root() {
        let spans = vec![
            span("x", Some("y"), 20, SpanStatus::Unset),
            span("y", Some("x"), 10, SpanStatus::Unset),
            span("z", Some("z"), 30, SpanStatus::Unset),
        ];
        let dag = build("t", &spans, &[]);
        assert_eq!(dag.edges.len(), 2);
        assert_eq!(dag.roots, vec!["z"]);
        assert_eq!(dag.root_span_id, "z");
        let pure_cycle = build("t", &spans[..2], &[]);
        assert!(pure_cycle.roots.is_empty());
        assert_eq!(pure_cycle.root_span_id, "y");
    }

    #[test]
    fn duplicate_span_ids_are_merged() {
        let spans = vec![
            span("a", None, 10, SpanStatus::Unset),
            span("a", None, 10, SpanStatus::Error),
        ];
        let dag = build("t", &spans, &[]);
        assert_eq!(dag.nodes.len(), 1);
        assert!(dag.nodes[0].error);
    }

    #[test]
    fn without_spans_the_logs_span_and_parent_ids_give_the_graph() {
        let logs = vec![
            log("root", None, 1_000_000, Level::Info),
            log("child", Some("root"), 2_000_000, Level::Warn),
            log("child", Some("root"), 5_000_000, Level::Error),
            log("root", None, 9_000_000, Level::Debug),
        ];
        let dag = build("t", &[], &logs);
        assert_eq!(dag.root_span_id, "root");
        assert_eq!(
            dag.edges,
            vec![DagEdge {
                source: "root".into(),
                target: "child".into()
            }]
        );
        let child = dag.nodes.iter().find(|n| n.id == "child").unwrap();
        assert_eq!(child.level, "error");
        assert!(child.error);
        assert_eq!(child.duration_ms, 3.0);
        let root = dag.nodes.iter().find(|n| n.id == "root").unwrap();
        assert_eq!(root.duration_ms, 8.0);
    }

    #[test]
    fn a_large_random_graph_builds_quickly() {
        let mut spans = Vec::new();
        for i in 0..20_000i64 {
            let parent = format!("s{}", (i * 7919) % 20_000);
            spans.push(span(&format!("s{i}"), Some(&parent), i, SpanStatus::Unset));
        }
        let start = std::time::Instant::now();
        let dag = build("t", &spans, &[]);
        assert_eq!(dag.nodes.len(), 20_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
