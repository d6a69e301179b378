// Lift per-pixel features (labels, embeddings, image errors) onto the Gaussians that
// rendered those pixels: for every Gaussian g,
//     accum[g, :] = sum_p w_gp * feat[p, :],   weight[g] = sum_p w_gp,
// where w_gp = alpha_gp * T_gp is g's compositing weight at pixel p (front-to-back, with
// the same skip / stop rules as the rasteriser: alpha = min(0.999, o * exp(-sigma)),
// alpha < 1/255 skipped, stop before T would fall below 1e-4).
//
// Why our own kernel: gsplat renders features forward, but lifting is the transpose; on the
// CPU we get it as the gradient of sum_p <render(p), feat(p)> (ros_gs/semantics/lifting.py,
// the reference this kernel is tested against on a GPU), which costs a forward plus a full
// backward pass.  This kernel is one fused pass with atomics.
//
// Inputs follow gsplat's tile binning (isect_tiles + isect_offset_encode, one camera):
// tile_offsets[tile] is the start of that tile's depth-sorted run in flatten_ids.
// Plain CUDA with a C launcher so CI compiles it with nvcc alone (no torch headers).

#include <cstdint>
#include <cuda_runtime.h>

namespace {

constexpr float kAlphaMin = 1.0f / 255.0f;
constexpr float kAlphaMax = 0.999f;
constexpr float kTransmittanceMin = 1e-4f;

__global__ void lift_features_kernel(
    const float* __restrict__ means2d,      // [N, 2] pixels
    const float* __restrict__ conics,       // [N, 3] upper triangle of the inverse 2D covariance
    const float* __restrict__ opacities,    // [N]
    const int32_t* __restrict__ tile_offsets,  // [tiles_y * tiles_x]
    const int32_t* __restrict__ flatten_ids,   // [n_isects]
    int32_t n_isects,
    const float* __restrict__ pixel_features,  // [H, W, F]
    int32_t width, int32_t height, int32_t tile_size, int32_t tiles_x, int32_t tiles_y, int32_t F,
    float* __restrict__ accum,   // [N, F], zeroed by the caller
    float* __restrict__ weight)  // [N], zeroed by the caller
{
    const int32_t tile = blockIdx.y * tiles_x + blockIdx.x;
    const int32_t px = blockIdx.x * tile_size + threadIdx.x;
    const int32_t py = blockIdx.y * tile_size + threadIdx.y;
    if (px >= width || py >= height || blockIdx.x >= tiles_x || blockIdx.y >= tiles_y) return;
    const int32_t start = tile_offsets[tile];
    const int32_t end = (tile + 1 < tiles_x * tiles_y) ? tile_offsets[tile + 1] : n_isects;
    const float cx = px + 0.5f, cy = py + 0.5f;  // pixel centre convention
    const float* feat = pixel_features + (static_cast<int64_t>(py) * width + px) * F;
    float T = 1.0f;
    for (int32_t k = start; k < end; ++k) {
        const int32_t g = flatten_ids[k];
        const float dx = cx - means2d[2 * g], dy = cy - means2d[2 * g + 1];
        const float a = conics[3 * g], b = conics[3 * g + 1], c = conics[3 * g + 2];
        const float sigma = 0.5f * (a * dx * dx + c * dy * dy) + b * dx * dy;
        if (sigma < 0.0f) continue;
        const float alpha = fminf(kAlphaMax, opacities[g] * __expf(-sigma));
        if (alpha < kAlphaMin) continue;
        const float next_T = T * (1.0f - alpha);
        if (next_T <= kTransmittanceMin) break;
        const float w = alpha * T;
        atomicAdd(weight + g, w);
        for (int32_t f = 0; f < F; ++f) atomicAdd(accum + static_cast<int64_t>(g) * F + f, w * feat[f]);
        T = next_T;
    }
}

}  // namespace

extern "C" int ros_gs_lift_features_launch(
    const float* means2d, const float* conics, const float* opacities,
    const int32_t* tile_offsets, const int32_t* flatten_ids, int32_t n_isects,
    const float* pixel_features, int32_t width, int32_t height, int32_t tile_size, int32_t F,
    float* accum, float* weight, cudaStream_t stream)
{
    if (tile_size <= 0 || tile_size > 32 || width <= 0 || height <= 0 || F < 0) return 1;
    const int32_t tiles_x = (width + tile_size - 1) / tile_size;
    const int32_t tiles_y = (height + tile_size - 1) / tile_size;
    const dim3 grid(tiles_x, tiles_y);
    const dim3 block(tile_size, tile_size);
    lift_features_kernel<<<grid, block, 0, stream>>>(
        means2d, conics, opacities, tile_offsets, flatten_ids, n_isects, pixel_features,
        width, height, tile_size, tiles_x, tiles_y, F, accum, weight);
    return static_cast<int>(cudaGetLastError());
}
