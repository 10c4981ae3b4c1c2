//! `gantry dev`: a three-manager cluster and one agent on this machine, for trying
//! Gantry out.
//!
//! The managers and the agent run in this process, each with its own temporary dir; the
//! dirs are removed on exit unless `--keep` is given. ACL is off (a banner says so at
//! start): anyone who can reach the ports can use the cluster. The agent offers the Docker driver
//! when the engine answers, and the process driver always. Ctrl-C stops the agent —
//! which stops and removes the containers it started — and then the managers.

use clap::Args;
use gantry_agent::{AgentConfig, OnShutdown};
use gantry_server::ServerConfig;
use std::net::{IpAddr, SocketAddr};

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Port of the first manager; the others use +10 and +20, the agent's endpoint +1.
    #[arg(long, env = "GANTRY_DEV_PORT", default_value_t = 4646)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "GANTRY_DEV_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Keep the data dirs after exit (their path is printed).
    #[arg(long)]
    pub keep: bool,

    /// Serve DNS for the services on this address (UDP and TCP) from the first manager,
    /// e.g. 127.0.0.1:8600 (see `gantry server --help`).
    #[arg(long, env = "GANTRY_DEV_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,
}

/// The dev cluster runs without ACL, and says so where nobody can miss it.
fn print_acl_banner(addrs: &[SocketAddr]) {
    let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    let lines = [
        format!(
            "ACL DISABLED: anyone who can reach {} can change this cluster",
            addrs.join(", ")
        ),
        "No token is needed for anything. For a cluster others can reach, run".to_string(),
        "`gantry server --acl` with a cluster secret instead (see the README, Auth).".to_string(),
    ];
    let width = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let rule = "!".repeat(width + 8);
    println!("{rule}");
    for line in &lines {
        println!("!!! {line:<width$} !!!");
    }
    println!("{rule}");
    println!();
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let root = tempfile::Builder::new().prefix("gantry-dev-").tempdir()?;
    let addrs: Vec<SocketAddr> = (0..3u16)
        .map(|i| SocketAddr::new(args.bind, args.port + i * 10))
        .collect();
    let initial: Vec<(u64, String)> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| (i as u64 + 1, addr.to_string()))
        .collect();

    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut managers = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut config = ServerConfig::new(id, *addr, root.path().join(format!("manager-{id}")));
        config.initial_cluster = initial.clone();
        if id == 1 {
            config.dns_listen = args.dns_listen;
        }
        let mut stopped = stop.subscribe();
        managers.push(tokio::spawn(gantry_server::run(config, async move {
            let _ = stopped.recv().await;
        })));
    }

    let node_name = format!("dev-{}", args.port);
    let mut agent_config = AgentConfig::new(
        addrs.iter().map(|a| a.to_string()).collect(),
        node_name.clone(),
        root.path().join("agent"),
    );
    agent_config.listen = SocketAddr::new(args.bind, args.port + 1);
    agent_config.address = args.bind.to_string();
    // Throw-away tasks: a short grace keeps Ctrl-C quick.
    agent_config.stop_grace = std::time::Duration::from_secs(2);
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(gantry_agent::run(
        agent_config,
        OnShutdown::RemoveTasks,
        async move {
            let _ = agent_stopped.await;
        },
    ));

    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    print_acl_banner(&addrs);
    println!("Gantry dev cluster: 3 managers and 1 agent");
    println!("  API       {}", urls[0]);
    for (i, url) in urls.iter().enumerate() {
        println!("  manager {}  {url}", i + 1);
    }
    println!("  agent     node {node_name}");
    if let Some(dns) = args.dns_listen {
        println!("  DNS       {dns} (manager 1, UDP and TCP)");
    }
    println!("  data      {}", root.path().display());
    println!();
    println!("Submit the example job:");
    println!(
        "  curl -X POST -H 'Content-Type: application/yaml' --data-binary @deploy/examples/web.yaml {}/v1/jobs",
        urls[0]
    );
    println!("  curl {}/v1/jobs", urls[0]);
    if let Some(dns) = args.dns_listen {
        println!(
            "  dig @{} -p {} web-http.service.gantry SRV",
            dns.ip(),
            dns.port()
        );
    }
    println!("Ctrl-C stops the cluster.");

    super::shutdown::signal().await;
    // The agent first: it stops and removes its containers, then the managers stop.
    let _ = stop_agent.send(());
    match agent.await {
        Ok(Err(e)) => eprintln!("agent stopped with an error: {e:#}"),
        Err(e) => eprintln!("agent task failed: {e}"),
        Ok(Ok(())) => {}
    }
    let _ = stop.send(());
    for manager in managers {
        if let Ok(Err(e)) = manager.await {
            eprintln!("manager stopped with an error: {e:#}");
        }
    }
    if args.keep {
        let kept = root.keep();
        println!("kept the data in {}", kept.display());
    }
    Ok(())
}
