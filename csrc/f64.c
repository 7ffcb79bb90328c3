/* The float64 instantiation of every operator family (see common.h). */
#define FC_T double
#define FC_SUFFIX _f64
#define FC_NR FC_NR_F64
#define FC_UKERNEL_PORTABLE fc_gemm_f64_6x8_portable
#define FC_IUKERNEL_PORTABLE fc_igemm_f64_6x8_portable
#define FC_UKERNEL_AVX512 fc_gemm_f64_6x16_avx512
#define FC_UKERNEL_AVX512_NARROW fc_gemm_f64_6x8_avx512
#define FC_UKERNEL_AVX2 fc_gemm_f64_6x8_avx2
#define FC_IUKERNEL_AVX512 fc_igemm_f64_6x16_avx512
#define FC_IUKERNEL_AVX512_NARROW fc_igemm_f64_6x8_avx512
#define FC_IUKERNEL_AVX2 fc_igemm_f64_6x8_avx2

#define FC_SQRT sqrt

#include "gemm.c"
#include "elementwise.c"
#include "im2col.c"
#include "conv2d_ref.c"
#include "conv2d_direct.c"
#include "conv2d_forward.c"
#include "conv2d_grad_input.c"
#include "conv2d_grad_weight.c"
#include "conv2d_winograd.c"
#include "conv2d_polyphase.c"
#include "conv2d.c"
#include "pool.c"
#include "optim.c"
#include "kernels.c"
