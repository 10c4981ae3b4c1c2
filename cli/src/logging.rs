//! Log setup shared by every subcommand: human-readable text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// hickory-server logs every DNS question it answers at `info`: a manager with
/// `--dns-listen` would write a line per lookup. It is held to `warn` unless the filter
/// names it (`--log info,hickory_server=info` to see them).
const QUIET_DNS: &str = "hickory_server=warn";

pub fn init(format: LogFormat, filter: &str) {
    let mut env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    if !filter.contains("hickory_server") {
        env_filter = env_filter.add_directive(QUIET_DNS.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
