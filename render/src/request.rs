//! [`RenderRequest`]: the one validated description of a render, shared by the CLI, the HTTP
//! query string and JSON event payloads. Parsing and validation live here and nowhere else.

pub use crate::format::Format;
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;

/// Which engine renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// smallpt's estimator in f32 with SIMD lanes and position-keyed random numbers.
    Fast,
    /// smallpt.cpp reproduced byte for byte (f64, erand48).
    Classic,
    /// The fast engine with next-event estimation: a shadow ray to the light at every diffuse
    /// hit, for smallpt's expected image with far less noise.
    Nee,
}

impl EngineKind {
    /// Every engine, in the order they are documented.
    pub const ALL: &'static [EngineKind] = &[EngineKind::Fast, EngineKind::Classic, EngineKind::Nee];
    /// The engine used when a request names none.
    pub const DEFAULT: EngineKind = EngineKind::Fast;

    /// The name used on the command line, in query strings and in response headers.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Fast => "fast",
            EngineKind::Classic => "classic",
            EngineKind::Nee => "nee",
        }
    }

    /// Whether the engine can refine an image pass by pass (its samples are keyed by position,
    /// so a pass adds to the sums of the ones before).
    pub fn progressive(self) -> bool {
        matches!(self, EngineKind::Fast | EngineKind::Nee)
    }

    /// Whether the engine runs on the fast engine's SIMD lanes: its bytes then depend on the
    /// path's arithmetic (`SimdPath::arithmetic`), which responses name and fan-outs check.
    pub fn on_simd_lanes(self) -> bool {
        matches!(self, EngineKind::Fast | EngineKind::Nee)
    }

    /// One line for help texts and the README.
    pub fn help(self) -> &'static str {
        match self {
            EngineKind::Fast => "smallpt's estimator in f32 SIMD lanes: the same expected image, many times faster",
            EngineKind::Classic => "smallpt.cpp byte for byte",
            EngineKind::Nee => {
                "fast plus next-event estimation, a shadow ray to the light at each diffuse hit: smallpt's converged image with far less noise per sample"
            }
        }
    }
}

fn choice_list<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|&t| name(t)).collect::<Vec<_>>().join(", ")
}

impl FromStr for EngineKind {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, RequestError> {
        EngineKind::ALL.iter().copied().find(|e| e.name() == s).ok_or_else(|| RequestError::BadChoice {
            param: "engine",
            value: shown(s),
            allowed: choice_list(EngineKind::ALL, EngineKind::name),
        })
    }
}

impl FromStr for Format {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, RequestError> {
        Format::ALL.iter().copied().find(|f| f.name() == s).ok_or_else(|| RequestError::BadChoice {
            param: "format",
            value: shown(s),
            allowed: choice_list(Format::ALL, Format::name),
        })
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The limits a request is validated against. The defaults are generous; the server reads
/// overrides from its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest width in pixels.
    pub max_width: u32,
    /// Largest height in pixels.
    pub max_height: u32,
    /// Largest requested spp.
    pub max_spp: u32,
    /// Largest number of samples one instance renders: width × rendered rows × effective spp
    /// (with `parts`, the largest part's). `u64::MAX` is no bound (the CLI's), which
    /// [`Param::allowed`] then leaves out of `spp`'s text.
    pub max_samples: u64,
    /// Largest `parts` of a fan-out.
    pub max_parts: u32,
    /// Largest memory a progressive render's accumulators may take, in bytes
    /// ([`PROGRESSIVE_BYTES_PER_PIXEL`] per pixel rendered).
    pub max_progressive_bytes: u64,
}

impl Limits {
    /// 8192 × 8192 pixels, spp up to 65536, at most 2³³ (about 8.6 billion) samples per instance
    /// — 1024×768 at about 10 900 spp — and fan-outs of up to [`DEFAULT_MAX_PARTS`] parts.
    pub const DEFAULT: Limits = Limits {
        max_width: 8192,
        max_height: 8192,
        max_spp: 65536,
        max_samples: 1 << 33,
        max_parts: DEFAULT_MAX_PARTS,
        max_progressive_bytes: DEFAULT_MAX_PROGRESSIVE_BYTES,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// The largest width or height any [`Limits`] may allow. A row's pixels are held per thread and
/// in the reorder window (24 bytes each: 1.5 MiB a row here); at 2·10⁹ the first allocation of a
/// row aborted the process. The engines are tested up to it.
pub const MAX_DIMENSION: u32 = 1 << 16;

/// The largest spp any [`Limits`] may allow. The fast engine holds one pixel's samples in one
/// batch (12 bytes each per thread) and numbers them in f32, exact only below 2²² a batch; the
/// classic engine checks for cancellation once per pixel (about a second per pixel here); and
/// the effective spp, 4·⌈spp/4⌉, must fit in 32 bits (past 2³² − 4 it wrapped to 0: a black
/// image, `x-render-spp: 0`).
pub const MAX_SPP: u32 = 1 << 20;

// The defaults are within what the engines render.
const _: () = assert!(
    Limits::DEFAULT.max_width <= MAX_DIMENSION
        && Limits::DEFAULT.max_height <= MAX_DIMENSION
        && Limits::DEFAULT.max_spp <= MAX_SPP
);

/// Memory per pixel of a progressive render: four subpixels' f64 RGB sums, kept between passes.
pub const PROGRESSIVE_BYTES_PER_PIXEL: u64 = std::mem::size_of::<crate::color::SubpixelSums>() as u64;

/// The default bound on a progressive render's accumulators: 256 MiB, a quarter of FC's 1 GB
/// tier (the smallest benchmarked; s.yaml deploys 2 GB), which leaves room for the process and a
/// frame being encoded. 2.8 M pixels: 1920×1080 fits, 2048×1536 does not.
pub const DEFAULT_MAX_PROGRESSIVE_BYTES: u64 = 256 << 20;

/// Largest seed: the seed is the first 16-bit word of smallpt's erand48 state.
pub const MAX_SEED: u32 = 65535;

/// The default cap on `parts`: Alibaba FC 3.0's documented default quota is 100 concurrent
/// instances per account and region, so a wider fan-out would be refused (429) or queue on the
/// platform rather than run side by side.
pub const DEFAULT_MAX_PARTS: u32 = 100;

/// A band of image rows, `start..end` counted from the top (0-based, `end` excluded); written
/// `A-B` in requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowBand {
    /// The first row rendered.
    pub start: u32,
    /// One past the last row rendered.
    pub end: u32,
}

impl RowBand {
    /// Rows in the band.
    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    /// Whether the band has no rows (never true of a validated request's band).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// `self` cut into `n` consecutive bands whose sizes differ by at most one row, the larger
    /// ones first. `n` must be from 1 to `self.len()`.
    pub fn split(&self, n: u32) -> Vec<RowBand> {
        assert!((1..=self.len()).contains(&n), "split into 1 to {} bands, not {n}", self.len());
        let (base, extra) = (self.len() / n, self.len() % n);
        let mut start = self.start;
        (0..n)
            .map(|i| {
                let end = start + base + u32::from(i < extra);
                let band = RowBand { start, end };
                start = end;
                band
            })
            .collect()
    }
}

impl fmt::Display for RowBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for RowBand {
    type Err = ();
    /// `A-B` in plain decimal digits, `A < B`; the height is checked by [`RenderRequest::validate`].
    fn from_str(s: &str) -> Result<RowBand, ()> {
        let (a, b) = s.split_once('-').ok_or(())?;
        let num = |t: &str| {
            if t.is_empty() || t.len() > 9 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            t.parse::<u32>().map_err(|_| ())
        };
        let band = RowBand { start: num(a)?, end: num(b)? };
        if band.is_empty() { Err(()) } else { Ok(band) }
    }
}

/// Longest part of a caller's value an error repeats.
pub const SHOWN_CHARS: usize = 64;

/// A caller's value as an error message (and so a log line) repeats it: control characters
/// (line breaks above all: a `%0A` in a query must not start a forged log line) escaped, and cut
/// to [`SHOWN_CHARS`] characters with the full length noted.
pub fn shown(value: &str) -> String {
    shown_up_to(value, SHOWN_CHARS)
}

/// [`shown`] with another length.
fn shown_up_to(value: &str, chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == chars {
            out += &format!("… ({} bytes in all)", value.len());
            break;
        }
        // C0 and C1 controls, DEL, and Unicode's line and paragraph separators.
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a request was rejected. Every variant names the parameter ([`RequestError::param`]) and
/// the message names what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A parameter that does not exist.
    #[error("unknown parameter `{param}`; the parameters are {}", Param::names())]
    Unknown {
        /// The name as given.
        param: String,
    },
    /// A parameter given twice.
    #[error("parameter `{param}` is given more than once")]
    Repeated {
        /// The parameter.
        param: &'static str,
    },
    /// A parameter with an empty value.
    #[error("parameter `{param}` is empty; {allowed}")]
    Empty {
        /// The parameter.
        param: &'static str,
        /// What it accepts.
        allowed: String,
    },
    /// An integer parameter whose value is not a whole number.
    #[error("parameter `{param}` must be an integer from {min} to {max}, got `{value}`")]
    NotInteger {
        /// The parameter.
        param: &'static str,
        /// The value as given.
        value: String,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// An integer parameter outside its range.
    #[error("parameter `{param}` must be from {min} to {max}, got {value}")]
    OutOfRange {
        /// The parameter.
        param: &'static str,
        /// The value as given.
        value: String,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A choice parameter (engine, format) with an unknown value.
    #[error("parameter `{param}` must be one of {allowed}, got `{value}`")]
    BadChoice {
        /// The parameter.
        param: &'static str,
        /// The value as given.
        value: String,
        /// The choices, comma-separated.
        allowed: String,
    },
    /// `rows` that is not `A-B` with `0 ≤ A < B ≤ height`.
    #[error("parameter `rows` must be `A-B` with 0 <= A < B <= height ({height}), got `{value}`")]
    BadRows {
        /// The value as given.
        value: String,
        /// The image height.
        height: u32,
    },
    /// Width × rendered rows × effective spp over the limit.
    #[error(
        "width × rows × effective spp ({effective_spp}: spp rounded up to a multiple of 4) = {samples} samples on one instance, over the limit of {max}; lower spp or the size, or split the render into more parts"
    )]
    TooManySamples {
        /// The samples asked for.
        samples: u64,
        /// The effective spp.
        effective_spp: u32,
        /// The limit.
        max: u64,
    },
    /// A progressive render on an engine that cannot refine an image.
    #[error(
        "parameter `engine` must be fast or nee for a progressive render (classic's random stream runs along the row), got `{engine}`"
    )]
    ProgressiveEngine {
        /// The engine asked for.
        engine: &'static str,
    },
    /// A progressive render split into parts.
    #[error("parameter `progressive` cannot be combined with `parts`: a fan-out renders once, in bands")]
    ProgressiveParts,
    /// A progressive render whose accumulators would not fit the memory bound.
    #[error(
        "parameter `progressive`: a progressive render holds {bytes} bytes of sums for {pixels} pixels, over the limit of {max} bytes; lower the size or render it once"
    )]
    ProgressiveTooLarge {
        /// The pixels rendered.
        pixels: u64,
        /// The memory they would take.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A JSON payload that is not an object of the parameters.
    #[error("the body must be a JSON object of render parameters: {reason}")]
    BadBody {
        /// What is wrong.
        reason: String,
    },
}

impl RequestError {
    /// The parameter the error is about (`body` for a malformed payload).
    pub fn param(&self) -> &str {
        match self {
            RequestError::Unknown { param } => param,
            RequestError::Repeated { param }
            | RequestError::Empty { param, .. }
            | RequestError::NotInteger { param, .. }
            | RequestError::OutOfRange { param, .. }
            | RequestError::BadChoice { param, .. } => param,
            RequestError::BadRows { .. } => "rows",
            RequestError::TooManySamples { .. } => "spp",
            RequestError::ProgressiveEngine { .. } => "engine",
            RequestError::ProgressiveParts | RequestError::ProgressiveTooLarge { .. } => "progressive",
            RequestError::BadBody { .. } => "body",
        }
    }
}

/// One render: what to draw and how to encode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RenderRequest {
    /// Width in pixels, 1 to [`Limits::max_width`].
    pub width: u32,
    /// Height in pixels, 1 to [`Limits::max_height`].
    pub height: u32,
    /// Samples per pixel as asked, 1 to [`Limits::max_spp`]; rendered rounded up to a multiple of 4.
    pub spp: u32,
    /// The engine.
    pub engine: EngineKind,
    /// The output format.
    pub format: Format,
    /// The random seed, 0 to [`MAX_SEED`]; 0 is smallpt's own sequence.
    pub seed: u32,
    /// Only these rows of the `width`×`height` image, answered as an image of `rows.len()` rows,
    /// every pixel the same as in the whole image; `None` renders every row.
    pub rows: Option<RowBand>,
    /// Split the render into this many row bands rendered by other instances (the server's
    /// fan-out), 1 to [`Limits::max_parts`] and at most the rows rendered; `None` renders here.
    pub parts: Option<u32>,
    /// Render in passes of doubling spp and answer the whole image after each one (fast engine
    /// only; see [`crate::progressive`]).
    pub progressive: bool,
}

impl Default for RenderRequest {
    /// 1024×768, spp 4, the default engine, binary PPM, seed 0, every row, here: smallpt's own
    /// render.
    fn default() -> RenderRequest {
        RenderRequest {
            width: 1024,
            height: 768,
            spp: 4,
            engine: EngineKind::DEFAULT,
            format: Format::Ppm,
            seed: 0,
            rows: None,
            parts: None,
            progressive: false,
        }
    }
}

/// A parameter of a render request. Everything said about one — its name, what it accepts, its
/// default, its help — comes from here: the query/JSON parser, the error messages, the CLI's
/// flags and the README's table ([`Param::markdown_table`], checked by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// Image width.
    Width,
    /// Image height.
    Height,
    /// Samples per pixel.
    Spp,
    /// The engine.
    Engine,
    /// The output format.
    Format,
    /// The random seed.
    Seed,
    /// A band of rows.
    Rows,
    /// Fan-out parts.
    Parts,
    /// Progressive passes.
    Progressive,
}

impl Param {
    /// Every parameter, in the order they are documented.
    pub const ALL: [Param; 9] = [
        Param::Width,
        Param::Height,
        Param::Spp,
        Param::Engine,
        Param::Format,
        Param::Seed,
        Param::Rows,
        Param::Parts,
        Param::Progressive,
    ];

    /// The name in query strings, JSON and CLI flags.
    pub fn name(self) -> &'static str {
        match self {
            Param::Width => "width",
            Param::Height => "height",
            Param::Spp => "spp",
            Param::Engine => "engine",
            Param::Format => "format",
            Param::Seed => "seed",
            Param::Rows => "rows",
            Param::Parts => "parts",
            Param::Progressive => "progressive",
        }
    }

    /// The parameter called `name`.
    pub fn from_name(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Every name, comma-separated.
    pub fn names() -> String {
        Param::ALL.map(Param::name).join(", ")
    }

    /// What the parameter means, in one sentence.
    pub fn help(self) -> &'static str {
        match self {
            Param::Width => "Image width in pixels.",
            Param::Height => "Image height in pixels.",
            Param::Spp => "Samples per pixel, rounded up to a multiple of 4 (2×2 subpixels × ⌈spp/4⌉ samples).",
            Param::Engine => "The engine.",
            Param::Format => "The output format.",
            Param::Seed => "The random seed; 0 is smallpt's own random sequence.",
            Param::Rows => {
                "Only rows A (included) to B (excluded), 0-based from the top: an image of B − A rows whose \
                 every pixel is that pixel of the whole render."
            }
            Param::Parts => {
                "Fan the render out over this many row bands rendered by other instances (the server's \
                 fan-out); the answer is byte-identical to the render without `parts`."
            }
            Param::Progressive => {
                "Render in passes of doubling spp (4, 8, 16, … up to spp) and send the whole image after \
                 each, as parts of a `multipart/x-mixed-replace` stream; every frame is byte-identical to \
                 the one-shot render at its spp. Fast and nee engines only; the image's sums must fit in memory."
            }
        }
    }

    /// The inclusive range of an integer parameter under `limits`.
    pub fn range(self, limits: &Limits) -> Option<(u32, u32)> {
        match self {
            Param::Width => Some((1, limits.max_width)),
            Param::Height => Some((1, limits.max_height)),
            Param::Spp => Some((1, limits.max_spp)),
            Param::Seed => Some((0, MAX_SEED)),
            Param::Parts => Some((1, limits.max_parts)),
            Param::Engine | Param::Format | Param::Rows | Param::Progressive => None,
        }
    }

    /// What the parameter accepts under `limits`, in words.
    pub fn allowed(self, limits: &Limits) -> String {
        match self {
            Param::Engine => format!("one of {}", choice_list(EngineKind::ALL, EngineKind::name)),
            Param::Format => format!("one of {}", choice_list(Format::ALL, Format::name)),
            Param::Rows => "`A-B` with 0 <= A < B <= height".to_string(),
            Param::Progressive => format!(
                "0 or 1, or false or true; at most {} pixels rendered",
                limits.max_progressive_bytes / PROGRESSIVE_BYTES_PER_PIXEL
            ),
            Param::Parts => format!("an integer from 1 to {} and at most the rows rendered", limits.max_parts),
            // Limits without a per-instance bound (the CLI's) leave the clause out.
            Param::Spp if limits.max_samples < u64::MAX => format!(
                "an integer from 1 to {}; width × rows rendered × effective spp at most {} per instance (with \
                 `parts`, the largest part's)",
                limits.max_spp, limits.max_samples
            ),
            p => {
                let (min, max) = p.range(limits).unwrap_or_default();
                format!("an integer from {min} to {max}")
            }
        }
    }

    /// The value of `self` in `req`, as a request spells it; `None` for an optional one not set.
    pub fn value(self, req: &RenderRequest) -> Option<String> {
        match self {
            Param::Width => Some(req.width.to_string()),
            Param::Height => Some(req.height.to_string()),
            Param::Spp => Some(req.spp.to_string()),
            Param::Engine => Some(req.engine.to_string()),
            Param::Format => Some(req.format.to_string()),
            Param::Seed => Some(req.seed.to_string()),
            Param::Rows => req.rows.map(|r| r.to_string()),
            Param::Parts => req.parts.map(|n| n.to_string()),
            Param::Progressive => Some(if req.progressive { "1" } else { "0" }.to_string()),
        }
    }

    /// The default, as the help and the README show it.
    pub fn default_text(self) -> String {
        match self {
            Param::Rows => "all".to_string(),
            Param::Parts => "none".to_string(),
            p => p.value(&RenderRequest::default()).unwrap_or_default(),
        }
    }

    /// Sets `self` in `req` from a non-empty `value`.
    fn set(self, req: &mut RenderRequest, value: &str, limits: &Limits) -> Result<(), RequestError> {
        let param = self.name();
        let int = || {
            let (min, max) = self.range(limits).unwrap_or_default();
            parse_int(param, value, min, max)
        };
        match self {
            Param::Width => req.width = int()?,
            Param::Height => req.height = int()?,
            Param::Spp => req.spp = int()?,
            Param::Seed => req.seed = int()?,
            Param::Parts => req.parts = Some(int()?),
            Param::Progressive => {
                req.progressive = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(RequestError::BadChoice {
                            param,
                            value: shown(value),
                            allowed: "0, 1, false, true".into(),
                        });
                    }
                }
            }
            Param::Engine => req.engine = value.parse()?,
            Param::Format => req.format = value.parse()?,
            Param::Rows => {
                // The height may come later in the pairs; `validate` checks the band against it.
                let bad = || RequestError::BadRows { value: shown(value), height: req.height };
                req.rows = Some(value.parse().map_err(|()| bad())?);
            }
        }
        Ok(())
    }

    /// The README's parameter table under `limits`: name, default, allowed, meaning (with the
    /// choices of `engine` and `format` listed with their own help).
    pub fn markdown_table(limits: &Limits) -> String {
        let mut t = String::from("| parameter | default | allowed | meaning |\n| --- | --- | --- | --- |\n");
        for p in Param::ALL {
            let allowed = match p {
                Param::Engine => choices(EngineKind::ALL.iter().map(|e| (e.name(), e.help()))),
                Param::Format => choices(Format::ALL.iter().map(|f| (f.name(), f.spec().help))),
                p => p.allowed(limits),
            };
            t += &format!("| `{}` | {} | {} | {} |\n", p.name(), p.default_text(), allowed, p.help());
        }
        t
    }
}

/// `a` (help), `b` (help), … for a table cell.
fn choices<'a>(c: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    c.map(|(name, help)| format!("`{name}` ({help})")).collect::<Vec<_>>().join(", ")
}

impl RenderRequest {
    /// Samples per subpixel: ⌈spp/4⌉ (smallpt renders 2×2 subpixels).
    pub fn samples_per_subpixel(&self) -> u32 {
        self.spp.div_ceil(4)
    }

    /// The spp actually rendered: `spp` rounded up to a multiple of 4.
    pub fn effective_spp(&self) -> u32 {
        4 * self.samples_per_subpixel()
    }

    /// The rows rendered: `rows`, or the whole height.
    pub fn band(&self) -> RowBand {
        self.rows.unwrap_or(RowBand { start: 0, end: self.height })
    }

    /// Camera samples in the rows rendered.
    pub fn total_samples(&self) -> u64 {
        u64::from(self.width) * u64::from(self.band().len()) * u64::from(self.effective_spp())
    }

    /// The row bands of a fan-out (`parts`), or `None` for a render done here.
    pub fn part_bands(&self) -> Option<Vec<RowBand>> {
        self.parts.map(|n| self.band().split(n))
    }

    /// The request one part of a fan-out sends: the same image, only `rows`, no `parts`, in
    /// `format`.
    pub fn part(&self, rows: RowBand, format: Format) -> RenderRequest {
        RenderRequest { rows: Some(rows), parts: None, format, ..*self }
    }

    /// The request as a query string that [`RenderRequest::from_query`] reads back as `self`.
    pub fn to_query(&self) -> String {
        let set = Param::ALL.into_iter().filter_map(|p| p.value(self).map(|v| format!("{}={v}", p.name())));
        set.collect::<Vec<_>>().join("&")
    }

    /// Checks every field against `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<(), RequestError> {
        let range = |param, value: u32, min: u32, max: u32| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(RequestError::OutOfRange { param, value: value.to_string(), min: min.into(), max: max.into() })
            }
        };
        for (p, value) in
            [(Param::Width, self.width), (Param::Height, self.height), (Param::Spp, self.spp), (Param::Seed, self.seed)]
        {
            let (min, max) = p.range(limits).unwrap_or_default();
            range(p.name(), value, min, max)?;
        }
        if let Some(rows) = self.rows
            && (rows.is_empty() || rows.end > self.height)
        {
            return Err(RequestError::BadRows { value: rows.to_string(), height: self.height });
        }
        if self.progressive {
            if !self.engine.progressive() {
                return Err(RequestError::ProgressiveEngine { engine: self.engine.name() });
            }
            if self.parts.is_some() {
                return Err(RequestError::ProgressiveParts);
            }
            let pixels = u64::from(self.width) * u64::from(self.band().len());
            let bytes = pixels * PROGRESSIVE_BYTES_PER_PIXEL;
            if bytes > limits.max_progressive_bytes {
                return Err(RequestError::ProgressiveTooLarge { pixels, bytes, max: limits.max_progressive_bytes });
            }
        }
        // One instance renders the band, or with `parts` the largest part.
        let mut samples = self.total_samples();
        if let Some(parts) = self.parts {
            range("parts", parts, 1, limits.max_parts.min(self.band().len()))?;
            samples = self
                .part_bands()
                .unwrap_or_default()
                .first()
                .map_or(0, |b| u64::from(self.width) * u64::from(b.len()) * u64::from(self.effective_spp()));
        }
        if samples > limits.max_samples {
            return Err(RequestError::TooManySamples {
                samples,
                effective_spp: self.effective_spp(),
                max: limits.max_samples,
            });
        }
        Ok(())
    }

    /// Builds and validates a request from (name, value) pairs: every name at most once, every
    /// value non-empty, integers as plain decimal digits; missing names take the defaults.
    pub fn from_pairs<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
        limits: &Limits,
    ) -> Result<RenderRequest, RequestError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut req = RenderRequest::default();
        let mut seen = [false; Param::ALL.len()];
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            let Some(p) = Param::from_name(name) else {
                // (A pair with no name, `=5`, still names something the caller can find.)
                let param = if name.is_empty() { "(empty name)".to_string() } else { shown(name) };
                return Err(RequestError::Unknown { param });
            };
            if std::mem::replace(&mut seen[p as usize], true) {
                return Err(RequestError::Repeated { param: p.name() });
            }
            if value.is_empty() {
                return Err(RequestError::Empty { param: p.name(), allowed: p.allowed(limits) });
            }
            p.set(&mut req, value, limits)?;
        }
        req.validate(limits)?;
        Ok(req)
    }

    /// Builds and validates a request from a URL query string (`spp=16&format=png`),
    /// percent-decoded. An empty query is the default request.
    pub fn from_query(query: &str, limits: &Limits) -> Result<RenderRequest, RequestError> {
        RenderRequest::from_pairs(form_urlencoded::parse(query.as_bytes()), limits)
    }

    /// Builds and validates a request from a JSON object such as `{"spp": 16, "format": "png"}`.
    /// Integers may be JSON numbers or strings of digits; an empty body is the default request.
    pub fn from_json(body: &[u8], limits: &Limits) -> Result<RenderRequest, RequestError> {
        RenderRequest::from_query_and_json("", body, limits)
    }

    /// [`RenderRequest::from_query`] and [`RenderRequest::from_json`] at once: a POST's query
    /// string and JSON body are one set of parameters (a parameter in both is given twice, an
    /// error: neither silently wins, and a query is never silently ignored).
    pub fn from_query_and_json(query: &str, body: &[u8], limits: &Limits) -> Result<RenderRequest, RequestError> {
        let query = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
        RenderRequest::from_pairs(query.chain(json_pairs(body)?), limits)
    }
}

/// UTF-8's byte order mark, which Windows editors and PowerShell put before JSON: not JSON, but a
/// parser may ignore it (RFC 8259, 8.1), and the body parser does.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The entries of a JSON object of parameters as text (none for an empty body).
fn json_pairs(body: &[u8]) -> Result<Vec<(String, String)>, RequestError> {
    // It used to fail at "line 1 column 1".
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let bad_body = |e: serde_json::Error| RequestError::BadBody { reason: shown_up_to(&e.to_string(), 200) };
    // Parsed as a list of entries, not a map, so a repeated key is caught rather than the last
    // one silently winning.
    let entries = serde_json::from_slice::<Entries>(body).map_err(bad_body)?.0;
    let pairs = entries.into_iter().map(|(key, value)| {
        let raw = value.get();
        let text = match raw.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(raw).map_err(bad_body)?,
            Some(b'n') => String::new(),
            // Numbers as written (4.5, 1e3, and 1e400, which as a number is out of f64's range
            // and used to fail the whole body, naming no parameter), so only plain integers
            // pass; arrays, objects and booleans fail the same checks as text.
            _ => raw.to_owned(),
        };
        Ok((key, text))
    });
    pairs.collect()
}

/// A JSON object's entries in order, repeated keys kept (serde_json's map would drop them), each
/// value as its JSON text.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

fn parse_int(param: &'static str, value: &str, min: u32, max: u32) -> Result<u32, RequestError> {
    let (min64, max64) = (u64::from(min), u64::from(max));
    // Plain decimal digits only, with an optional leading minus so "-1" reads as out of range
    // rather than as not-a-number: no "+", no spaces, no "1e3", no "4.0".
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::NotInteger { param, value: shown(value), min: min64, max: max64 });
    }
    let out_of_range = || RequestError::OutOfRange { param, value: shown(value), min: min64, max: max64 };
    if value.starts_with('-') {
        return if digits.bytes().all(|b| b == b'0') {
            parse_int(param, digits, min, max)
        } else {
            Err(out_of_range())
        };
    }
    let n: u64 = digits.parse().map_err(|_| out_of_range())?;
    if n < min64 || n > max64 {
        return Err(out_of_range());
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits::DEFAULT;

    fn q(s: &str) -> Result<RenderRequest, RequestError> {
        RenderRequest::from_query(s, &L)
    }

    #[test]
    fn defaults() {
        let r = q("").unwrap();
        assert_eq!(r, RenderRequest::default());
        assert_eq!((r.width, r.height, r.spp, r.format, r.seed), (1024, 768, 4, Format::Ppm, 0));
        assert_eq!(RenderRequest::from_json(b"", &L).unwrap(), r);
        assert_eq!(RenderRequest::from_json(b" {} ", &L).unwrap(), r);
    }

    #[test]
    fn spp_rounds_up_to_a_multiple_of_four() {
        for (spp, eff) in [(1, 4), (3, 4), (4, 4), (5, 8), (16, 16), (17, 20)] {
            let r = q(&format!("spp={spp}")).unwrap();
            assert_eq!((r.samples_per_subpixel(), r.effective_spp()), (eff / 4, eff));
        }
    }

    #[test]
    fn every_field_at_and_past_its_limits() {
        let ok = |s: &str| q(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let err = |s: &str| q(s).unwrap_err();
        ok("width=1&height=1&spp=1&seed=0");
        ok("width=8192&height=1&seed=65535");
        ok("height=8192&width=1");
        ok("spp=65536&width=1&height=1");
        for (s, param) in [
            ("width=0", "width"),
            ("width=8193", "width"),
            ("height=0", "height"),
            ("height=8193", "height"),
            ("spp=0", "spp"),
            ("spp=65537", "spp"),
            ("seed=65536", "seed"),
            ("seed=-1", "seed"),
            ("spp=99999999999999999999999", "spp"),
        ] {
            let e = err(s);
            assert!(matches!(e, RequestError::OutOfRange { .. }), "{s}: {e:?}");
            assert_eq!(e.param(), param);
            assert!(e.to_string().contains(" to "), "message names the range: {e}");
        }
        // Total samples: 8192*8192*128 = 2^33 is allowed, one step more is not.
        ok("width=8192&height=8192&spp=128");
        let e = err("width=8192&height=8192&spp=129");
        assert!(matches!(e, RequestError::TooManySamples { .. }));
        assert_eq!(e.param(), "spp");
    }

    #[test]
    fn bad_input_classes() {
        let cases: &[(&str, &str)] = &[
            ("spp=4.5", "spp"),
            ("spp=4.0", "spp"),
            ("spp=abc", "spp"),
            ("spp=+4", "spp"),
            ("spp=%204", "spp"),
            ("spp=1e3", "spp"),
            ("width=0x10", "width"),
            ("seed=--1", "seed"),
        ];
        for (s, param) in cases {
            let e = q(s).unwrap_err();
            assert!(matches!(e, RequestError::NotInteger { .. }), "{s}: {e:?}");
            assert_eq!(e.param(), *param);
        }
        assert!(matches!(q("spp="), Err(RequestError::Empty { param: "spp", .. })));
        assert!(matches!(q("spp"), Err(RequestError::Empty { param: "spp", .. })));
        assert!(matches!(q("spp=4&spp=4"), Err(RequestError::Repeated { param: "spp" })));
        assert!(matches!(q("samples=4"), Err(RequestError::Unknown { .. })));
        assert!(matches!(q("SPP=4"), Err(RequestError::Unknown { .. })));
        assert!(matches!(q("format=jpeg"), Err(RequestError::BadChoice { param: "format", .. })));
        assert!(matches!(q("engine=gpu"), Err(RequestError::BadChoice { param: "engine", .. })));
        assert_eq!(q("unknown=1").unwrap_err().param(), "unknown");
        // Found by fuzzing: a pair with an empty name named no parameter at all.
        assert_eq!(q("=5").unwrap_err().param(), "(empty name)");
        assert_eq!(RenderRequest::from_json(br#"{"": 5}"#, &L).unwrap_err().param(), "(empty name)");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(q("format=p%33").unwrap().format, Format::P3);
        assert_eq!(q("seed=-0").unwrap().seed, 0);
    }

    #[test]
    fn json_payloads() {
        let j = |s: &str| RenderRequest::from_json(s.as_bytes(), &L);
        let r = j(r#"{"spp": 16, "width": "64", "height": 48, "format": "png", "seed": 3}"#).unwrap();
        assert_eq!((r.spp, r.width, r.height, r.format, r.seed), (16, 64, 48, Format::Png, 3));
        assert!(matches!(j(r#"{"spp": 4.5}"#), Err(RequestError::NotInteger { param: "spp", .. })));
        assert!(matches!(j(r#"{"spp": -4}"#), Err(RequestError::OutOfRange { param: "spp", .. })));
        assert!(matches!(j(r#"{"spp": null}"#), Err(RequestError::Empty { param: "spp", .. })));
        assert!(matches!(j(r#"{"spp": ""}"#), Err(RequestError::Empty { param: "spp", .. })));
        assert!(matches!(j(r#"{"spp": 4, "spp": 8}"#), Err(RequestError::Repeated { param: "spp" })));
        assert!(matches!(j(r#"{"spp": [4]}"#), Err(RequestError::NotInteger { param: "spp", .. })));
        assert!(matches!(j(r#"{"spp": 1e3}"#), Err(RequestError::NotInteger { param: "spp", .. })));
        // Numbers are shown as written, and one past f64's range still names its parameter.
        let e = j(r#"{"spp": 1e400}"#).unwrap_err();
        assert!(matches!(e, RequestError::NotInteger { param: "spp", .. }) && e.to_string().contains("`1e400`"), "{e}");
        let e = j(r#"{"spp": 18446744073709551617}"#).unwrap_err();
        assert!(matches!(e, RequestError::OutOfRange { param: "spp", .. }), "{e}");
        assert!(e.to_string().contains("got 18446744073709551617"), "{e}");
        let r = j(r#"{"format": "p\u0033", "spp": "16", "engine": null}"#);
        assert!(matches!(r, Err(RequestError::Empty { param: "engine", .. })), "{r:?}");
        assert_eq!(j(r#"{"format": "p\u0033"}"#).unwrap().format, Format::P3, "escapes are decoded");
        // A value written over lines is shown on one.
        let e = j("{\"spp\": [\n4\r\n]}").unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\r') && e.contains("`[\\n4"), "{e}");
        assert!(matches!(j(r#"{"format": 3}"#), Err(RequestError::BadChoice { param: "format", .. })));
        assert!(matches!(j(r#"{"x": true}"#), Err(RequestError::Unknown { .. })));
        assert!(matches!(j(r#"[1]"#), Err(RequestError::BadBody { .. })));
        assert!(matches!(j(r#"{"spp": 4"#), Err(RequestError::BadBody { .. })));
        assert_eq!(j("nope").unwrap_err().param(), "body");
        let qj = |q: &str, s: &str| RenderRequest::from_query_and_json(q, s.as_bytes(), &L);
        let r = qj("spp=16&format=png", r#"{"width": 64}"#).unwrap();
        assert_eq!((r.spp, r.width, r.format), (16, 64, Format::Png));
        assert_eq!(qj("width=8", "").unwrap().width, 8);
        assert!(matches!(qj("spp=4", r#"{"spp": 4}"#), Err(RequestError::Repeated { param: "spp" })));
        assert!(matches!(qj("x=1", "{}"), Err(RequestError::Unknown { .. })));
    }

    #[test]
    fn rows_are_a_band_of_the_height() {
        let r = q("height=10&rows=3-7").unwrap();
        assert_eq!(r.rows, Some(RowBand { start: 3, end: 7 }));
        assert_eq!(r.total_samples(), 1024 * 4 * 4);
        assert_eq!(q("rows=0-10&height=10").unwrap().band(), RowBand { start: 0, end: 10 });
        assert_eq!(q("").unwrap().band(), RowBand { start: 0, end: 768 });
        for bad in [
            "rows=5-5",
            "rows=6-5",
            "rows=0-11",
            "rows=-1-3",
            "rows=3",
            "rows=a-b",
            "rows=1-2-3",
            "rows=+1-2",
            "rows= 1-2",
            "rows=1-99999999999",
        ] {
            let e = q(&format!("height=10&{bad}")).unwrap_err();
            assert!(matches!(e, RequestError::BadRows { .. }), "{bad}: {e:?}");
            assert_eq!(e.param(), "rows");
            assert!(e.to_string().contains("A-B"), "{e}");
        }
    }

    #[test]
    fn parts_split_the_band_into_near_equal_bands() {
        let band = RowBand { start: 0, end: 10 };
        assert_eq!(
            band.split(3),
            [RowBand { start: 0, end: 4 }, RowBand { start: 4, end: 7 }, RowBand { start: 7, end: 10 }]
        );
        assert_eq!(band.split(10).len(), 10);
        assert_eq!(RowBand { start: 5, end: 6 }.split(1), [RowBand { start: 5, end: 6 }]);
        let r = q("height=10&parts=3&rows=2-9").unwrap();
        assert_eq!(r.part_bands().unwrap().iter().map(RowBand::len).collect::<Vec<_>>(), [3, 2, 2]);
        // More parts than rows, zero parts, more than the cap: refused, naming `parts`.
        for bad in ["height=10&parts=11", "height=10&rows=0-2&parts=3", "parts=0", "parts=101"] {
            let e = q(bad).unwrap_err();
            assert_eq!(e.param(), "parts", "{bad}: {e}");
            assert!(e.to_string().contains(" to "), "{e}");
        }
        let capped = Limits { max_parts: 4, ..L };
        assert_eq!(RenderRequest::from_query("parts=5", &capped).unwrap_err().param(), "parts");
    }

    #[test]
    fn the_sample_limit_is_per_instance() {
        // 8192×8192 at spp 256 is twice the limit in one piece, within it in two parts.
        assert_eq!(q("width=8192&height=8192&spp=256").unwrap_err().param(), "spp");
        q("width=8192&height=8192&spp=256&parts=2").unwrap();
        q("width=8192&height=8192&spp=256&rows=0-4096").unwrap();
        assert!(matches!(q("width=8192&height=8192&spp=260&parts=2"), Err(RequestError::TooManySamples { .. })));
        q("width=8192&height=8192&spp=260&parts=3").unwrap();
    }

    #[test]
    fn a_request_survives_its_query_string() {
        for s in ["", "width=64&height=48&spp=9&engine=classic&format=pfm&seed=3&rows=5-40", "parts=7&rows=0-100"] {
            let r = q(s).unwrap();
            assert_eq!(q(&r.to_query()).unwrap(), r, "{s}");
        }
        let r = q("parts=4&format=png").unwrap();
        let part = r.part(RowBand { start: 1, end: 2 }, Format::Ppm);
        assert_eq!(
            (part.rows, part.parts, part.format, part.spp),
            (Some(RowBand { start: 1, end: 2 }), None, Format::Ppm, r.spp)
        );
    }

    #[test]
    fn errors_repeat_values_escaped_and_cut() {
        let e = q("spp=4%0AFC%20Invoke%20End%20RequestId:%20forged").unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains('\n') && msg.contains("\\n"), "{msg}");
        let e = q("x%0D%0Ay=1").unwrap_err();
        assert!(!e.to_string().contains('\r') && !e.param().contains('\n'), "{e}");
        let long = format!("spp={}", "9".repeat(5000));
        let msg = q(&long).unwrap_err().to_string();
        assert!(msg.len() < 300 && msg.contains("5000 bytes in all"), "{msg}");
        assert_eq!(shown("a\u{2028}b\u{85}c\u{7f}"), "a\\u{2028}b\\u{85}c\\u{7f}");
        assert_eq!(shown("plain"), "plain");
    }
}
