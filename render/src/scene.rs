//! The scene as plain data: spheres, materials, emission and the camera. Both engines read this;
//! neither hard-codes it. [`Scene::cornell`] is smallpt's scene, the default and only one for now.

use crate::vec3::Vec3;

/// How a surface scatters light.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Material {
    /// Ideal Lambertian reflector.
    Diffuse,
    /// Ideal mirror.
    Mirror,
    /// Smooth dielectric (glass, index [`GLASS_IOR`]) with Fresnel reflection.
    Glass,
}

/// Index of refraction of [`Material::Glass`]; the outside medium is air with index 1.
pub const GLASS_IOR: f64 = 1.5;

/// A sphere with its material.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sphere {
    /// Radius.
    pub radius: f64,
    /// Centre.
    pub center: Vec3,
    /// Emitted radiance.
    pub emission: Vec3,
    /// Reflectance (albedo) per channel.
    pub color: Vec3,
    /// Scattering model.
    pub material: Material,
}

/// A pinhole camera in smallpt's parametrisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Eye position.
    pub origin: Vec3,
    /// Viewing direction before normalisation.
    pub direction: Vec3,
    /// Half-extent of the image plane per unit of aspect (smallpt's `.5135`, about 54° vertical).
    pub fov_scale: f64,
    /// Camera rays start this far along their direction, at the image plane, which puts the eye
    /// outside the front wall (smallpt's `140`).
    pub near: f64,
}

/// The camera's derived frame for one image size: what smallpt computes at the top of `main`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraFrame {
    /// Eye position.
    pub origin: Vec3,
    /// Unit viewing direction.
    pub dir: Vec3,
    /// Image-plane x axis, scaled by the aspect ratio.
    pub cx: Vec3,
    /// Image-plane y axis.
    pub cy: Vec3,
    /// Start distance of camera rays.
    pub near: f64,
    /// How far from the image's centre camera samples reach, in units of `cx` and `cy`: half the
    /// image and the quarter pixel the tent filter spreads past each edge (0.5 + 0.25/width,
    /// 0.5 + 0.25/height).
    pub reach: [f64; 2],
}

impl Camera {
    /// The frame for a `width`×`height` image. `cx` is `width*scale/height` along x, as in smallpt.
    pub fn frame(&self, width: u32, height: u32) -> CameraFrame {
        let dir = self.direction.norm();
        let cx = Vec3::new(f64::from(width) * self.fov_scale / f64::from(height), 0.0, 0.0);
        let cy = cx.cross(dir).norm() * self.fov_scale;
        let reach = [0.5 + 0.25 / f64::from(width), 0.5 + 0.25 / f64::from(height)];
        CameraFrame { origin: self.origin, dir, cx, cy, near: self.near, reach }
    }
}

/// Spheres plus camera.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// The spheres, in smallpt's order (intersection ties are broken by this order).
    pub spheres: Vec<Sphere>,
    /// The camera.
    pub camera: Camera,
}

impl Scene {
    /// smallpt's Cornell box: five 1e5-radius walls (the "front" one black), a mirror ball, a
    /// glass ball and a large spherical light poking through the ceiling.
    pub fn cornell() -> Scene {
        use Material::*;
        let s = |radius, center, emission, color, material| Sphere { radius, center, emission, color, material };
        let v = Vec3::new;
        let black = Vec3::ZERO;
        let grey = v(0.75, 0.75, 0.75);
        // 681.6 - .27 is kept as an expression: it is the double smallpt computes.
        #[allow(clippy::eq_op)]
        let spheres = vec![
            s(1e5, v(1e5 + 1.0, 40.8, 81.6), black, v(0.75, 0.25, 0.25), Diffuse), // left
            s(1e5, v(-1e5 + 99.0, 40.8, 81.6), black, v(0.25, 0.25, 0.75), Diffuse), // right
            s(1e5, v(50.0, 40.8, 1e5), black, grey, Diffuse),                      // back
            s(1e5, v(50.0, 40.8, -1e5 + 170.0), black, black, Diffuse),            // front
            s(1e5, v(50.0, 1e5, 81.6), black, grey, Diffuse),                      // bottom
            s(1e5, v(50.0, -1e5 + 81.6, 81.6), black, grey, Diffuse),              // top
            s(16.5, v(27.0, 16.5, 47.0), black, v(1.0, 1.0, 1.0) * 0.999, Mirror), // mirror
            s(16.5, v(73.0, 16.5, 78.0), black, v(1.0, 1.0, 1.0) * 0.999, Glass),  // glass
            s(600.0, v(50.0, 681.6 - 0.27, 81.6), v(12.0, 12.0, 12.0), black, Diffuse), // light
        ];
        let camera =
            Camera { origin: v(50.0, 52.0, 295.6), direction: v(0.0, -0.042612, -1.0), fov_scale: 0.5135, near: 140.0 };
        Scene { spheres, camera }
    }
}

impl Default for Scene {
    fn default() -> Scene {
        Scene::cornell()
    }
}
