// torch binding of lift_features.cu (built on a GPU machine by ros_gs.semantics.lifting).
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

extern "C" int ros_gs_lift_features_launch(
    const float* means2d, const float* conics, const float* opacities,
    const int32_t* tile_offsets, const int32_t* flatten_ids, int32_t n_isects,
    const float* pixel_features, int32_t width, int32_t height, int32_t tile_size, int32_t F,
    float* accum, float* weight, cudaStream_t stream);

std::vector<torch::Tensor> lift_features(
    torch::Tensor means2d, torch::Tensor conics, torch::Tensor opacities,
    torch::Tensor tile_offsets, torch::Tensor flatten_ids, torch::Tensor pixel_features, int64_t tile_size)
{
    for (const auto& t : {means2d, conics, opacities, pixel_features}) {
        TORCH_CHECK(t.is_cuda() && t.scalar_type() == torch::kFloat32 && t.is_contiguous(),
                    "lift_features: float tensors must be contiguous float32 on CUDA");
    }
    for (const auto& t : {tile_offsets, flatten_ids}) {
        TORCH_CHECK(t.is_cuda() && t.scalar_type() == torch::kInt32 && t.is_contiguous(),
                    "lift_features: tile_offsets / flatten_ids must be contiguous int32 on CUDA");
    }
    TORCH_CHECK(pixel_features.dim() == 3, "pixel_features must be (H, W, F)");
    const int64_t N = means2d.size(0), H = pixel_features.size(0), W = pixel_features.size(1);
    const int64_t F = pixel_features.size(2);
    auto accum = torch::zeros({N, F}, means2d.options());
    auto weight = torch::zeros({N}, means2d.options());
    const int rc = ros_gs_lift_features_launch(
        means2d.data_ptr<float>(), conics.data_ptr<float>(), opacities.data_ptr<float>(),
        tile_offsets.data_ptr<int32_t>(), flatten_ids.data_ptr<int32_t>(),
        static_cast<int32_t>(flatten_ids.numel()), pixel_features.data_ptr<float>(),
        static_cast<int32_t>(W), static_cast<int32_t>(H), static_cast<int32_t>(tile_size),
        static_cast<int32_t>(F), accum.data_ptr<float>(), weight.data_ptr<float>(),
        c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(rc == 0, "lift_features kernel launch failed with CUDA error ", rc);
    return {accum, weight};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("lift_features", &lift_features, "per-Gaussian weighted sums of per-pixel features (CUDA)");
}
