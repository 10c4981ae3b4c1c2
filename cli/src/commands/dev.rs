//! `gantry dev`: a three-manager cluster on this machine, for trying Gantry out.
//!
//! The managers run in this process, each with its own temporary data dir and port; the
//! dirs are removed on exit unless `--keep` is given. Ctrl-C stops everything.

use clap::Args;
use gantry_server::ServerConfig;
use std::net::{IpAddr, SocketAddr};

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Port of the first manager; the others use +10 and +20.
    #[arg(long, env = "GANTRY_DEV_PORT", default_value_t = 4646)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "GANTRY_DEV_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Keep the data dirs after exit (their path is printed).
    #[arg(long)]
    pub keep: bool,
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
        let mut stopped = stop.subscribe();
        managers.push(tokio::spawn(gantry_server::run(config, async move {
            let _ = stopped.recv().await;
        })));
    }

    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    println!("Gantry dev cluster: 3 managers (auth off: any client can write)");
    for (i, url) in urls.iter().enumerate() {
        println!("  manager {}  {url}", i + 1);
    }
    println!("  data      {}", root.path().display());
    println!();
    println!("Submit the example job:");
    println!(
        "  curl -X POST -H 'Content-Type: application/yaml' --data-binary @deploy/examples/web.yaml {}/v1/jobs",
        urls[0]
    );
    println!("  curl {}/v1/jobs", urls[0]);
    println!("Ctrl-C stops the cluster.");

    super::shutdown::signal().await;
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
