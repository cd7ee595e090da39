//! Whether the broker `up` hands the services answers at all: a missing broker is a one-line
//! error before anything starts, not three services retrying in the background.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

/// `host:port` of an AMQP URL (`amqp://user:pass@host:port/vhost`), default port 5672.
fn broker_addr(amqp_url: &str) -> anyhow::Result<String> {
    let rest = amqp_url
        .strip_prefix("amqp://")
        .or_else(|| amqp_url.strip_prefix("amqps://"))
        .ok_or_else(|| anyhow!("an AMQP URL does not start with amqp:// or amqps://"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if host_port.is_empty() {
        bail!("an AMQP URL names no host");
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host_port.ends_with(']');
    Ok(if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    })
}

/// Checks that at least one node of `amqp_urls` (one URL, or a cluster's, comma-separated)
/// accepts a TCP connection: the services fail over between the nodes, so one is enough.
pub(super) fn check(amqp_urls: &str) -> anyhow::Result<()> {
    let mut addrs = Vec::new();
    for url in amqp_urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        addrs.push(broker_addr(url)?);
    }
    if addrs.is_empty() {
        bail!("--amqp-url names no broker");
    }
    let reachable = addrs.iter().any(|addr| {
        addr.to_socket_addrs()
            .ok()
            .into_iter()
            .flatten()
            .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    });
    if !reachable {
        bail!(
            "RabbitMQ is not reachable at {}; start it with scripts/ensure-broker.sh (or `sudo rabbitmq-server -detached`), or pass --amqp-url",
            addrs.join(", ")
        );
    }
    Ok(())
}

/// The cluster script, relative to the repository's root.
const CLUSTER_SCRIPT: &str = "scripts/rabbitmq-cluster.sh";

/// Starts a local cluster of `nodes` RabbitMQ nodes (idempotently: running nodes are kept) with
/// the repository's script, found in the current directory or above `bins` (`target/<profile>`),
/// and returns its nodes' AMQP URLs, comma-separated.
pub(super) fn start_cluster(nodes: u8, bins: &std::path::Path) -> anyhow::Result<String> {
    let script = [
        std::path::PathBuf::from(CLUSTER_SCRIPT),
        bins.join("../..").join(CLUSTER_SCRIPT),
    ]
    .into_iter()
    .find(|path| path.is_file())
    .ok_or_else(|| {
        anyhow!("--brokers needs {CLUSTER_SCRIPT}: run tracehop from the tracehop repository")
    })?;
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} {} failed ({})",
                script.display(),
                args.join(" "),
                out.status
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let started = run(&["start", &nodes.to_string()])?;
    for line in started.lines() {
        println!("{line}");
    }
    let urls = run(&["url"])?;
    if urls.is_empty() {
        bail!("{} url printed no URL", script.display());
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_address_comes_from_the_amqp_url() {
        assert_eq!(
            broker_addr("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap(),
            "127.0.0.1:5672"
        );
        assert_eq!(broker_addr("amqp://rabbit/%2f").unwrap(), "rabbit:5672");
        assert_eq!(broker_addr("amqp://u:p@h:1234").unwrap(), "h:1234");
        assert!(broker_addr("http://h").is_err());
    }

    #[test]
    fn one_answering_node_of_a_cluster_is_enough() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = |port: u16| format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        assert!(check(&format!("{},{}", url(closed), url(open))).is_ok());
        let err = check(&url(closed)).unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
        assert!(check("amqp://a:1,http://b").is_err());
    }
}
