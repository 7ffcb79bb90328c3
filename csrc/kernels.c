/* The dispatch table's rows (see kernels.h), one per fc_isa.
 * Family file: instantiated by f32.c and f64.c (see common.h). */
#include "kernels.h"

#define FC_LOOP_ENTRY_portable(name, params) FC_VARIANT(name, portable),
#define FC_LOOP_ENTRY_avx2(name, params) FC_VARIANT(name, avx2),
#define FC_LOOP_ENTRY_avx512(name, params) FC_VARIANT(name, avx512),

static const FC_FN(fc_kernels) FC_FN(kernel_table)[] = {
    [FC_ISA_PORTABLE] = {{FC_UKERNEL_PORTABLE, FC_NR, NULL}, {FC_IUKERNEL_PORTABLE, FC_NR, NULL},
                         FC_VECTOR_LOOPS(FC_LOOP_ENTRY_portable)},
#ifdef FC_X86_KERNELS
    [FC_ISA_AVX2] = {{FC_UKERNEL_AVX2, FC_NR, NULL}, {FC_IUKERNEL_AVX2, FC_NR, NULL},
                     FC_VECTOR_LOOPS(FC_LOOP_ENTRY_avx2)},
    [FC_ISA_AVX512] = {{FC_UKERNEL_AVX512, 2 * FC_NR, FC_UKERNEL_AVX512_NARROW},
                       {FC_IUKERNEL_AVX512, 2 * FC_NR, FC_IUKERNEL_AVX512_NARROW},
                       FC_VECTOR_LOOPS(FC_LOOP_ENTRY_avx512)},
#endif
};

static const FC_FN(fc_kernels) *FC_FN(kernels)(void) { return &FC_FN(kernel_table)[fc_get_isa()]; }

#undef FC_LOOP_ENTRY_portable
#undef FC_LOOP_ENTRY_avx2
#undef FC_LOOP_ENTRY_avx512
