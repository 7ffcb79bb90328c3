/* Run-time instruction-set choice: AVX2+FMA microkernels where the CPU has
 * them, the portable C ones elsewhere. FASTCONV_ISA=portable forces the
 * portable path (tests cover both on one machine). */
#include <stdlib.h>
#include <string.h>

#include "fastconv.h"

static int isa = -1; /* -1: not chosen yet */

int fc_isa_supported(fc_isa which) {
    if (which == FC_ISA_PORTABLE) return 1;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (which == FC_ISA_AVX2) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
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
        int forced_portable = env != NULL && strcmp(env, "portable") == 0;
        isa = (!forced_portable && fc_isa_supported(FC_ISA_AVX2)) ? FC_ISA_AVX2
                                                                   : FC_ISA_PORTABLE;
    }
    return (fc_isa)isa;
}
