//! The nearest hit of every lane's ray: smallpt's ray–sphere test rewritten so the 1e5-radius
//! walls lose no precision in f32, and in smallpt's closed box one wall per axis instead of six.

use super::lanes::Lanes;
use super::math::{V3, dot};
use super::tables::{MAX_SPHERES, Sides, Tables};
use super::walls::Walls;

/// Hits closer than this are ignored, so a bounced ray does not hit its own surface. Larger than
/// classic's 1e-4: f32 hit points are off by up to ~1e-5 at this scene's scale (about 100).
pub(super) const EPS: f32 = 1e-3;
/// "No hit" distance.
pub(super) const INF: f32 = 1e20;

/// Every sphere's constants in every lane, in the tables' test order.
pub(super) type Spheres<L> = [SphereLanes<L>; MAX_SPHERES];

/// [`Spheres`] for `k`.
#[inline(always)]
pub(super) fn spheres<L: Lanes>(l: L, k: &Tables) -> Spheres<L> {
    std::array::from_fn(|j| {
        let i = usize::from(k.order[j]);
        SphereLanes {
            anchor: V3 { x: l.splat(k.anchor[0][i]), y: l.splat(k.anchor[1][i]), z: l.splat(k.anchor[2][i]) },
            w: l.splat(k.w_axis[i]),
            w2: l.splat(2.0 * k.w_axis[i]),
            id: l.splat_u(u32::from(k.slot[i])),
        }
    })
}

/// Each lane's nearest hit along `o + t·d`: the distance (`INF` for none) and the hit sphere's
/// slot. In smallpt's box, the one wall ahead that the box's planes pick ([`one_wall`]), else one
/// wall per axis, the one ahead of the lane, and both along an axis some lane moves nearly
/// parallel to ([`pair`]; see [`walls`](super::walls)); every wall when some lane starts outside
/// the box. The other spheres by axis (the axis is a constant in each loop).
#[inline(always)]
pub(super) fn nearest<L: Lanes>(l: L, k: &Tables, spheres: &Spheres<L>, o: V3<L::F>, d: V3<L::F>) -> (L::F, L::U) {
    let mut t = l.splat(INF);
    let mut id = l.splat_u(0);
    let first = if let Some(w) = &k.walls {
        let graze = [grazing::<L, 0>(l, w, d), grazing::<L, 1>(l, w, d), grazing::<L, 2>(l, w, d)];
        let out = outside::<L, 0>(l, w, o) | outside::<L, 1>(l, w, o) | outside::<L, 2>(l, w, o);
        let exit = exit_plane(l, w, o, d);
        if l.bits(graze[0] | graze[1] | graze[2] | out | exit.unsure) == 0 {
            one_wall(l, &k.sides, &exit, o, d, &mut t, &mut id);
        } else if l.bits(out) == 0 {
            // The walls ahead, and both walls along an axis some lane grazes (in the pairs'
            // order, as the every-wall test takes them): a grazing step mostly grazes one axis,
            // so four wall tests, not six.
            pair::<L, 0>(l, &spheres[0], &spheres[1], graze[0], o, d, &mut t, &mut id);
            pair::<L, 1>(l, &spheres[2], &spheres[3], graze[1], o, d, &mut t, &mut id);
            pair::<L, 2>(l, &spheres[4], &spheres[5], graze[2], o, d, &mut t, &mut id);
        } else {
            for (a, walls) in spheres[..6].chunks(2).enumerate() {
                for s in walls {
                    match a {
                        0 => nearer::<L, 0, true, true>(l, s, o, d, &mut t, &mut id),
                        1 => nearer::<L, 1, true, true>(l, s, o, d, &mut t, &mut id),
                        _ => nearer::<L, 2, true, true>(l, s, o, d, &mut t, &mut id),
                    }
                }
            }
        }
        6
    } else {
        0
    };
    others(l, k, spheres, first, o, d, &mut t, &mut id);
    (t, id)
}

/// [`nearest`] among the spheres that are not walls of smallpt's box (every sphere when the
/// scene is not one): the shadow rays' test, whose target is inside the box.
#[inline(always)]
pub(super) fn nearest_beyond_walls<L: Lanes>(
    l: L,
    k: &Tables,
    spheres: &Spheres<L>,
    o: V3<L::F>,
    d: V3<L::F>,
) -> (L::F, L::U) {
    let (mut t, mut id) = (l.splat(INF), l.splat_u(0));
    others(l, k, spheres, if k.walls.is_some() { 6 } else { 0 }, o, d, &mut t, &mut id);
    (t, id)
}

/// [`nearer`] for the spheres from `first` on in test order, by group.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn others<L: Lanes>(
    l: L,
    k: &Tables,
    spheres: &Spheres<L>,
    first: usize,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    let e = k.ends;
    for s in &spheres[first..e[0]] {
        nearer::<L, 0, true, false>(l, s, o, d, t, id);
    }
    for s in &spheres[e[0]..e[1]] {
        nearer::<L, 1, true, false>(l, s, o, d, t, id);
    }
    for s in &spheres[e[1]..e[2]] {
        nearer::<L, 2, true, false>(l, s, o, d, t, id);
    }
    for s in &spheres[e[2]..e[3]] {
        nearer::<L, 0, false, false>(l, s, o, d, t, id);
    }
    for s in &spheres[e[3]..e[4]] {
        nearer::<L, 1, false, false>(l, s, o, d, t, id);
    }
    for s in &spheres[e[4]..e[5]] {
        nearer::<L, 2, false, false>(l, s, o, d, t, id);
    }
}

/// Lanes whose origin is outside smallpt's box (when the scene is one): rays that leaked
/// through a wall. Only the tests count them.
#[cfg(test)]
pub(super) fn outside_box<L: Lanes>(l: L, k: &Tables, o: V3<L::F>) -> u32 {
    k.walls
        .as_ref()
        .map_or(0, |w| l.bits(outside::<L, 0>(l, w, o) | outside::<L, 1>(l, w, o) | outside::<L, 2>(l, w, o)))
}

/// One sphere's constants in every lane.
pub(super) struct SphereLanes<L: Lanes> {
    anchor: V3<L::F>,
    /// The axis component of w (± radius), and twice it.
    w: L::F,
    w2: L::F,
    id: L::U,
}

/// Moves `t`, `id` to the sphere `s` in lanes where it is hit nearer, with `s.w` along axis `A`.
///
/// With v = anchor − o and c − o = w + v:
///   b = (c − o)·d = w·d + v·d,  C = |c − o|² − r² = 2 w·v + |v|²  (no r² term: exact for huge
///   spheres), and t = b ∓ √(b² − C): for `BIG` spheres as q = b + sign(b)√(b² − C) and C/q (no
///   cancellation), for small ones directly (no divide on the way to the next segment).
/// A negative discriminant makes √ NaN, which fails every comparison: a miss, with no test.
///
/// A `WALL` of smallpt's box (which holds every ray) is only ever left: its hit is the far root,
/// with no EPS, and at once for a ray already beyond it. Its near root is an f32 artifact (a ray
/// that starts a rounding error outside the wall it just left, re-entering it), and a hit on the
/// wall ahead closer than EPS is real (a ray leaving the floor or a ball within EPS of a wall):
/// taking the one or skipping the other lets rays out of the box through the wall.
#[inline(always)]
fn nearer<L: Lanes, const A: u8, const BIG: bool, const WALL: bool>(
    l: L,
    s: &SphereLanes<L>,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    let v = s.anchor - o;
    hit_sphere::<L, BIG, WALL>(l, s, v, d, v.pick(A), d.pick(A), t, id);
}

/// [`nearer`] given v = anchor − o and the components of v and d along the axis of `s.w`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn hit_sphere<L: Lanes, const BIG: bool, const WALL: bool>(
    l: L,
    s: &SphereLanes<L>,
    v: V3<L::F>,
    d: V3<L::F>,
    v_axis: L::F,
    d_axis: L::F,
    t: &mut L::F,
    id: &mut L::U,
) {
    let b = l.fma(s.w, d_axis, dot(l, v, d));
    let c = l.fma(s.w2, v_axis, dot(l, v, v));
    let root = l.sqrt(l.fma(b, b, -c));
    let (near, far) = if BIG {
        let q = b + l.with_sign_of(root, b);
        let t0 = c / q;
        (l.min(t0, q), l.max(t0, q))
    } else {
        (b - root, b + root)
    };
    let (tk, hit) = if WALL {
        // Both roots negative: the ray starts beyond the wall and moves out (rounding put a hit
        // point where two walls meet a hair outside one of them); it meets the wall where it is.
        let zero = l.splat(0.0);
        let tk = l.select(l.lt(far, zero), zero, far);
        (tk, l.lt(tk, *t))
    } else {
        let eps = l.splat(EPS);
        let tk = l.select(l.lt(eps, near), near, far);
        (tk, l.lt(eps, tk) & l.lt(tk, *t))
    };
    *t = l.select(hit, tk, *t);
    *id = l.select_u(hit, s.id, *id);
}

/// Lanes that must test both walls of the pair along `A`: moving within `graze` of parallel to
/// them (lanes outside the box test every wall).
#[inline(always)]
fn grazing<L: Lanes, const A: u8>(l: L, w: &Walls, d: V3<L::F>) -> L::M {
    l.lt(l.abs(d.pick(A)), l.splat(w.graze[usize::from(A)]))
}

/// The walls of the pair along `A` a step must test: both where some lane of `graze` moves
/// nearly parallel to them, else the one ahead of each lane.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pair<L: Lanes, const A: u8>(
    l: L,
    low: &SphereLanes<L>,
    high: &SphereLanes<L>,
    graze: L::M,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    if l.bits(graze) == 0 {
        ahead::<L, A>(l, low, high, o, d, t, id);
    } else {
        nearer::<L, A, true, true>(l, low, o, d, t, id);
        nearer::<L, A, true, true>(l, high, o, d, t, id);
    }
}

/// Lanes whose origin is outside the box along `A` by more than EPS (a hit point on a wall rounds
/// to either side of it).
#[inline(always)]
fn outside<L: Lanes, const A: u8>(l: L, w: &Walls, o: V3<L::F>) -> L::M {
    let a = usize::from(A);
    let (lo, hi) = (l.splat(w.lo[a] - EPS), l.splat(w.hi[a] + EPS));
    l.lt(o.pick(A), lo) | l.lt(hi, o.pick(A))
}

/// [`nearer`] for the wall of a facing pair ahead of each lane along axis `A`: `high` where the
/// lane moves toward +A, `low` where it moves toward −A.
#[inline(always)]
fn ahead<L: Lanes, const A: u8>(
    l: L,
    low: &SphereLanes<L>,
    high: &SphereLanes<L>,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    let up = l.lt(l.splat(0.0), d.pick(A));
    // The pair's anchors differ only along A (`Tables::new` checks): one blend, not three.
    let mut anchor = high.anchor;
    let along = l.select(up, high.anchor.pick(A), low.anchor.pick(A));
    match A {
        0 => anchor.x = along,
        1 => anchor.y = along,
        _ => anchor.z = along,
    }
    let s = SphereLanes {
        anchor,
        w: l.select(up, high.w, low.w),
        w2: l.select(up, high.w2, low.w2),
        id: l.select_u(up, high.id, low.id),
    };
    nearer::<L, A, true, true>(l, &s, o, d, t, id);
}

/// Where each lane's ray leaves the box's planes (the walls' planes, which touch the walls at
/// their anchors), and which wall that makes the nearest.
pub(super) struct Exit<L: Lanes> {
    /// Lanes whose nearest wall is along x, along y (else z)...
    x: L::M,
    y: L::M,
    /// ...and its side, 2·axis + (1 at the high end): the index into [`Sides`].
    side: L::U,
    /// Lanes where the planes do not settle which wall is nearest.
    pub unsure: L::M,
}

/// The plane ahead along each axis: where the ray meets it (t_a), and how much sooner it can meet
/// the wall there, t_a − sag/|d_a| (see [`one_wall`]), given `inv` = 1/d_a; whether the ray moves
/// toward +a.
#[inline(always)]
fn plane<L: Lanes, const A: u8>(l: L, w: &Walls, o: V3<L::F>, d: V3<L::F>, inv: L::F) -> (L::M, L::F, L::F) {
    let a = usize::from(A);
    let up = l.lt(l.splat(0.0), d.pick(A));
    let t = (l.select(up, l.splat(w.hi[a]), l.splat(w.lo[a])) - o.pick(A)) * inv;
    (up, t, l.fma(l.splat(-w.sag[a]), l.abs(inv), t))
}

/// [`Exit`] for every lane (meaningful where no lane is [`grazing`] or outside the box).
#[inline(always)]
pub(super) fn exit_plane<L: Lanes>(l: L, w: &Walls, o: V3<L::F>, d: V3<L::F>) -> Exit<L> {
    // The three reciprocals from one divide, 1/d_x = d_y·d_z / (d_x·d_y·d_z): a divide takes the
    // divider for 10 cycles on a 16-lane vector (Intel), a multiply one slot. They are a few ulps
    // off, which moves the planes by far less than `sag`'s 0.01 of slack; lanes that graze a
    // wall (|d_a| < `graze`, where the product could underflow) take [`pair`]'s path, not this.
    let (xy, yz) = (d.x * d.y, d.y * d.z);
    let r = l.splat(1.0) / (xy * d.z);
    let (ix, iy, iz) = (yz * r, d.x * d.z * r, xy * r);
    let (ux, tx, soon_x) = plane::<L, 0>(l, w, o, d, ix);
    let (uy, ty, soon_y) = plane::<L, 1>(l, w, o, d, iy);
    let (uz, tz, soon_z) = plane::<L, 2>(l, w, o, d, iz);
    let m = l.min(tx, l.min(ty, tz));
    // A wall can be the nearest only where its soonest possible hit comes before the nearest
    // plane: the nearest plane's always does (sag > 0); exactly one must, or the lane is unsure.
    let (cx, cy, cz) = (l.lt(soon_x, m), l.lt(soon_y, m), l.lt(soon_z, m));
    let two = (cx & cy) | (cz & (cx | cy));
    // A ray starting a rounding error beyond a plane ahead (m < 0) may be beyond two walls at
    // once, both met at t = 0, where the first in axis order wins: leave those to `ahead`.
    let unsure = two | !(cx | cy | cz) | l.lt(m, l.splat(0.0));
    let side = l.select_u(cx, side_of(l, ux, 0), l.select_u(cy, side_of(l, uy, 1), side_of(l, uz, 2)));
    Exit { x: cx, y: cy, side, unsure }
}

/// [`nearer`] for the one wall [`exit_plane`] found, in lanes where it is `unsure` of none: the
/// same arithmetic as [`ahead`] on that wall, so the same hit, for a third of the work.
///
/// **Why the planes settle it.** Each wall is a sphere touching its plane (at the anchor) from
/// the box's side, so a ray inside meets the wall no later than the plane: t_wall ≤ t_plane.
/// Where it leaves the box, the wall lies at most `bulge` in front of its plane (R − √(R² − r₀²)
/// over the box's face), so t_wall ≥ t_plane − bulge/|d_a|. The nearest wall is met no later
/// than the nearest plane, m; a wall whose soonest possible hit, t_plane − sag/|d_a| (sag ≥
/// bulge, see `Walls::sag`), is past m cannot be nearest. When only one wall is left, it is the
/// nearest, and taking the nearest of the three (as `ahead` does) finds it too. Lanes leaving
/// within sag of an edge of the box are unsure, and their step tests the three walls ahead: in
/// smallpt's room, 1.4 % of 8-lane steps.
#[inline(always)]
fn one_wall<L: Lanes>(l: L, k: &Sides, exit: &Exit<L>, o: V3<L::F>, d: V3<L::F>, t: &mut L::F, id: &mut L::U) {
    // (Functions, not closures: a closure does not inherit the kernel's target features.)
    let i = exit.side;
    let s = SphereLanes {
        anchor: V3 { x: l.lookup8(&k.anchor[0], i), y: l.lookup8(&k.anchor[1], i), z: l.lookup8(&k.anchor[2], i) },
        w: l.lookup8(&k.w, i),
        w2: l.lookup8(&k.w2, i),
        id: l.to_u(l.lookup8(&k.id, i)),
    };
    let v = s.anchor - o;
    hit_sphere::<L, true, true>(l, &s, v, d, along(l, exit, v), along(l, exit, d), t, id);
}

/// The side index of the plane ahead along `axis`: 2·axis, plus 1 where the ray moves `up`.
#[inline(always)]
fn side_of<L: Lanes>(l: L, up: L::M, axis: u32) -> L::U {
    l.select_u(up, l.splat_u(2 * axis + 1), l.splat_u(2 * axis))
}

/// Each lane's component of `v` along the axis of its [`Exit`] wall.
#[inline(always)]
fn along<L: Lanes>(l: L, exit: &Exit<L>, v: V3<L::F>) -> L::F {
    l.select(exit.x, v.x, l.select(exit.y, v.y, v.z))
}
