//! One module per subcommand.

pub mod dev;
pub mod server;
pub mod shutdown;
