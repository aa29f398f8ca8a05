//! The `server` binary: reads the configuration, binds `0.0.0.0:<port>` at once, serves until
//! SIGTERM/SIGINT, drains and exits 0. Usage: `server [--port N]`; everything else is in the
//! environment (see `server::ENV` and README.md).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut config = match server::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("server: {e}");
            return ExitCode::from(2);
        }
    };
    match port_flag(std::env::args().skip(1)) {
        Ok(Some(port)) => config.port = port,
        Ok(None) => {}
        Err(msg) => {
            eprintln!("server: {msg}\nusage: server [--port N]");
            return ExitCode::from(2);
        }
    }
    server::init_logging(config.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port))).await?;
        server::run(listener, config, server::shutdown_signal()).await
    });
    // Blocking render drivers that outlived the grace period must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--port N` or `--port=N`.
fn port_flag(mut args: impl Iterator<Item = String>) -> Result<Option<u16>, String> {
    let mut port = None;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--port") {
            Some("") => args.next().ok_or("--port needs a value")?,
            Some(v) if v.starts_with('=') => v[1..].to_string(),
            _ => return Err(format!("unknown argument `{arg}`")),
        };
        port = Some(value.parse().map_err(|_| format!("--port must be a port number, got `{value}`"))?);
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::port_flag;

    fn parse(args: &[&str]) -> Result<Option<u16>, String> {
        port_flag(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn port_flag_forms() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&["--port", "8000"]), Ok(Some(8000)));
        assert_eq!(parse(&["--port=9001"]), Ok(Some(9001)));
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }
}
