/* conv2d's reference loops, forward and gradients: one output element at a
 * time, accumulated in double, straight from the definition. The C oracle
 * behind algorithm="reference"; the tests' own oracle is tests/reference.py.
 * Family file: instantiated by f32.c and f64.c (see common.h). */
#include "conv2d_internal.h"

static void FC_FN(fc_conv2d_forward_ref)(const fc_conv2d_shape *s, const FC_T *x,
                                         const FC_T *w, const FC_T *b, FC_T *y) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->c_out; co++)
            for (int64_t oh = 0; oh < s->out_h; oh++)
                for (int64_t ow = 0; ow < s->out_w; ow++) {
                    double acc = b ? b[co] : 0;
                    for (int64_t c = 0; c < cin_g; c++)
                        for (int64_t i = 0; i < s->kh; i++)
                            for (int64_t j = 0; j < s->kw; j++) {
                                const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                                const int64_t iw = ow * s->stride_w - s->pad_left + j * s->dil_w;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                                const int64_t ci = co / cout_g * cin_g + c;
                                acc += (double)w[((co * cin_g + c) * s->kh + i) * s->kw + j] *
                                       x[((n * s->c_in + ci) * s->h + ih) * s->w + iw];
                            }
                    y[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow] = (FC_T)acc;
                }
}

static void FC_FN(fc_conv2d_grad_input_ref)(const fc_conv2d_shape *s, const FC_T *gy,
                                            const FC_T *w, FC_T *gx) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t ci = 0; ci < s->c_in; ci++)
            for (int64_t ih = 0; ih < s->h; ih++)
                for (int64_t iw = 0; iw < s->w; iw++) {
                    double acc = 0;
                    for (int64_t co = ci / cin_g * cout_g; co < (ci / cin_g + 1) * cout_g; co++)
                        for (int64_t i = 0; i < s->kh; i++)
                            for (int64_t j = 0; j < s->kw; j++) {
                                const int64_t th = ih + s->pad_top - i * s->dil_h;
                                const int64_t tw = iw + s->pad_left - j * s->dil_w;
                                if (th < 0 || tw < 0 || th % s->stride_h || tw % s->stride_w) continue;
                                const int64_t oh = th / s->stride_h, ow = tw / s->stride_w;
                                if (oh >= s->out_h || ow >= s->out_w) continue;
                                acc += (double)w[((co * cin_g + ci % cin_g) * s->kh + i) * s->kw + j] *
                                       gy[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow];
                            }
                    gx[((n * s->c_in + ci) * s->h + ih) * s->w + iw] = (FC_T)acc;
                }
}

static void FC_FN(fc_conv2d_grad_weight_ref)(const fc_conv2d_shape *s, const FC_T *gy,
                                             const FC_T *x, FC_T *gw) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t co = 0; co < s->c_out; co++)
        for (int64_t c = 0; c < cin_g; c++)
            for (int64_t i = 0; i < s->kh; i++)
                for (int64_t j = 0; j < s->kw; j++) {
                    double acc = 0;
                    const int64_t ci = co / cout_g * cin_g + c;
                    for (int64_t n = 0; n < s->n; n++)
                        for (int64_t oh = 0; oh < s->out_h; oh++)
                            for (int64_t ow = 0; ow < s->out_w; ow++) {
                                const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                                const int64_t iw = ow * s->stride_w - s->pad_left + j * s->dil_w;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                                acc += (double)gy[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow] *
                                       x[((n * s->c_in + ci) * s->h + ih) * s->w + iw];
                            }
                    gw[((co * cin_g + c) * s->kh + i) * s->kw + j] = (FC_T)acc;
                }
}
