//! Render engines: each turns one image row into linear RGB values.
//!
//! The streaming, parallel, cancellable driver in [`crate::stream`] sees only the [`Engine`]
//! trait, so a new engine plugs in by implementing it and adding an [`EngineKind`] arm to [`build`].

pub mod classic;
pub mod fast;

use crate::color::Rgb;
use crate::control::CancelToken;
use crate::request::{EngineKind, RenderRequest};
use crate::scene::Scene;

/// A scene an engine cannot render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SceneError {
    /// More spheres than the fast engine's tables hold.
    #[error("the fast engine takes at most {max} spheres; this scene has {got} (the classic engine takes any number)")]
    TooManySpheres {
        /// The scene's spheres.
        got: usize,
        /// The most the engine takes.
        max: usize,
    },
    /// A progressive render asked of an engine that renders in one pass.
    #[error("the {engine} engine renders in one pass; progressive renders take the fast or nee engine")]
    NotProgressive {
        /// The engine.
        engine: &'static str,
    },
}

/// The render was cancelled before the row was finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

/// What one row cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowStats {
    /// Ray segments traced: one per ray–scene intersection query.
    pub segments: u64,
}

/// Something that renders rows of one image.
pub trait Engine: Send + Sync {
    /// Renders image row `row` (0 is the top row) into `out`, one linear RGB value per pixel: the
    /// mean of the four subpixels' clamped averages. Checks `cancel` at least once per pixel.
    fn render_row(&self, row: u32, out: &mut [Rgb], cancel: &CancelToken) -> Result<RowStats, Cancelled>;
}

/// The engine a request asks for, set up for that request, or why it cannot take the scene.
pub fn build(scene: &Scene, req: &RenderRequest) -> Result<Box<dyn Engine>, SceneError> {
    Ok(match req.engine {
        EngineKind::Fast | EngineKind::Nee => Box::new(fast::Fast::new(scene, req)?),
        EngineKind::Classic => Box::new(classic::Classic::new(scene, req)),
    })
}
