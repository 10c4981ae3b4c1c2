//! One module per subcommand.

pub mod agent;
pub mod dev;
pub mod server;
pub mod shutdown;
