// CPU tile rasteriser for 3D Gaussian splatting (forward and backward), ros_gs.render.
//
// Semantics (identical to ros_gs/render/reference.py and to gsplat's rasterize_to_pixels):
//   * 16x16 tiles; Gaussian g is listed in the tiles its radius box touches (per-axis radii
//     rx, ry as gsplat 1.5.3): tx in [floor((x - rx) / 16), ceil((x + rx) / 16)) clamped to the
//     tile grid, ty the same with y and ry; a radius <= 0 means culled;
//   * per tile, Gaussians are composited front to back by camera depth (stable, ties by index);
//   * pixel (i, j) has its centre at (j + 0.5, i + 0.5); d = mean2d - centre;
//     sigma = 1/2 (a dx^2 + c dy^2) + b dx dy; alpha = min(0.999, o exp(-sigma));
//     skipped when sigma < 0 or alpha < 1/255;
//   * a pixel stops before a Gaussian that would bring T to <= 1e-4 (that one is not added);
//   * outputs: sum_i c_i alpha_i T_i per channel, T_final, the count of Gaussians of the tile
//     list up to and including the last contributor, and the median Gaussian (the contributor
//     at which T goes from > 0.5 to <= 0.5, -1 if none).
//
// Speed-ups that do not change the result:
//   * a Gaussian only visits the pixels of its alpha support box, the bounding box of the
//     ellipse o exp(-sigma) >= 1/255 (with a margin on sigma), clipped to its tile range; tiles
//     outside that box are dropped from its tile range (no pixel there could take it);
//   * Gaussians with opacity < 1/255 are dropped (alpha <= opacity);
//   * pixels are processed a box row at a time in branch-free loops the compiler vectorises
//     (float: a polynomial exp, ~1 ulp; double: std::exp).
//
// Backward walks each tile's list back to front, recovering T_i = T_{i+1} / (1 - alpha_i), and
// writes each (tile, Gaussian) pair's gradient to its own slot; slots are summed per Gaussian
// at the end, so there is no write contention and the result is deterministic.

#include <torch/extension.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int TILE = 16;
constexpr int TILE_PIX = TILE * TILE;
constexpr double ALPHA_MIN = 1.0 / 255.0;
constexpr double ALPHA_MAX = 0.999;
constexpr double T_MIN = 1e-4;
// margins on the sigma threshold of the support box; they only need to exceed the float
// rounding of sigma (relative ~1e-6), so no pixel that could reach 1/255 is left out
constexpr double SIGMA_REL_MARGIN = 1e-3;
constexpr double SIGMA_ABS_MARGIN = 1e-2;

// packed per-Gaussian record (one row of the "gauss" tensor): mean, conic, opacity, and the
// sigma beyond which alpha < 1/255 (inf for a degenerate conic: no skipping then)
enum { GX = 0, GY, GA, GB, GC, GO, GSMAX, GPAD, GSTRIDE };

struct Box {
    int32_t x0, x1, y0, y1;  // pixel box, exclusive ends; x0 >= x1 means "not rendered"
};

// exp: Cody-Waite range reduction + the Cephes expf polynomial (~1 ulp), plain arithmetic and
// bit casts so that it vectorises inside `omp simd` loops.  The input is clamped to [-80, 80]:
// exp(-80) * opacity (>= 1/255) stays a normal float (denormals are very slow on x86), and
// alpha there is far below 1/255 anyway.
static inline float exp_simd(float x) {
    x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);  // no std::min/max: their reference
    // arguments become addressable temporaries that block vectorisation
    // n = nearest integer to x / ln 2 (the 1.5 * 2^23 trick: no floor/round instruction needed)
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t e = (int32_t)n;
    return std::bit_cast<float>(std::bit_cast<int32_t>(p) + (e << 23));
}
static inline double exp_simd(double x) { return std::exp(x); }

// ---------------------------------------------------------------------------------------
// Binning
// ---------------------------------------------------------------------------------------

static int num_chunks(size_t n) {
#ifdef _OPENMP
    const int t = omp_get_max_threads();
#else
    const int t = 1;
#endif
    return (int)std::max<size_t>(1, std::min<size_t>((size_t)t, n / 1024 + 1));
}

// stable LSD radix sort of (key, value) pairs, 8 bits per pass; each pass is a parallel
// counting sort over contiguous chunks (per-chunk histograms keep it stable)
static void radix_sort_u32(std::vector<uint32_t>& keys, std::vector<int32_t>& vals) {
    const size_t n = keys.size();
    const int nc = num_chunks(n);
    const size_t L = (n + nc - 1) / std::max(nc, 1);
    std::vector<uint32_t> k2(n);
    std::vector<int32_t> v2(n);
    std::vector<size_t> hist((size_t)nc * 256);
    for (int shift = 0; shift < 32; shift += 8) {
        std::fill(hist.begin(), hist.end(), 0);
#pragma omp parallel for num_threads(nc) schedule(static, 1)
        for (int c = 0; c < nc; ++c) {
            size_t* h = hist.data() + (size_t)c * 256;
            const size_t e = std::min(n, (c + 1) * L);
            for (size_t i = c * L; i < e; ++i) h[(keys[i] >> shift) & 0xFFu]++;
        }
        size_t total = 0;
        bool one_bucket = false;
        for (int bkt = 0; bkt < 256; ++bkt) {
            size_t in_bucket = 0;
            for (int c = 0; c < nc; ++c) {
                const size_t v = hist[(size_t)c * 256 + bkt];
                hist[(size_t)c * 256 + bkt] = total;
                total += v;
                in_bucket += v;
            }
            one_bucket |= (in_bucket == n);
        }
        if (one_bucket) continue;  // this byte is the same everywhere
#pragma omp parallel for num_threads(nc) schedule(static, 1)
        for (int c = 0; c < nc; ++c) {
            size_t* h = hist.data() + (size_t)c * 256;
            const size_t e = std::min(n, (c + 1) * L);
            for (size_t i = c * L; i < e; ++i) {
                const size_t dst = h[(keys[i] >> shift) & 0xFFu]++;
                k2[dst] = keys[i];
                v2[dst] = vals[i];
            }
        }
        keys.swap(k2);
        vals.swap(v2);
    }
}

static inline uint32_t float_key(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // order-preserving for finite floats
}

// stable sort of Gaussian indices by depth (ties keep index order, like torch.sort(stable=True))
template <typename scalar_t>
static void depth_sort(std::vector<int32_t>& order, const scalar_t* depths) {
    if constexpr (std::is_same<scalar_t, float>::value) {
        std::vector<uint32_t> keys(order.size());
        for (size_t i = 0; i < order.size(); ++i) keys[i] = float_key(depths[order[i]]);
        radix_sort_u32(keys, order);
    } else {
        std::stable_sort(order.begin(), order.end(),
                         [depths](int32_t i, int32_t j) { return depths[i] < depths[j]; });
    }
}

struct Binned {
    torch::Tensor gauss;    // (N, GSTRIDE) scalar_t
    torch::Tensor boxes;    // (N, 4) int32
    torch::Tensor offsets;  // (n_tiles + 1,) int32
    torch::Tensor ids;      // (n_isects,) int32
    int64_t over_budget = -1;  // n_isects when it exceeds the caller's budget (nothing binned)
};

template <typename scalar_t>
static Binned bin_gaussians(const scalar_t* m2, const scalar_t* cn, const scalar_t* op,
                            const scalar_t* dep, const int32_t* radii, int64_t N, int W, int H,
                            const torch::TensorOptions& fopt, int64_t max_isects) {
    const int tw = (W + TILE - 1) / TILE, th = (H + TILE - 1) / TILE;
    const int n_tiles = tw * th;
    Binned out;
    out.gauss = torch::empty({N, GSTRIDE}, fopt);
    out.boxes = torch::empty({N, 4}, torch::kInt32);
    scalar_t* gs = out.gauss.template data_ptr<scalar_t>();
    Box* boxes = reinterpret_cast<Box*>(out.boxes.template data_ptr<int32_t>());
    const scalar_t amin = (scalar_t)ALPHA_MIN;
    std::vector<int32_t> ntiles(N);

#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < N; ++g) {
        Box bx{0, 0, 0, 0};
        const scalar_t mx = m2[2 * g], my = m2[2 * g + 1];
        const scalar_t a = cn[3 * g], b = cn[3 * g + 1], c = cn[3 * g + 2], o = op[g];
        scalar_t* G = gs + g * GSTRIDE;
        G[GX] = mx;
        G[GY] = my;
        G[GA] = a;
        G[GB] = b;
        G[GC] = c;
        G[GO] = o;
        G[GSMAX] = 0;
        G[GPAD] = 0;
        const bool finite = std::isfinite(mx) && std::isfinite(my) && std::isfinite(a) &&
                            std::isfinite(b) && std::isfinite(c) && std::isfinite(o) &&
                            std::isfinite(dep[g]);
        if (radii[2 * g] > 0 && radii[2 * g + 1] > 0 && finite && o >= amin) {
            // semantic tile range (gsplat: per-axis radii), in scalar_t arithmetic like the reference
            const scalar_t rx = (scalar_t)radii[2 * g], ry = (scalar_t)radii[2 * g + 1];
            const scalar_t ts = (scalar_t)TILE;
            auto clampf = [](scalar_t v, scalar_t hi) {
                return v < (scalar_t)0 ? (scalar_t)0 : (v > hi ? hi : v);
            };
            const int tx0 = (int)clampf(std::floor((mx - rx) / ts), (scalar_t)tw);
            const int tx1 = (int)clampf(std::ceil((mx + rx) / ts), (scalar_t)tw);
            const int ty0 = (int)clampf(std::floor((my - ry) / ts), (scalar_t)th);
            const int ty1 = (int)clampf(std::ceil((my + ry) / ts), (scalar_t)th);
            int px0 = tx0 * TILE, px1 = std::min(tx1 * TILE, W);
            int py0 = ty0 * TILE, py1 = std::min(ty1 * TILE, H);
            // alpha support: o exp(-sigma) >= 1/255 <=> sigma <= s = log(255 o) <=> d^T Q d <= 2 s,
            // whose bounding box is |dx| <= sqrt(2 s Sxx), |dy| <= sqrt(2 s Syy) (Sigma2D = Q^-1)
            const double s = std::log((double)o / ALPHA_MIN);
            const double sb = s * (1.0 + SIGMA_REL_MARGIN) + SIGMA_ABS_MARGIN;
            const double det = (double)a * (double)c - (double)b * (double)b;
            if (det > 0 && a > 0 && c > 0) {
                G[GSMAX] = (scalar_t)sb;
                const double ex = std::sqrt(2.0 * sb * (double)c / det);
                const double ey = std::sqrt(2.0 * sb * (double)a / det);
                const double fx0 = std::ceil((double)mx - ex - 0.5);
                const double fx1 = std::floor((double)mx + ex - 0.5) + 1.0;
                const double fy0 = std::ceil((double)my - ey - 0.5);
                const double fy1 = std::floor((double)my + ey - 0.5) + 1.0;
                px0 = (int)std::max((double)px0, fx0);
                px1 = (int)std::min((double)px1, fx1);
                py0 = (int)std::max((double)py0, fy0);
                py1 = (int)std::min((double)py1, fy1);
            } else {
                G[GSMAX] = std::numeric_limits<scalar_t>::infinity();
            }
            if (px0 < px1 && py0 < py1) bx = {px0, px1, py0, py1};
        }
        boxes[g] = bx;
        ntiles[g] = bx.x0 < bx.x1 ? ((bx.x1 - 1) / TILE - bx.x0 / TILE + 1) *
                                         ((bx.y1 - 1) / TILE - bx.y0 / TILE + 1)
                                   : 0;
    }

    // intersection budget, checked before the big allocations (ids here, the backward's slots)
    if (max_isects >= 0) {
        int64_t n_isects = 0;
        for (int64_t g = 0; g < N; ++g) n_isects += ntiles[g];
        // Reported as a result, not thrown: an expected outcome (the caller raises ConfigError),
        // and a C++ exception crossing into Python crashed one toolchain (g++ 13.3, torch 2.11).
        if (n_isects > max_isects) {
            out.over_budget = n_isects;
            return out;
        }
    }

    std::vector<int32_t> order;
    order.reserve(N);
    for (int64_t g = 0; g < N; ++g)
        if (ntiles[g] > 0) order.push_back((int32_t)g);
    depth_sort<scalar_t>(order, dep);
    const size_t M = order.size();

    // tile rectangles in depth order (one random gather), then per-chunk tile histograms: chunk c
    // of the depth order writes its Gaussians after those of chunks < c in every tile, so each
    // tile's list stays depth sorted while chunks fill in parallel
    struct TileRect {
        int32_t tx0, tx1, ty0, ty1;
    };
    std::vector<TileRect> rects(M);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < (int64_t)M; ++j) {
        const Box& bx = boxes[order[j]];
        rects[j] = {bx.x0 / TILE, (bx.x1 - 1) / TILE + 1, bx.y0 / TILE, (bx.y1 - 1) / TILE + 1};
    }
    const int nc = num_chunks(M);
    const size_t L = (M + nc - 1) / nc;
    std::vector<int64_t> cur((size_t)nc * n_tiles, 0);
#pragma omp parallel for num_threads(nc) schedule(static, 1)
    for (int c = 0; c < nc; ++c) {
        int64_t* h = cur.data() + (size_t)c * n_tiles;
        const size_t e = std::min(M, (c + 1) * L);
        for (size_t j = c * L; j < e; ++j) {
            const TileRect& r = rects[j];
            for (int ty = r.ty0; ty < r.ty1; ++ty)
                for (int tx = r.tx0; tx < r.tx1; ++tx) h[ty * tw + tx]++;
        }
    }
    out.offsets = torch::empty({n_tiles + 1}, torch::kInt32);
    int32_t* off = out.offsets.data_ptr<int32_t>();
    int64_t total = 0;
    for (int t = 0; t < n_tiles; ++t) {
        TORCH_CHECK(total < (int64_t)std::numeric_limits<int32_t>::max(),
                    "too many tile intersections");
        off[t] = (int32_t)total;
        for (int c = 0; c < nc; ++c) {
            const int64_t v = cur[(size_t)c * n_tiles + t];
            cur[(size_t)c * n_tiles + t] = total;
            total += v;
        }
    }
    TORCH_CHECK(total < (int64_t)std::numeric_limits<int32_t>::max(),
                "too many tile intersections: ", total);
    off[n_tiles] = (int32_t)total;
    out.ids = torch::empty({total}, torch::kInt32);
    int32_t* ids = out.ids.data_ptr<int32_t>();
#pragma omp parallel for num_threads(nc) schedule(static, 1)
    for (int c = 0; c < nc; ++c) {
        int64_t* h = cur.data() + (size_t)c * n_tiles;
        const size_t e = std::min(M, (c + 1) * L);
        for (size_t j = c * L; j < e; ++j) {
            const TileRect& r = rects[j];
            const int32_t g = order[j];
            for (int ty = r.ty0; ty < r.ty1; ++ty)
                for (int tx = r.tx0; tx < r.tx1; ++tx) ids[h[ty * tw + tx]++] = g;
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------

template <typename scalar_t, int CD>
static void forward_tiles(const Binned& B, const scalar_t* colors, int Cdyn, int W, int H,
                          scalar_t* out, scalar_t* tfinal, int32_t* last, int32_t* median) {
    const int C = CD > 0 ? CD : Cdyn;
    const int tw = (W + TILE - 1) / TILE, th = (H + TILE - 1) / TILE;
    const int n_tiles = tw * th;
    const int32_t* off = B.offsets.data_ptr<int32_t>();
    const int32_t* ids = B.ids.data_ptr<int32_t>();
    const Box* boxes = reinterpret_cast<const Box*>(B.boxes.data_ptr<int32_t>());
    const scalar_t* gs = B.gauss.template data_ptr<scalar_t>();
    const scalar_t amin = (scalar_t)ALPHA_MIN, amax = (scalar_t)ALPHA_MAX, tmin = (scalar_t)T_MIN;
    const scalar_t half = (scalar_t)0.5, one = (scalar_t)1, zero = (scalar_t)0;

#pragma omp parallel
    {
        std::vector<scalar_t> acc((size_t)TILE_PIX * C);  // [C][TILE_PIX]
        alignas(64) scalar_t Tp[TILE_PIX];
        alignas(64) int32_t lastp[TILE_PIX], medp[TILE_PIX], alive[TILE_PIX];
        alignas(64) scalar_t wbuf[TILE];
        int row_alive[TILE];  // pixels of each tile row still compositing

#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n_tiles; ++t) {
            const int x0 = (t % tw) * TILE, y0 = (t / tw) * TILE;
            const int x1 = std::min(x0 + TILE, W), y1 = std::min(y0 + TILE, H);
            const int npix = (x1 - x0) * (y1 - y0);
            std::fill(acc.begin(), acc.end(), zero);
            for (int p = 0; p < TILE_PIX; ++p) {
                Tp[p] = one;
                lastp[p] = 0;
                medp[p] = -1;
                alive[p] = 1;
            }
            for (int r = 0; r < TILE; ++r) row_alive[r] = (y0 + r < y1) ? x1 - x0 : 0;
            int ndone = 0;
            const int start = off[t], end = off[t + 1];
            for (int k = start; k < end && ndone < npix; ++k) {
                const int32_t g = ids[k];
                const int32_t kk1 = k - start + 1;
                const Box& bx = boxes[g];
                const int bx0 = std::max(bx.x0, x0), bx1 = std::min(bx.x1, x1);
                const int by0 = std::max(bx.y0, y0), by1 = std::min(bx.y1, y1);
                const int i0 = bx0 - x0, i1 = bx1 - x0;  // box columns within the tile row
                const scalar_t* G = gs + (int64_t)g * GSTRIDE;
                const scalar_t mx = G[GX], my = G[GY], a = G[GA], b = G[GB], c = G[GC], o = G[GO],
                               smax = G[GSMAX];
                const scalar_t* col = colors + (int64_t)g * C;
                const scalar_t fx0 = mx - ((scalar_t)x0 + half);
                for (int y = by0; y < by1; ++y) {
                    if (row_alive[y - y0] == 0) continue;
                    const scalar_t dy = my - ((scalar_t)y + half);
                    const scalar_t cdy = half * c * dy * dy, bdy = b * dy;
                    const int p0 = (y - y0) * TILE;
                    int nstop = 0;
                    // a whole tile row at a time (fixed trip count: fully vectorised), masked to the box
#pragma omp simd reduction(+ : nstop)
                    for (int i = 0; i < TILE; ++i) {
                        const int p = p0 + i;
                        const scalar_t dx = fx0 - (scalar_t)i;
                        const scalar_t sigma = half * a * dx * dx + cdy + bdy * dx;
                        const scalar_t raw = o * exp_simd(-sigma);
                        const scalar_t alpha = raw > amax ? amax : raw;
                        const bool ok = (i >= i0) & (i < i1) & (alive[p] != 0) & (sigma >= zero) &
                                        (sigma <= smax) & (alpha >= amin);
                        const scalar_t T = Tp[p];
                        const scalar_t nT = T * (one - alpha);
                        const bool stop = ok & (nT <= tmin);
                        const bool con = ok & !stop;
                        wbuf[i] = con ? alpha * T : zero;
                        medp[p] = (con & (T > half) & (nT <= half)) ? g : medp[p];
                        lastp[p] = con ? kk1 : lastp[p];
                        Tp[p] = con ? nT : T;
                        alive[p] = stop ? 0 : alive[p];
                        nstop += stop ? 1 : 0;
                    }
                    ndone += nstop;
                    row_alive[y - y0] -= nstop;
                    for (int ch = 0; ch < C; ++ch) {
                        const scalar_t cc = col[ch];
                        scalar_t* ac = acc.data() + (size_t)ch * TILE_PIX + p0;
#pragma omp simd
                        for (int i = 0; i < TILE; ++i) ac[i] += cc * wbuf[i];
                    }
                }
            }
            for (int y = y0; y < y1; ++y)
                for (int x = x0; x < x1; ++x) {
                    const int p = (y - y0) * TILE + (x - x0);
                    const int64_t q = (int64_t)y * W + x;
                    tfinal[q] = Tp[p];
                    last[q] = lastp[p];
                    median[q] = medp[p];
                    for (int ch = 0; ch < C; ++ch) out[q * C + ch] = acc[(size_t)ch * TILE_PIX + p];
                }
        }
    }
}

template <typename F>
static void dispatch_channels(int64_t C, F&& run) {
    switch (C) {
        case 1: run(std::integral_constant<int, 1>()); break;
        case 3: run(std::integral_constant<int, 3>()); break;
        case 4: run(std::integral_constant<int, 4>()); break;
        case 5: run(std::integral_constant<int, 5>()); break;
        default: run(std::integral_constant<int, 0>()); break;
    }
}

std::vector<torch::Tensor> rasterize_forward(torch::Tensor means2d, torch::Tensor conics,
                                             torch::Tensor colors, torch::Tensor opacities,
                                             torch::Tensor depths, torch::Tensor radii, int64_t width,
                                             int64_t height, int64_t max_isects) {
    TORCH_CHECK(means2d.device().is_cpu(), "rasterize_cpu: tensors must be on the CPU");
    const int64_t N = means2d.size(0);
    TORCH_CHECK(means2d.dim() == 2 && means2d.size(1) == 2, "means2d must be (N, 2)");
    TORCH_CHECK(conics.dim() == 2 && conics.size(0) == N && conics.size(1) == 3, "conics must be (N, 3)");
    TORCH_CHECK(colors.dim() == 2 && colors.size(0) == N, "colors must be (N, C)");
    TORCH_CHECK(opacities.numel() == N && depths.numel() == N, "opacities and depths must have N entries");
    TORCH_CHECK(radii.dim() == 2 && radii.size(0) == N && radii.size(1) == 2,
                "radii must be (N, 2) (radius_x, radius_y)");
    TORCH_CHECK(radii.scalar_type() == torch::kInt32, "radii must be int32");
    TORCH_CHECK(width > 0 && height > 0, "image size must be positive");
    const int64_t C = colors.size(1);
    const auto st = means2d.scalar_type();
    TORCH_CHECK(conics.scalar_type() == st && colors.scalar_type() == st &&
                    opacities.scalar_type() == st && depths.scalar_type() == st,
                "all float inputs must share one dtype");
    means2d = means2d.contiguous();
    conics = conics.contiguous();
    colors = colors.contiguous();
    opacities = opacities.contiguous();
    depths = depths.contiguous();
    radii = radii.contiguous();
    const int W = (int)width, H = (int)height;
    const auto fopt = means2d.options();
    const auto iopt = fopt.dtype(torch::kInt32);
    torch::Tensor out = torch::empty({H, W, C}, fopt);
    torch::Tensor tfinal = torch::empty({H, W}, fopt);
    torch::Tensor last = torch::empty({H, W}, iopt);
    torch::Tensor median = torch::empty({H, W}, iopt);
    Binned B;

    AT_DISPATCH_FLOATING_TYPES(st, "rasterize_forward", [&] {
        B = bin_gaussians<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                    opacities.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(),
                                    radii.data_ptr<int32_t>(), N, W, H, fopt, max_isects);
        if (B.over_budget >= 0) return;
        dispatch_channels(C, [&](auto cd) {
            constexpr int CD = decltype(cd)::value;
            forward_tiles<scalar_t, CD>(B, colors.data_ptr<scalar_t>(), (int)C, W, H,
                                        out.data_ptr<scalar_t>(), tfinal.data_ptr<scalar_t>(),
                                        last.data_ptr<int32_t>(), median.data_ptr<int32_t>());
        });
    });
    if (B.over_budget >= 0) return {torch::full({1}, B.over_budget, torch::kInt64)};
    return {out, tfinal, last, median, B.gauss, B.boxes, B.offsets, B.ids};
}

// ---------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------

template <typename scalar_t, int CD>
static void backward_tiles(const scalar_t* gs, const scalar_t* colors, int Cdyn, int W, int H,
                           const int32_t* off, const int32_t* ids, const Box* boxes,
                           const scalar_t* tfinal, const int32_t* last, const scalar_t* gout,
                           const scalar_t* galpha, scalar_t* slots /* n_isects x (6 + C) */) {
    const int C = CD > 0 ? CD : Cdyn;
    const int S_ = 6 + C;
    const int tw = (W + TILE - 1) / TILE, th = (H + TILE - 1) / TILE;
    const int n_tiles = tw * th;
    const scalar_t amin = (scalar_t)ALPHA_MIN, amax = (scalar_t)ALPHA_MAX;
    const scalar_t half = (scalar_t)0.5, one = (scalar_t)1, zero = (scalar_t)0;

#pragma omp parallel
    {
        std::vector<scalar_t> Sb((size_t)TILE_PIX * C), gC((size_t)TILE_PIX * C);  // [C][TILE_PIX]
        alignas(64) scalar_t Tp[TILE_PIX], gAT[TILE_PIX];
        alignas(64) int32_t lastp[TILE_PIX];
        int row_last[TILE];  // per tile row, the largest list count of its pixels
        alignas(64) scalar_t wb[TILE], Tib[TILE], rab[TILE], dLda[TILE], rawb[TILE], visb[TILE];
        std::vector<scalar_t> gcolv(C);

#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n_tiles; ++t) {
            const int x0 = (t % tw) * TILE, y0 = (t / tw) * TILE;
            const int x1 = std::min(x0 + TILE, W), y1 = std::min(y0 + TILE, H);
            const int start = off[t], end = off[t + 1];
            int maxlast = 0;
            for (int p = 0; p < TILE_PIX; ++p) {
                lastp[p] = 0;
                Tp[p] = one;
                gAT[p] = zero;
            }
            std::fill(Sb.begin(), Sb.end(), zero);
            std::fill(gC.begin(), gC.end(), zero);
            for (int r = 0; r < TILE; ++r) row_last[r] = 0;
            for (int y = y0; y < y1; ++y)
                for (int x = x0; x < x1; ++x) {
                    const int p = (y - y0) * TILE + (x - x0);
                    const int64_t q = (int64_t)y * W + x;
                    lastp[p] = last[q];
                    maxlast = std::max(maxlast, (int)last[q]);
                    row_last[y - y0] = std::max(row_last[y - y0], (int)last[q]);
                    Tp[p] = tfinal[q];
                    gAT[p] = galpha[q] * tfinal[q];  // d alpha_out / d alpha_i = T_final / (1 - alpha_i)
                    for (int ch = 0; ch < C; ++ch) gC[(size_t)ch * TILE_PIX + p] = gout[q * C + ch];
                }
            // slots behind every pixel's last contributor get no gradient
            if (start + maxlast < end)
                std::fill(slots + (int64_t)(start + maxlast) * S_, slots + (int64_t)end * S_, zero);
            for (int k = start + maxlast - 1; k >= start; --k) {
                const int32_t g = ids[k];
                const int32_t kk = k - start;
                const Box& bx = boxes[g];
                const int bx0 = std::max(bx.x0, x0), bx1 = std::min(bx.x1, x1);
                const int by0 = std::max(bx.y0, y0), by1 = std::min(bx.y1, y1);
                const int i0 = bx0 - x0, i1 = bx1 - x0;
                const scalar_t* G = gs + (int64_t)g * GSTRIDE;
                const scalar_t mx = G[GX], my = G[GY], a = G[GA], b = G[GB], c = G[GC], o = G[GO],
                               smax = G[GSMAX];
                const scalar_t* col = colors + (int64_t)g * C;
                const scalar_t fx0 = mx - ((scalar_t)x0 + half);
                scalar_t gmx = 0, gmy = 0, ga = 0, gb = 0, gc = 0, go = 0;
                scalar_t* gcolp = gcolv.data();
                for (int ch = 0; ch < C; ++ch) gcolp[ch] = 0;
                for (int y = by0; y < by1; ++y) {
                    if (kk >= row_last[y - y0]) continue;  // no pixel of this row reaches k
                    const scalar_t dy = my - ((scalar_t)y + half);
                    const scalar_t cdy = half * c * dy * dy, bdy = b * dy;
                    const int p0 = (y - y0) * TILE;
                    // 1) which pixels take this Gaussian, its alpha and T_i there
#pragma omp simd
                    for (int i = 0; i < TILE; ++i) {
                        const int p = p0 + i;
                        const scalar_t dx = fx0 - (scalar_t)i;
                        const scalar_t sigma = half * a * dx * dx + cdy + bdy * dx;
                        const scalar_t vis = exp_simd(-sigma);
                        const scalar_t raw = o * vis;
                        const scalar_t alpha = raw > amax ? amax : raw;
                        const bool act = (i >= i0) & (i < i1) & (kk < lastp[p]) & (sigma >= zero) &
                                         (sigma <= smax) & (alpha >= amin);
                        const scalar_t ra = act ? one / (one - alpha) : zero;
                        const scalar_t Ti = Tp[p] * ra;
                        Tp[p] = act ? Ti : Tp[p];
                        Tib[i] = Ti;
                        rab[i] = ra;
                        wb[i] = alpha * Ti;
                        dLda[i] = gAT[p] * ra;
                        rawb[i] = (act & (raw <= amax)) ? raw : zero;  // alpha clamped: no grad
                        visb[i] = vis;
                    }
                    // 2) colour channels: dL/dc, dL/dalpha, and the colour behind (S)
                    for (int ch = 0; ch < C; ++ch) {
                        const scalar_t cc = col[ch];
                        const scalar_t* gcp = gC.data() + (size_t)ch * TILE_PIX + p0;
                        scalar_t* sp = Sb.data() + (size_t)ch * TILE_PIX + p0;
                        scalar_t acc = 0;
#pragma omp simd reduction(+ : acc)
                        for (int i = 0; i < TILE; ++i) {
                            acc += wb[i] * gcp[i];
                            dLda[i] += gcp[i] * (cc * Tib[i] - sp[i] * rab[i]);
                            sp[i] += cc * wb[i];
                        }
                        gcolp[ch] += acc;
                    }
                    // 3) through alpha = o exp(-sigma) to opacity, conic and mean
#pragma omp simd reduction(+ : gmx, gmy, ga, gb, gc, go)
                    for (int i = 0; i < TILE; ++i) {
                        const scalar_t dx = fx0 - (scalar_t)i;
                        const scalar_t ds = -rawb[i] * dLda[i];
                        go += rawb[i] > zero ? visb[i] * dLda[i] : zero;
                        ga += half * dx * dx * ds;
                        gb += dx * dy * ds;
                        gc += half * dy * dy * ds;
                        gmx += ds * (a * dx + b * dy);
                        gmy += ds * (b * dx + c * dy);
                    }
                }
                scalar_t* sl = slots + (int64_t)k * S_;
                sl[0] = gmx;
                sl[1] = gmy;
                sl[2] = ga;
                sl[3] = gb;
                sl[4] = gc;
                sl[5] = go;
                for (int ch = 0; ch < C; ++ch) sl[6 + ch] = gcolp[ch];
            }
        }
    }
}

std::vector<torch::Tensor> rasterize_backward(torch::Tensor gauss, torch::Tensor colors,
                                              torch::Tensor boxes, torch::Tensor offsets,
                                              torch::Tensor ids, torch::Tensor tfinal,
                                              torch::Tensor last, torch::Tensor grad_out,
                                              torch::Tensor grad_alpha, int64_t width,
                                              int64_t height) {
    const int64_t N = gauss.size(0);
    const int64_t C = colors.size(1);
    const int64_t n_isects = ids.numel();
    const int W = (int)width, H = (int)height;
    colors = colors.contiguous();
    grad_out = grad_out.contiguous();
    grad_alpha = grad_alpha.contiguous();
    const auto fopt = gauss.options();
    torch::Tensor g_m2 = torch::zeros({N, 2}, fopt);
    torch::Tensor g_cn = torch::zeros({N, 3}, fopt);
    torch::Tensor g_col = torch::zeros({N, C}, fopt);
    torch::Tensor g_op = torch::zeros({N}, fopt);
    torch::Tensor slots = torch::empty({n_isects, 6 + C}, fopt);

    AT_DISPATCH_FLOATING_TYPES(gauss.scalar_type(), "rasterize_backward", [&] {
        dispatch_channels(C, [&](auto cd) {
            constexpr int CD = decltype(cd)::value;
            backward_tiles<scalar_t, CD>(
                gauss.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(), (int)C, W, H,
                offsets.data_ptr<int32_t>(), ids.data_ptr<int32_t>(),
                reinterpret_cast<const Box*>(boxes.data_ptr<int32_t>()), tfinal.data_ptr<scalar_t>(),
                last.data_ptr<int32_t>(), grad_out.data_ptr<scalar_t>(),
                grad_alpha.data_ptr<scalar_t>(), slots.data_ptr<scalar_t>());
        });
        // deterministic reduction of the per-(tile, Gaussian) slots
        const scalar_t* sl = slots.data_ptr<scalar_t>();
        const int32_t* id = ids.data_ptr<int32_t>();
        scalar_t* pm = g_m2.data_ptr<scalar_t>();
        scalar_t* pc = g_cn.data_ptr<scalar_t>();
        scalar_t* pcol = g_col.data_ptr<scalar_t>();
        scalar_t* po = g_op.data_ptr<scalar_t>();
        const int64_t S_ = 6 + C;
        for (int64_t k = 0; k < n_isects; ++k) {
            const int64_t g = id[k];
            const scalar_t* s = sl + k * S_;
            pm[2 * g] += s[0];
            pm[2 * g + 1] += s[1];
            pc[3 * g] += s[2];
            pc[3 * g + 1] += s[3];
            pc[3 * g + 2] += s[4];
            po[g] += s[5];
            for (int64_t ch = 0; ch < C; ++ch) pcol[g * C + ch] += s[6 + ch];
        }
    });
    return {g_m2, g_cn, g_col, g_op};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("forward", &rasterize_forward, "tile rasteriser forward (CPU)");
    m.def("backward", &rasterize_backward, "tile rasteriser backward (CPU)");
}
