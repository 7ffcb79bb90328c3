/* Run-time instruction-set choice: which row of the dispatch table
 * (kernels.h) every kernel runs, the widest the CPU has (AVX-512F, else
 * AVX2+FMA), the portable one elsewhere. Chosen once, at the first call;
 * FASTCONV_ISA=portable|avx2|avx512 caps the choice, and fc_set_isa
 * changes it (tests cover every supported row on one machine). */
#include <stdlib.h>
#include <string.h>

#include "fastconv.h"

static int isa = -1; /* -1: not chosen yet */

int fc_isa_supported(fc_isa which) {
    if (which == FC_ISA_PORTABLE) return 1;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (which == FC_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (which == FC_ISA_AVX512) return __builtin_cpu_supports("avx512f");
#endif
    return 0;
}

int fc_set_isa(fc_isa which) {
    if (!fc_isa_supported(which)) return -1;
    isa = (int)which;
    return 0;
}

fc_isa fc_get_isa(void) {
    if (isa < 0) {
        const char *env = getenv("FASTCONV_ISA");
        int cap = FC_ISA_AVX512;
        if (env && strcmp(env, "portable") == 0) cap = FC_ISA_PORTABLE;
        if (env && strcmp(env, "avx2") == 0) cap = FC_ISA_AVX2;
        isa = FC_ISA_PORTABLE;
        for (int i = cap; i > FC_ISA_PORTABLE; i--)
            if (fc_isa_supported((fc_isa)i)) {
                isa = i;
                break;
            }
    }
    return (fc_isa)isa;
}
