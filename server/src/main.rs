//! The `server` binary: reads the configuration, binds `0.0.0.0:<port>` at once, serves until
//! SIGTERM/SIGINT, drains (a second signal cuts the drain short) and exits 0. Usage: `server
//! [--port N]` (`--help` lists the environment variables, `server::ENV`, which README.md
//! mirrors).

use clap::{Arg, Command};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

fn main() -> ExitCode {
    // First, so that `--help` works whatever the environment holds; clap exits 0 for help, 2 for
    // a bad argument.
    let args = command().get_matches();
    let config = match server::Config::from_env(args.get_one::<u16>("port").copied()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("server: {e}");
            return ExitCode::from(2);
        }
    };
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
        let (shutdown, force) = server::shutdown_signals()?;
        server::run(listener, config, shutdown, force).await
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

/// The command line: `--port`, and the environment variables (`server::ENV`) in the help.
fn command() -> Command {
    let width = server::ENV.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let vars: Vec<String> =
        server::ENV.iter().map(|v| format!("  {:width$}  {} [default: {}]", v.name, v.meaning, v.default)).collect();
    Command::new("server")
        .version(env!("CARGO_PKG_VERSION"))
        .about("smallpt's Cornell box as an HTTP function service: FC, SCF and FunctionGraph custom containers")
        .arg(
            Arg::new("port")
                .long("port")
                .value_name("N")
                .help("TCP port to listen on (0.0.0.0); overrides PORT")
                .value_parser(clap::value_parser!(u16)),
        )
        .after_help(format!("Everything else is set in the environment:\n{}", vars.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::command;

    fn port(args: &[&str]) -> Result<Option<u16>, clap::error::ErrorKind> {
        let m = command().try_get_matches_from(std::iter::once("server").chain(args.iter().copied()));
        m.map(|m| m.get_one::<u16>("port").copied()).map_err(|e| e.kind())
    }

    #[test]
    fn port_flag_forms() {
        assert_eq!(port(&[]), Ok(None));
        assert_eq!(port(&["--port", "8000"]), Ok(Some(8000)));
        assert_eq!(port(&["--port=9001"]), Ok(Some(9001)));
        assert!(port(&["--port"]).is_err());
        assert!(port(&["--port", "x"]).is_err());
        assert!(port(&["--port", "70000"]).is_err());
        assert!(port(&["--verbose"]).is_err());
        assert_eq!(port(&["--help"]), Err(clap::error::ErrorKind::DisplayHelp));
    }

    /// The help lists every environment variable the server reads, from the one table.
    #[test]
    fn the_help_lists_the_environment() {
        let help = command().render_long_help().to_string();
        for v in server::ENV {
            assert!(help.contains(v.name) && help.contains(v.meaning), "{} missing from the help", v.name);
        }
    }
}
