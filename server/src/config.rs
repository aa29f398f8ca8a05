//! Configuration from the environment. Every variable the server reads is in [`ENV`], the one
//! table the README mirrors; [`Config::from_lookup`] reads them through any lookup function so
//! tests can build a configuration without touching the process environment.

use render::Limits;
use render::request::{MAX_DIMENSION, MAX_SPP};
use std::time::Duration;

/// One environment variable: its name, its default and what it does.
#[derive(Clone, Copy, Debug)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// The value used when it is unset, in words.
    pub default: &'static str,
    /// What it controls.
    pub meaning: &'static str,
}

/// Every environment variable the server reads.
pub const ENV: &[EnvVar] = &[
    EnvVar {
        name: "PORT",
        default: "FC_CUSTOM_LISTEN_PORT, then FC_SERVER_PORT, then 9000",
        meaning: "TCP port to listen on (0.0.0.0); `--port` overrides it; 0 takes a free port, named in the \
                  `listening addr=` log line (tests). FunctionGraph needs PORT=8000",
    },
    EnvVar { name: "RENDER_MAX_WIDTH", default: "8192", meaning: "largest width in pixels (at most 65536)" },
    EnvVar { name: "RENDER_MAX_HEIGHT", default: "8192", meaning: "largest height in pixels (at most 65536)" },
    EnvVar { name: "RENDER_MAX_SPP", default: "65536", meaning: "largest spp (at most 1048576)" },
    EnvVar {
        name: "RENDER_MAX_SAMPLES",
        default: "8589934592 (2^33)",
        meaning: "largest width × height × effective spp of one render",
    },
    EnvVar {
        name: "RENDER_MAX_PROGRESSIVE_BYTES",
        default: "268435456 (256 MiB)",
        meaning: "largest memory of a progressive render's sums (96 bytes a pixel; 413 past it)",
    },
    EnvVar {
        name: "RENDER_THREADS",
        default: "0 = available_parallelism (honours the cgroup CPU quota)",
        meaning: "threads of the render pool, at most 1024",
    },
    EnvVar {
        name: "RENDER_CONCURRENCY",
        default: "1",
        meaning: "renders running at once (each uses the whole pool), at most 1024",
    },
    EnvVar {
        name: "RENDER_QUEUE",
        default: "16",
        meaning: "renders waiting (FIFO) behind the running ones; beyond it: 503 with Retry-After",
    },
    EnvVar {
        name: "RENDER_TIMEOUT_SECS",
        default: "900",
        meaning: "render deadline, queueing included; lowered per request by X-Scf-Timeout, X-Fc-Function-Timeout, X-CFF-Timeout",
    },
    EnvVar {
        name: "MAX_RESPONSE_BYTES",
        default: "auto: 6000000 on SCF / FunctionGraph (env or request headers), else off",
        meaning: "largest response a render may produce, checked before rendering (413); `0` or `off` disables",
    },
    EnvVar { name: "MAX_BODY_BYTES", default: "1048576", meaning: "largest request body (413)" },
    EnvVar { name: "MAX_URI_BYTES", default: "8192", meaning: "longest path + query (414)" },
    EnvVar {
        name: "MAX_HEADER_BYTES",
        default: "65536",
        meaning: "largest request head (431), at most 16777216 (16 MiB)",
    },
    EnvVar {
        name: "HEAD_TIMEOUT_SECS",
        default: "10",
        meaning: "from a request head's first byte to its end; past it 408 and close (idle keep-alive is unlimited)",
    },
    EnvVar {
        name: "BODY_TIMEOUT_SECS",
        default: "30",
        meaning: "from a request head's end to its body's end; past it 408 and close",
    },
    EnvVar {
        name: "SEND_TIMEOUT_SECS",
        default: "60",
        meaning: "longest a response may wait for the client to accept any of it; past it the connection closes and the render stops",
    },
    EnvVar {
        name: "MAX_CONNECTIONS",
        default: "1024",
        meaning: "open connections; further ones wait in the backlog; at most 1048576 (2²⁰)",
    },
    EnvVar {
        name: "SHUTDOWN_GRACE_SECS",
        default: "60",
        meaning: "on SIGTERM/SIGINT (and in /pre-stop) how long in-flight responses may take to finish",
    },
    EnvVar {
        name: "SHED_DELAY_MS",
        default: "50",
        meaning: "how long a render refused for a full queue waits before its 503 (a retry storm then cannot eat the cores); a place freed meanwhile serves it",
    },
    EnvVar { name: "RETRY_AFTER_SECS", default: "5", meaning: "Retry-After of a 503 when the queue is full" },
    EnvVar {
        name: "FANOUT_URL",
        default: "unset: `parts` is refused (400)",
        meaning: "worker endpoint(s) of a fan-out (`parts=N`): one http(s) URL (on FC the function's own HTTP trigger URL) or a comma-separated list used round-robin",
    },
    EnvVar {
        name: "FANOUT_MAX_PARTS",
        default: "100 (FC 3.0's documented default instance quota per account and region)",
        meaning: "largest `parts`",
    },
    EnvVar {
        name: "FANOUT_CONCURRENCY",
        default: "32",
        meaning: "parts in flight or finished and waiting for their turn; the coordinator holds at most this many bands in memory",
    },
    EnvVar {
        name: "FANOUT_MAX_BUFFER_BYTES",
        default: "268435456 (256 MiB)",
        meaning: "largest memory the coordinator's bands may take at once: the largest band in the wire format (3 bytes \
                  a pixel, 12 for PFM) times the bands held (parts, at most FANOUT_CONCURRENCY); past it a 413 naming \
                  `parts`, before any part is sent",
    },
    EnvVar {
        name: "FANOUT_RETRIES",
        default: "3",
        meaning: "retries of a failed part (refused, reset, 5xx, 429, short body, timeout), with backoff from 100 ms doubling to 2 s; a busy worker's 503 or 429 with Retry-After is retried without counting (when another part ends, or on the same backoff, never later than its Retry-After) for up to FANOUT_PART_TIMEOUT_SECS",
    },
    EnvVar {
        name: "FANOUT_PART_TIMEOUT_SECS",
        default: "120",
        meaning: "a part attempt that receives nothing (head or body bytes) for this long has failed and is retried",
    },
    EnvVar {
        name: "FANOUT_CA_FILE",
        default: "unset: the Mozilla roots compiled in",
        meaning: "PEM file of further CA certificates trusted for https `FANOUT_URL`s (a self-hosted pool's private CA)",
    },
    EnvVar {
        name: "RENDER_SIMD",
        default: "the widest path the CPU has",
        meaning: "`avx512`, `avx2`, `sse2` or `scalar`: the fast engine's SIMD path at most (read by the render library; for tests and timing)",
    },
    EnvVar {
        name: "FC_CUSTOM_LISTEN_PORT",
        default: "set by FC",
        meaning: "the port FC's custom container expects; used when `PORT` is unset",
    },
    EnvVar {
        name: "FC_SERVER_PORT",
        default: "set by FC (older runtimes)",
        meaning: "used when `PORT` and `FC_CUSTOM_LISTEN_PORT` are unset",
    },
    EnvVar {
        name: "TENCENTCLOUD_RUNENV",
        default: "set by SCF (`SCF`)",
        meaning: "read only to detect SCF: turns the `auto` response cap on",
    },
    EnvVar {
        name: "SCF_FUNCTIONNAME",
        default: "set by SCF",
        meaning: "read only to detect SCF: turns the `auto` response cap on",
    },
    EnvVar {
        name: "RUNTIME_FUNC_NAME",
        default: "set by FunctionGraph",
        meaning: "read only to detect FunctionGraph: turns the `auto` response cap on",
    },
    EnvVar {
        name: "RUNTIME_MAX_RESP_BODY_SIZE",
        default: "set by FunctionGraph",
        meaning: "read only to detect FunctionGraph: turns the `auto` response cap on",
    },
    EnvVar {
        name: "CORS_ALLOW_ORIGIN",
        default: "unset: no CORS headers",
        meaning: "pages of other sites whose scripts may call the service: `*` for any, or origins separated by commas (`https://a.example`)",
    },
    EnvVar { name: "LOG_FORMAT", default: "text", meaning: "`text`, or `json` for one JSON object per line" },
    EnvVar { name: "RUST_LOG", default: "info", meaning: "log filter (tracing-subscriber EnvFilter syntax)" },
];

/// The longest duration a variable may set, in seconds: a week, longer than any platform lets a
/// function run (FunctionGraph's 259 200 s is the longest). Near `u64::MAX` seconds a deadline
/// (`Instant::now() + duration`) overflowed and every request panicked.
pub const MAX_DURATION_SECS: u64 = 7 * 24 * 3600;
/// The most `RENDER_CONCURRENCY`: each render uses the whole pool, so more at once than there may
/// be render threads gains nothing (and tokio's semaphore panics past 2⁶¹).
pub const MAX_CONCURRENCY: usize = render::MAX_THREADS as usize;
/// The most `MAX_CONNECTIONS`: Linux's default ceiling on a process's open files (`fs.nr_open`).
pub const MAX_CONNECTIONS: usize = 1 << 20;
/// The most `MAX_HEADER_BYTES`: 16 MiB, 40 times hyper's default read buffer (a value near
/// `usize::MAX` overflowed that buffer's size and hyper panicked at start).
pub const MAX_HEADER_BYTES: usize = 16 << 20;

/// The variables that set the port, first found wins; the `--port` flag overrides them all.
const PORT_VARS: [&str; 3] = ["PORT", "FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT"];

/// The response-size cap used when the environment shows SCF or FunctionGraph.
pub const PLATFORM_RESPONSE_CAP: u64 = crate::platform::SYNC_RESPONSE_CAP;

/// Whether renders are refused when their output could be too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseCap {
    /// Capped at [`PLATFORM_RESPONSE_CAP`] when the environment or the request shows SCF or
    /// FunctionGraph, else uncapped.
    Auto,
    /// Never capped.
    Off,
    /// Always capped at this many bytes.
    Bytes(u64),
}

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port to listen on.
    pub port: u16,
    /// Request limits.
    pub limits: Limits,
    /// Render pool threads; 0 = `available_parallelism`.
    pub render_threads: usize,
    /// Renders running at once.
    pub concurrency: usize,
    /// Renders waiting behind them.
    pub queue: usize,
    /// Render deadline, queueing included.
    pub render_timeout: Duration,
    /// The response-size cap.
    pub response_cap: ResponseCap,
    /// Whether the environment says SCF or FunctionGraph (turns the `Auto` cap on).
    pub on_capped_platform: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest path + query.
    pub max_uri_bytes: usize,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Open connections.
    pub max_connections: usize,
    /// Drain time on shutdown and in `/pre-stop`.
    pub shutdown_grace: Duration,
    /// Retry-After of a queue-full 503, in seconds.
    pub retry_after_secs: u64,
    /// JSON log lines.
    pub log_json: bool,
    /// How `parts` fans a render out.
    pub fanout: Fanout,
    /// How long a shed request (queue full) waits before its 503.
    pub shed_delay: Duration,
    /// How long a client may take over a request head and a body it has started.
    pub timeouts: crate::framing::Timeouts,
    /// Which other sites' pages may call the service from a script.
    pub cors: crate::cors::Cors,
    /// Test hook: a render with seed 65535 panics. Never set from the environment.
    #[cfg(feature = "test-hooks")]
    pub fault_injection: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            port: 9000,
            limits: Limits::DEFAULT,
            render_threads: 0,
            concurrency: 1,
            queue: 16,
            render_timeout: Duration::from_secs(900),
            response_cap: ResponseCap::Auto,
            on_capped_platform: false,
            max_body_bytes: 1 << 20,
            max_uri_bytes: 8192,
            max_header_bytes: 65536,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(60),
            retry_after_secs: 5,
            log_json: false,
            fanout: Fanout::default(),
            shed_delay: Duration::from_millis(50),
            timeouts: crate::framing::Timeouts::default(),
            cors: crate::cors::Cors::Off,
            #[cfg(feature = "test-hooks")]
            fault_injection: false,
        }
    }
}

/// The fan-out's settings (`FANOUT_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// Worker endpoints, used round-robin; empty: `parts` is refused.
    pub urls: Vec<String>,
    /// Parts in flight or waiting for their turn.
    pub concurrency: usize,
    /// Retries of a failed part.
    pub retries: u32,
    /// How long a part attempt may receive nothing.
    pub part_timeout: Duration,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<String>,
    /// Most bytes of bands the coordinator may hold at once.
    pub max_buffer_bytes: u64,
}

impl Default for Fanout {
    fn default() -> Fanout {
        Fanout {
            urls: Vec::new(),
            concurrency: 32,
            retries: 3,
            part_timeout: Duration::from_secs(120),
            ca_file: None,
            // As `RENDER_MAX_PROGRESSIVE_BYTES`: a quarter of FC's 1 GB tier.
            max_buffer_bytes: 1 << 28,
        }
    }
}

/// A worker URL as messages and logs show it: its credentials (`user:pw@`) and its query (a
/// gateway's token, say) replaced by `[redacted]`, since `FANOUT_URL` may hold secrets the
/// server passes on but never shows.
pub(crate) fn shown_url(u: &str) -> String {
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let (authority, tail) = rest.find(['/', '?', '#']).map_or((rest, ""), |i| rest.split_at(i));
    let mut shown = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    match authority.rsplit_once('@') {
        Some((_, host)) => shown += &format!("[redacted]@{host}"),
        None => shown += authority,
    }
    match tail.split_once('?') {
        Some((path, _)) => shown += &format!("{path}?[redacted]"),
        None => shown += tail,
    }
    shown
}

/// `FANOUT_URL`: comma-separated absolute http(s) URLs with a host.
fn fanout_urls(value: &str) -> Result<Vec<String>, ConfigError> {
    let shown_value = value.split(',').map(shown_url).collect::<Vec<_>>().join(",");
    let bad = |reason: String| ConfigError::new("FANOUT_URL", &shown_value, reason);
    value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            let shown = shown_url(u);
            let uri: hyper::Uri = u.parse().map_err(|e| bad(format!("`{shown}`: {e}")))?;
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            if !scheme_ok || uri.host().is_none() {
                return Err(bad(format!("`{shown}` is not an absolute http:// or https:// URL")));
            }
            let authority = uri.authority().map_or("", |a| a.as_str());
            // Not sent as credentials by the client (each part forwards the caller's
            // `Authorization` instead), and they would end up in logs.
            if authority.contains('@') {
                return Err(bad(format!(
                    "`{shown}` holds credentials (user@), which are not sent; each part forwards the caller's \
                     Authorization header"
                )));
            }
            // The client would connect to the scheme's default port instead of one out of range.
            // (An IPv6 address's colons are inside its brackets.)
            let port = authority.rsplit_once(':').map(|(_, p)| p).filter(|p| !p.is_empty() && !p.ends_with(']'));
            if port.is_some() && uri.port_u16().is_none_or(|p| p == 0) {
                return Err(bad(format!("`{shown}`: the port must be from 1 to 65535")));
            }
            // The query is kept (a gateway's token, say) and each part's parameters follow it:
            // one of those in it too would be given twice, and every part refused.
            let query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes());
            if let Some((key, _)) = query.into_iter().find(|(k, _)| render::request::Param::from_name(k).is_some()) {
                return Err(bad(format!(
                    "`{shown}` sets `{key}`, a render parameter each part sets itself; leave it out of the URL"
                )));
            }
            Ok(u.to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        // Commas alone would switch the fan-out off as if the variable were unset.
        .and_then(|urls| if urls.is_empty() { Err(bad("no URL in it".to_string())) } else { Ok(urls) })
}

/// The levels `RUST_LOG` takes alone.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The crates whose log lines the server can show: `RUST_LOG=hyper` is a filter; a bare word
/// naming none of them matches nothing.
const LOGGING_CRATES: [&str; 8] = ["server", "render", "hyper", "hyper_util", "hyper_rustls", "rustls", "tokio", "h2"];

/// A bare word in a `RUST_LOG` filter that EnvFilter reads as a target no log line here comes
/// from (`warning`, `verbose`): the filter then shows only that target, so nothing at all. The
/// syntax is valid, which is why it used to pass in silence.
fn silencing_word(filter: &str) -> Option<&str> {
    filter.split(',').map(str::trim).filter(|d| !d.is_empty()).find(|d| {
        let bare = !d.contains(['=', '[']);
        let root = d.split("::").next().unwrap_or(d);
        // EnvFilter also takes a level as a number (`3`).
        bare && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d))
            && d.parse::<u8>().is_err()
            && !LOGGING_CRATES.contains(&root)
    })
}

/// A variable with a value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    reason: String,
}

impl ConfigError {
    /// `name`'s `value` and why it is refused.
    fn new(name: &'static str, value: impl Into<String>, reason: impl ToString) -> ConfigError {
        ConfigError { name, value: value.into(), reason: reason.to_string() }
    }
}

impl Config {
    /// Reads the process environment. A `port` from the command line overrides the port
    /// variables, which are then not read: `PORT=junk server --port 9000` used to stop at the
    /// `PORT` it would not use.
    pub fn from_env(port: Option<u16>) -> Result<Config, ConfigError> {
        let mut config = Config::from_lookup(|name| match port {
            Some(_) if PORT_VARS.contains(&name) => None,
            _ => std::env::var(name).ok(),
        })?;
        if let Some(port) = port {
            config.port = port;
        }
        Ok(config)
    }

    /// Reads every variable of [`ENV`] through `get`; unset or empty variables take the defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        fn num<T: std::str::FromStr>(name: &'static str, value: Option<String>, default: T) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                // Rust's own reason ("invalid digit found in string") alone does not say what was wanted.
                Some(v) => v.trim().parse().map_err(|e: T::Err| {
                    ConfigError::new(name, v, format!("must be a whole number, digits only ({e})"))
                }),
            }
        }
        // A limit, count or timeout of 0 would refuse every request or time out at once: the
        // server refuses to start on it instead.
        fn positive<T>(name: &'static str, value: Option<String>, default: T) -> Result<T, ConfigError>
        where
            T: std::str::FromStr + PartialOrd + From<u8>,
            T::Err: std::fmt::Display,
        {
            let n = num(name, value.clone(), default)?;
            if n < T::from(1) {
                return Err(ConfigError::new(name, value.unwrap_or_default(), "must be at least 1"));
            }
            Ok(n)
        }
        // A limit the engines cannot go past (see `render::request::MAX_DIMENSION`, `MAX_SPP`), or
        // one past which the server could not start (tokio's semaphores, hyper's buffer size).
        fn up_to<T>(name: &'static str, value: Option<String>, default: T, max: T) -> Result<T, ConfigError>
        where
            T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display,
            T::Err: std::fmt::Display,
        {
            let n = positive(name, value.clone(), default)?;
            if n > max {
                return Err(ConfigError::new(name, value.unwrap_or_default(), format!("must be from 1 to {max}")));
            }
            Ok(n)
        }
        // A duration: `n` in units of 1/`per_sec` s, at most [`MAX_DURATION_SECS`].
        fn at_most_a_week(name: &'static str, value: Option<String>, n: u64, per_sec: u64) -> Result<u64, ConfigError> {
            let max = MAX_DURATION_SECS * per_sec;
            if n > max {
                let unit = if per_sec == 1 { "s" } else { "ms" };
                let reason = format!("must be at most {max} ({unit}; a week)");
                return Err(ConfigError::new(name, value.unwrap_or_default(), reason));
            }
            Ok(n)
        }
        let d = Config::default();
        // The render library reads it; a value naming no path must stop the server, not run
        // the widest path in its place.
        if let Some(v) = get("RENDER_SIMD") {
            render::engine::fast::SimdPath::requested(&v).map_err(|e| ConfigError::new("RENDER_SIMD", v, e))?;
        }
        let port_var = PORT_VARS.into_iter().find(|n| get(n).is_some());
        let port = match port_var {
            Some(name) => num(name, get(name), d.port)?,
            None => d.port,
        };
        let limits = Limits {
            max_width: up_to("RENDER_MAX_WIDTH", get("RENDER_MAX_WIDTH"), d.limits.max_width, MAX_DIMENSION)?,
            max_height: up_to("RENDER_MAX_HEIGHT", get("RENDER_MAX_HEIGHT"), d.limits.max_height, MAX_DIMENSION)?,
            max_spp: up_to("RENDER_MAX_SPP", get("RENDER_MAX_SPP"), d.limits.max_spp, MAX_SPP)?,
            max_samples: positive("RENDER_MAX_SAMPLES", get("RENDER_MAX_SAMPLES"), d.limits.max_samples)?,
            max_parts: positive("FANOUT_MAX_PARTS", get("FANOUT_MAX_PARTS"), d.limits.max_parts)?,
            max_progressive_bytes: positive(
                "RENDER_MAX_PROGRESSIVE_BYTES",
                get("RENDER_MAX_PROGRESSIVE_BYTES"),
                d.limits.max_progressive_bytes,
            )?,
        };
        let secs = |name: &'static str, default: Duration| {
            let n = positive(name, get(name), default.as_secs())?;
            at_most_a_week(name, get(name), n, 1).map(Duration::from_secs)
        };
        let df = &d.fanout;
        let fanout = Fanout {
            urls: get("FANOUT_URL").map(|v| fanout_urls(&v)).transpose()?.unwrap_or_default(),
            concurrency: positive("FANOUT_CONCURRENCY", get("FANOUT_CONCURRENCY"), df.concurrency)?,
            retries: num("FANOUT_RETRIES", get("FANOUT_RETRIES"), df.retries)?,
            part_timeout: secs("FANOUT_PART_TIMEOUT_SECS", df.part_timeout)?,
            ca_file: get("FANOUT_CA_FILE"),
            max_buffer_bytes: positive("FANOUT_MAX_BUFFER_BYTES", get("FANOUT_MAX_BUFFER_BYTES"), df.max_buffer_bytes)?,
        };
        let response_cap = match get("MAX_RESPONSE_BYTES") {
            None => ResponseCap::Auto,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "auto" => ResponseCap::Auto,
                "off" | "0" => ResponseCap::Off,
                n => ResponseCap::Bytes(n.parse().map_err(|_| {
                    ConfigError::new(
                        "MAX_RESPONSE_BYTES",
                        v.clone(),
                        "must be `auto`, `off` or a byte count, digits only",
                    )
                })?),
            },
        };
        let on_capped_platform = get("TENCENTCLOUD_RUNENV").is_some_and(|v| v.eq_ignore_ascii_case("scf"))
            || ["SCF_FUNCTIONNAME", "RUNTIME_FUNC_NAME", "RUNTIME_MAX_RESP_BODY_SIZE"].iter().any(|n| get(n).is_some());
        let concurrency = up_to("RENDER_CONCURRENCY", get("RENDER_CONCURRENCY"), d.concurrency, MAX_CONCURRENCY)?;
        let render_threads = num("RENDER_THREADS", get("RENDER_THREADS"), d.render_threads)?;
        if render_threads > render::MAX_THREADS as usize {
            let reason = format!("must be from 0 (every core) to {}", render::MAX_THREADS);
            return Err(ConfigError::new("RENDER_THREADS", render_threads.to_string(), reason));
        }
        let cors = match get("CORS_ALLOW_ORIGIN") {
            None => crate::cors::Cors::Off,
            Some(v) => crate::cors::Cors::parse(&v).map_err(|why| ConfigError::new("CORS_ALLOW_ORIGIN", v, why))?,
        };
        let log_json = match get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "text" || v == "json" => v == "json",
            Some(v) => {
                return Err(ConfigError::new("LOG_FORMAT", v, "must be `text` or `json`"));
            }
        };
        // Read again by `init_logging`; a filter that does not parse used to fall back to
        // `info` in silence.
        if let Some(v) = get("RUST_LOG") {
            tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| ConfigError::new("RUST_LOG", v.clone(), e))?;
            if let Some(word) = silencing_word(&v) {
                let reason = format!(
                    "`{word}` is not a level ({}) but a target no log line here comes from: it shows nothing \
                     (alone, it turns every line off); for a level write one of those, for a target `{word}=debug`",
                    LEVELS.join(", ")
                );
                return Err(ConfigError::new("RUST_LOG", v, reason));
            }
        }
        // 0 is allowed here: no grace.
        let grace = num("SHUTDOWN_GRACE_SECS", get("SHUTDOWN_GRACE_SECS"), d.shutdown_grace.as_secs())?;
        let grace = at_most_a_week("SHUTDOWN_GRACE_SECS", get("SHUTDOWN_GRACE_SECS"), grace, 1)?;
        let shed_ms = num("SHED_DELAY_MS", get("SHED_DELAY_MS"), d.shed_delay.as_millis() as u64)?;
        let shed_ms = at_most_a_week("SHED_DELAY_MS", get("SHED_DELAY_MS"), shed_ms, 1000)?;
        // 0 is allowed here: retry at once.
        let retry_after = num("RETRY_AFTER_SECS", get("RETRY_AFTER_SECS"), d.retry_after_secs)?;
        Ok(Config {
            port,
            limits,
            render_threads,
            concurrency,
            queue: num("RENDER_QUEUE", get("RENDER_QUEUE"), d.queue)?,
            render_timeout: secs("RENDER_TIMEOUT_SECS", d.render_timeout)?,
            response_cap,
            on_capped_platform,
            max_body_bytes: num("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), d.max_body_bytes)?,
            max_uri_bytes: positive("MAX_URI_BYTES", get("MAX_URI_BYTES"), d.max_uri_bytes)?,
            max_header_bytes: up_to("MAX_HEADER_BYTES", get("MAX_HEADER_BYTES"), d.max_header_bytes, MAX_HEADER_BYTES)?,
            max_connections: up_to("MAX_CONNECTIONS", get("MAX_CONNECTIONS"), d.max_connections, MAX_CONNECTIONS)?,
            shutdown_grace: Duration::from_secs(grace),
            retry_after_secs: at_most_a_week("RETRY_AFTER_SECS", get("RETRY_AFTER_SECS"), retry_after, 1)?,
            log_json,
            fanout,
            shed_delay: Duration::from_millis(shed_ms),
            timeouts: crate::framing::Timeouts {
                head: secs("HEAD_TIMEOUT_SECS", d.timeouts.head)?,
                body: secs("BODY_TIMEOUT_SECS", d.timeouts.body)?,
                send: secs("SEND_TIMEOUT_SECS", d.timeouts.send)?,
            },
            cors,
            #[cfg(feature = "test-hooks")]
            fault_injection: false,
        })
    }

    /// The cap for one request, given the cap of the platform it came through.
    pub fn response_cap_for(&self, platform_cap: Option<u64>) -> Option<u64> {
        match self.response_cap {
            ResponseCap::Off => None,
            ResponseCap::Bytes(n) => Some(n),
            ResponseCap::Auto => platform_cap.or(self.on_capped_platform.then_some(PLATFORM_RESPONSE_CAP)),
        }
    }

    /// The render pool's size: `render_threads`, or the CPUs this process may use.
    pub fn pool_threads(&self) -> usize {
        if self.render_threads > 0 {
            self.render_threads
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn port_fallback_chain() {
        assert_eq!(config(&[]).unwrap().port, 9000);
        assert_eq!(config(&[("FC_SERVER_PORT", "9002")]).unwrap().port, 9002);
        assert_eq!(config(&[("FC_SERVER_PORT", "9002"), ("FC_CUSTOM_LISTEN_PORT", "9001")]).unwrap().port, 9001);
        assert_eq!(config(&[("PORT", "8000"), ("FC_CUSTOM_LISTEN_PORT", "9001")]).unwrap().port, 8000);
        assert!(config(&[("PORT", "http")]).is_err());
    }

    #[test]
    fn response_cap_follows_the_platform() {
        assert_eq!(config(&[]).unwrap().response_cap_for(None), None);
        assert_eq!(config(&[]).unwrap().response_cap_for(Some(PLATFORM_RESPONSE_CAP)), Some(PLATFORM_RESPONSE_CAP));
        assert_eq!(
            config(&[("TENCENTCLOUD_RUNENV", "SCF")]).unwrap().response_cap_for(None),
            Some(PLATFORM_RESPONSE_CAP)
        );
        assert_eq!(config(&[("RUNTIME_FUNC_NAME", "f")]).unwrap().response_cap_for(None), Some(PLATFORM_RESPONSE_CAP));
        assert_eq!(
            config(&[("MAX_RESPONSE_BYTES", "off"), ("SCF_FUNCTIONNAME", "f")])
                .unwrap()
                .response_cap_for(Some(PLATFORM_RESPONSE_CAP)),
            None
        );
        assert_eq!(config(&[("MAX_RESPONSE_BYTES", "1000")]).unwrap().response_cap_for(None), Some(1000));
        let e = config(&[("MAX_RESPONSE_BYTES", "6MB")]).unwrap_err().to_string();
        assert!(e.contains("\"6MB\"") && e.contains("`auto`, `off` or a byte count"), "{e}");
    }

    /// A number that does not parse says what was wanted, not only Rust's reason.
    #[test]
    fn a_bad_number_names_what_is_wanted() {
        for (name, value) in [("RENDER_TIMEOUT_SECS", "1.5"), ("RENDER_QUEUE", "1e3"), ("PORT", "http")] {
            let e = config(&[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(value) && e.contains("a whole number, digits only"), "{e}");
        }
    }

    #[test]
    fn variables_are_read_through_the_lookup() {
        let c = config(&[("RENDER_MAX_SPP", "64"), ("RENDER_QUEUE", "0"), ("LOG_FORMAT", "JSON")]).unwrap();
        assert_eq!((c.limits.max_spp, c.queue, c.log_json), (64, 0, true));
        assert!(config(&[("RENDER_CONCURRENCY", "0")]).is_err());
    }

    /// A value that would refuse every request, hang the start or be ignored stops the server
    /// with the variable's name, rather than being clamped or dropped in silence.
    #[test]
    fn values_that_cannot_work_stop_the_server() {
        for name in [
            "RENDER_MAX_WIDTH",
            "RENDER_MAX_HEIGHT",
            "RENDER_MAX_SPP",
            "RENDER_MAX_SAMPLES",
            "RENDER_MAX_PROGRESSIVE_BYTES",
            "FANOUT_MAX_PARTS",
            "FANOUT_CONCURRENCY",
            "FANOUT_PART_TIMEOUT_SECS",
            "RENDER_CONCURRENCY",
            "RENDER_TIMEOUT_SECS",
            "MAX_CONNECTIONS",
            "MAX_URI_BYTES",
            "MAX_HEADER_BYTES",
            "HEAD_TIMEOUT_SECS",
            "BODY_TIMEOUT_SECS",
            "SEND_TIMEOUT_SECS",
        ] {
            let e = config(&[(name, "0")]).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("at least 1"), "{e}");
            assert!(config(&[(name, "1")]).is_ok(), "{name}=1");
        }
        for ok in ["0", "1024"] {
            assert!(config(&[("RENDER_THREADS", ok)]).is_ok(), "RENDER_THREADS={ok}");
        }
        // The table's text states the limit the code enforces.
        let threads = ENV.iter().find(|v| v.name == "RENDER_THREADS").unwrap();
        assert!(threads.meaning.ends_with(&format!("at most {}", render::MAX_THREADS)), "{}", threads.meaning);
        // Past these the server could not start (tokio's semaphore, hyper's buffer size panicked).
        for (name, max) in [
            ("RENDER_CONCURRENCY", MAX_CONCURRENCY),
            ("MAX_CONNECTIONS", MAX_CONNECTIONS),
            ("MAX_HEADER_BYTES", MAX_HEADER_BYTES),
        ] {
            assert!(config(&[(name, &max.to_string())]).is_ok(), "{name}={max}");
            for over in [(max + 1).to_string(), u64::MAX.to_string()] {
                let e = config(&[(name, &over)]).unwrap_err().to_string();
                assert!(e.contains(name) && e.contains(&format!("from 1 to {max}")), "{e}");
            }
            let meaning = ENV.iter().find(|v| v.name == name).unwrap().meaning;
            assert!(meaning.contains(&format!("at most {max}")), "{meaning}");
        }
        let e = config(&[("RENDER_THREADS", "100000")]).unwrap_err().to_string();
        assert!(e.contains("RENDER_THREADS") && e.contains("0 (every core) to 1024"), "{e}");
        assert!(!config(&[("LOG_FORMAT", " Text ")]).unwrap().log_json);
        assert!(config(&[("RUST_LOG", "server=debug,hyper=warn")]).is_ok());
        let e = config(&[("RUST_LOG", "[[[")]).unwrap_err().to_string();
        assert!(e.contains("RUST_LOG"), "{e}");
        for ok in ["DEBUG", "info,hyper=off", "server", "render::engine", "warn,my_crate=trace", "3"] {
            assert!(config(&[("RUST_LOG", ok)]).is_ok(), "{ok}");
        }
        for (bad, word) in [("warning", "warning"), ("verbose", "verbose"), ("server=debug, errors", "errors")] {
            let e = config(&[("RUST_LOG", bad)]).unwrap_err().to_string();
            assert!(e.contains(&format!("`{word}` is not a level")), "{e}");
        }
        assert_eq!(config(&[("CORS_ALLOW_ORIGIN", "*")]).unwrap().cors, crate::cors::Cors::Any);
        let e = config(&[("CORS_ALLOW_ORIGIN", "https://a.example/")]).unwrap_err().to_string();
        assert!(e.contains("CORS_ALLOW_ORIGIN") && e.contains("is not an origin"), "{e}");
        let e = config(&[("LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert!(e.contains("LOG_FORMAT") && e.contains("`text` or `json`"), "{e}");
        // Zero stays meaningful where it is documented: no queue, no retries, no grace.
        for name in ["RENDER_QUEUE", "FANOUT_RETRIES", "SHUTDOWN_GRACE_SECS", "SHED_DELAY_MS", "RETRY_AFTER_SECS"] {
            assert!(config(&[(name, "0")]).is_ok(), "{name}=0");
        }
    }

    /// The size and spp limits stop at what the engines can render: 2·10⁹ wide used to abort the
    /// process allocating a row, and an spp past 2³² − 4 wrapped the effective spp to 0.
    #[test]
    fn size_and_spp_limits_stop_at_what_the_engines_render() {
        for (name, max) in
            [("RENDER_MAX_WIDTH", MAX_DIMENSION), ("RENDER_MAX_HEIGHT", MAX_DIMENSION), ("RENDER_MAX_SPP", MAX_SPP)]
        {
            assert!(config(&[(name, &max.to_string())]).is_ok(), "{name}={max}");
            for bad in [(max + 1).to_string(), "2000000000".into(), "4294967295".into()] {
                let e = config(&[(name, &bad)]).unwrap_err().to_string();
                assert!(e.contains(name) && e.contains(&format!("from 1 to {max}")), "{e}");
            }
            // The table's text states the limit the code enforces.
            let var = ENV.iter().find(|v| v.name == name).unwrap();
            assert!(var.meaning.ends_with(&format!("(at most {max})")), "{}", var.meaning);
        }
    }

    /// A duration past a week stops the server: near `u64::MAX` seconds the deadline arithmetic
    /// used to overflow and panic in every request (render, head and body timeouts) or at
    /// shutdown (the grace).
    #[test]
    fn durations_are_at_most_a_week() {
        let week = MAX_DURATION_SECS.to_string();
        let week_ms = (MAX_DURATION_SECS * 1000).to_string();
        for (name, max) in [
            ("RENDER_TIMEOUT_SECS", &week),
            ("HEAD_TIMEOUT_SECS", &week),
            ("BODY_TIMEOUT_SECS", &week),
            ("SEND_TIMEOUT_SECS", &week),
            ("FANOUT_PART_TIMEOUT_SECS", &week),
            ("SHUTDOWN_GRACE_SECS", &week),
            ("RETRY_AFTER_SECS", &week),
            ("SHED_DELAY_MS", &week_ms),
        ] {
            assert!(config(&[(name, max.as_str())]).is_ok(), "{name}={max}");
            let over = (max.parse::<u64>().unwrap() + 1).to_string();
            for bad in [over.as_str(), "18446744073709551615"] {
                let e = config(&[(name, bad)]).unwrap_err().to_string();
                assert!(e.contains(name) && e.contains(&format!("at most {max}")), "{e}");
            }
        }
    }

    #[test]
    fn a_simd_path_that_does_not_exist_stops_the_server() {
        assert!(config(&[("RENDER_SIMD", "sse2")]).is_ok());
        let e = config(&[("RENDER_SIMD", "avx-512")]).unwrap_err().to_string();
        assert!(e.contains("RENDER_SIMD") && e.contains("avx512, avx2, sse2, scalar"), "{e}");
    }

    #[test]
    fn fanout_settings() {
        let c = config(&[]).unwrap();
        assert_eq!((c.fanout, c.limits.max_parts), (Fanout::default(), 100));
        let c = config(&[
            ("FANOUT_URL", "http://127.0.0.1:9001/, https://f.example.com/a/b?x=1"),
            ("FANOUT_MAX_PARTS", "8"),
            ("FANOUT_RETRIES", "0"),
            ("FANOUT_MAX_BUFFER_BYTES", "1000000"),
        ])
        .unwrap();
        assert_eq!(c.fanout.max_buffer_bytes, 1_000_000);
        assert!(config(&[("FANOUT_MAX_BUFFER_BYTES", "0")]).is_err(), "a buffer of 0 would refuse every fan-out");
        assert_eq!(c.fanout.urls, ["http://127.0.0.1:9001/", "https://f.example.com/a/b?x=1"]);
        assert_eq!((c.limits.max_parts, c.fanout.retries), (8, 0));
        let c = config(&[("FANOUT_URL", "http://[::1]:9001/, http://a:/, https://b:65535/x")]).unwrap();
        assert_eq!(c.fanout.urls.len(), 3, "IPv6, an empty port (the default) and the highest");
        for bad in [
            "ftp://host/",
            "/relative",
            "http://",
            "not a url",
            "http://a:99999/",
            "http://a:0/",
            "http://u:p@a/",
            " , ",
        ] {
            assert!(config(&[("FANOUT_URL", bad)]).is_err(), "{bad}");
        }
        // Credentials and a query are never shown (a start error is logged).
        for bad in [
            "http://user:secret@a/",
            "http://a:99999/x?token=secret",
            "ftp://a/?token=secret",
            "http://a/?token=secret&spp=4",
        ] {
            let e = config(&[("FANOUT_URL", bad)]).unwrap_err().to_string();
            assert!(!e.contains("secret") && e.contains("[redacted]"), "{e}");
        }
        assert_eq!(
            shown_url("https://u:p@a.example:8443/x/y?token=1#f"),
            "https://[redacted]@a.example:8443/x/y?[redacted]"
        );
        assert_eq!(shown_url("http://a/b"), "http://a/b");
        assert_eq!(shown_url("http://[::1]:9000"), "http://[::1]:9000");
        // A render parameter in a worker's query: every part would give it twice.
        for (bad, key) in [("http://w/?spp=4", "spp"), ("http://a/, https://b/x?token=1&%72ows=0-1", "rows")] {
            let e = config(&[("FANOUT_URL", bad)]).unwrap_err().to_string();
            assert!(e.contains("FANOUT_URL") && e.contains(&format!("sets `{key}`")), "{e}");
        }
    }

    /// Every name the source reads from the environment is a row of [`ENV`]: the string
    /// literals the lookups take in this file (outside the table itself), and every
    /// `env::var`/`var_os` call anywhere in the server's and the render library's sources.
    #[test]
    fn every_read_of_the_environment_is_in_the_table() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = Vec::new();
        for dir in ["server/src", "render/src"] {
            let mut stack = vec![std::path::PathBuf::from(root).join(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        files.push(p);
                    }
                }
            }
        }
        let in_table = |name: &str| ENV.iter().any(|v| v.name == name);
        let consts = |src: &str, name: &str| {
            // `const NAME: &str = "VALUE";` anywhere in the file.
            let pattern = format!("const {name}: &str = \"");
            let at = src.find(&pattern)? + pattern.len();
            Some(src[at..].split('"').next()?.to_string())
        };
        let mut reads = Vec::new();
        for f in &files {
            let whole = std::fs::read_to_string(f).unwrap();
            // Production code only: unit tests (this one among them) may name what they like.
            let src = whole.split("#[cfg(test)]").next().unwrap();
            for call in ["env::var(", "env::var_os("] {
                for (i, _) in src.match_indices(call) {
                    let arg = src[i + call.len()..].split(')').next().unwrap().trim().to_string();
                    let name = match arg.strip_prefix('"') {
                        Some(lit) => lit.trim_end_matches('"').to_string(),
                        // Through a constant of the same file, or this file's lookup closure.
                        None => match consts(src, &arg) {
                            Some(v) => v,
                            None if f.ends_with("config.rs") && arg == "name" => continue,
                            None => panic!("{}: env read of `{arg}`, not a literal or a const", f.display()),
                        },
                    };
                    reads.push((f.display().to_string(), name));
                }
            }
        }
        // This file's lookups: every quoted SHOUTING_NAME outside the ENV table and the tests.
        let src = include_str!("config.rs");
        let table_end =
            src.find("pub const ENV").unwrap() + src[src.find("pub const ENV").unwrap()..].find("\n];").unwrap();
        let body = &src[table_end..src.find("#[cfg(test)]").unwrap()];
        for lit in body.split('"').skip(1).step_by(2) {
            if lit.len() > 2 && lit.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) {
                reads.push(("config.rs".into(), lit.to_string()));
            }
        }
        for seen in ["RENDER_SIMD", "FANOUT_URL", "PORT", "SCF_FUNCTIONNAME"] {
            assert!(reads.iter().any(|(_, n)| n == seen), "the scan missed {seen}: {reads:?}");
        }
        for (file, name) in reads {
            assert!(in_table(&name), "{file} reads {name}, which is not in ENV");
        }
    }

    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../../README.md");
        for var in ENV {
            assert!(readme.contains(&format!("| `{}` |", var.name)), "{} is not in README.md", var.name);
        }
    }
}
