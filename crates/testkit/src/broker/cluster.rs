//! A RabbitMQ cluster of private nodes on one machine, for the tests where clustering is the
//! point: a quorum queue's leader stopped under load, a node restarted.

use std::time::Duration;

use super::RabbitNode;

/// [`RabbitNode`]s sharing one Erlang cookie, joined into one cluster with
/// `rabbitmqctl join_cluster` (every node after the first joins the first). Dropping it kills
/// every node and removes their directories.
pub struct RabbitCluster {
    nodes: Vec<RabbitNode>,
}

impl RabbitCluster {
    /// Starts `size` nodes and joins them; returns once every node reports the whole cluster
    /// running.
    pub async fn start(size: usize) -> Self {
        assert!(size >= 1, "a cluster has at least one node");
        let cookie = uuid::Uuid::new_v4().simple().to_string();
        let mut nodes = Vec::with_capacity(size);
        for _ in 0..size {
            nodes.push(RabbitNode::start_with_cookie(&cookie).await);
        }
        let seed = nodes[0].name().to_owned();
        for node in &nodes[1..] {
            for args in [
                &["stop_app"][..],
                &["join_cluster", &seed][..],
                &["start_app"][..],
            ] {
                let out = node.ctl(args).await;
                assert!(
                    out.status.success(),
                    "rabbitmqctl {} on {} failed: {}",
                    args.join(" "),
                    node.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let cluster = Self { nodes };
        cluster.wait_running(size, Duration::from_secs(60)).await;
        cluster
    }

    /// The AMQP URLs of every node, comma-separated, as `AMQP_URL` takes them.
    pub fn amqp_url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RabbitNode::amqp_url).collect();
        urls.join(",")
    }

    /// The node at `index` (in start order).
    pub fn node(&mut self, index: usize) -> &mut RabbitNode {
        &mut self.nodes[index]
    }

    /// The index of the node that leads quorum queue `queue`, asked of a running node.
    pub async fn leader_of(&mut self, queue: &str) -> usize {
        let asker = self.running_node().await;
        let out = self.nodes[asker]
            .ctl(&[
                "list_queues",
                "name",
                "leader",
                "--no-table-headers",
                "--quiet",
            ])
            .await;
        let listing = String::from_utf8_lossy(&out.stdout);
        let leader = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(name, _)| name.trim() == queue)
            .map(|(_, leader)| leader.trim().to_owned())
            .unwrap_or_else(|| panic!("queue {queue} not in the listing:\n{listing}"));
        self.nodes
            .iter()
            .position(|node| node.name() == leader)
            .unwrap_or_else(|| panic!("leader {leader} of {queue} is not a node of the cluster"))
    }

    /// Waits until a running node reports `expected` running nodes; panics after `timeout`.
    pub async fn wait_running(&self, expected: usize, timeout: Duration) {
        let first = &self.nodes[0];
        crate::wait_until("the cluster's nodes to run", timeout, || async {
            let out = first.ctl(&["cluster_status", "--formatter", "json"]).await;
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let running = status["running_nodes"].as_array()?.len();
            (running == expected).then_some(())
        })
        .await;
    }

    async fn running_node(&mut self) -> usize {
        (0..self.nodes.len())
            .find(|&i| self.nodes[i].is_running())
            .expect("a running node")
    }
}
