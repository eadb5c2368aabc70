/* Declarations of the CPU kernels for one element type: kernels.h includes this file twice,
 * with NNC_REAL float and NNC_FN(name) name##_f32, then double and _f64. There is no include
 * guard on purpose; include kernels.h, never this file. The conventions (layouts, overwriting,
 * aliasing, workspaces, determinism, status returns) are in kernels.h.
 *
 * Shape arguments: n batch, c channels, hw = h * w (1 for [n, c] tensors), f features,
 * u units, k classes; count is a flat element count. */
#ifndef NNC_REAL
#error "include runtime/cpu/kernels.h instead"
#endif

/* ---- conv2d ------------------------------------------------------------------------------ */

/* Exact workspace bytes the given pass needs to use `threads` pool threads (threads <= 0: the
 * current pool size): one slot per thread (capped by the work available), a slot being one
 * image's im2col matrix for forward and backward-data and a block of 8 or 32 of its rows for
 * backward-filter. Zero for depthwise convolutions (groups == c, direct loops) and for 1x1
 * stride-1 unpadded ones (the input is its own im2col matrix). Given less, a kernel uses
 * fewer threads, with identical results; with less than one slot it returns -1. */
size_t NNC_FN(cpu_conv2d_workspace)(const CpuConv *cv, CpuConvPass pass, int threads);

/* y = conv(x, w) + b: x [n, c, h, w], w [k, c / groups, kh, kw], b [k] or NULL,
 * y [n, k, oh, ow]. */
int NNC_FN(cpu_conv2d_forward)(const CpuConv *cv, const NNC_REAL *x, const NNC_REAL *w,
	const NNC_REAL *b, NNC_REAL *y, void *ws, size_t ws_bytes);
/* y = act(conv(x, w) + b): the same with an epilogue, applied to each image's output right
 * after its GEMM and bias while it is in cache (conv2d+relu in dumps). */
int NNC_FN(cpu_conv2d_forward_act)(const CpuConv *cv, const NNC_REAL *x, const NNC_REAL *w,
	const NNC_REAL *b, NNC_REAL *y, void *ws, size_t ws_bytes, Epilogue act);

/* dx = gradient of the loss with respect to x, given dy [n, k, oh, ow] and w. */
int NNC_FN(cpu_conv2d_backward_data)(const CpuConv *cv, const NNC_REAL *dy, const NNC_REAL *w,
	NNC_REAL *dx, void *ws, size_t ws_bytes);

/* dw [k, c / groups, kh, kw] = gradient with respect to the weight, given x and dy. The sum
 * over the batch runs in image order. The bias gradient is cpu_bias_backward(dy, n, k, oh*ow). */
int NNC_FN(cpu_conv2d_backward_filter)(const CpuConv *cv, const NNC_REAL *x, const NNC_REAL *dy,
	NNC_REAL *dw, void *ws, size_t ws_bytes);

/* db[j] = sum over n and hw of dy[n, j, hw]: the bias gradient of conv2d (hw = oh * ow) and of
 * dense (dy [n, u], c = u, hw = 1), and batch norm's shift gradient. */
void NNC_FN(cpu_bias_backward)(const NNC_REAL *dy, int n, int c, int hw, NNC_REAL *db);
/* The _pro variants here and below take, instead of dy, the gradient dz of an activation's
 * output act_y (dy = dz where relu's act_y > 0, or relu6's 0 < act_y < 6, else 0), masked as
 * it is read: relu_bwd fused in (bit-identical to running cpu_relu_backward first). */
void NNC_FN(cpu_bias_backward_pro)(const NNC_REAL *dz, const NNC_REAL *act_y, Epilogue pro, int n, int c,
	int hw, NNC_REAL *db);

/* ---- batch norm (training mode unless stated), over [n, c, hw] --------------------------- */

/* Per-channel mean and biased variance over n and hw; writes mean[c] and
 * invstd[c] = 1 / sqrt(var + eps), and, when var_unbiased is not NULL, the unbiased variance
 * (sum of squares / (n*hw - 1)) for cpu_batchnorm_update_running. Returns -1 when n * hw < 2
 * and var_unbiased is wanted (PyTorch refuses to train batch norm on one value per channel). */
int NNC_FN(cpu_batchnorm_stats)(const NNC_REAL *x, int n, int c, int hw, double eps,
	NNC_REAL *mean, NNC_REAL *invstd, NNC_REAL *var_unbiased);

/* y = act((x - mean) * invstd * w + b) per channel; w and b may be NULL (no affine: 1 and 0). */
void NNC_FN(cpu_batchnorm_apply)(const NNC_REAL *x, int n, int c, int hw, const NNC_REAL *mean,
	const NNC_REAL *invstd, const NNC_REAL *w, const NNC_REAL *b, NNC_REAL *y, Epilogue act);

/* Training-mode input gradient, with the batch statistics depending on x:
 *   dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  xhat = (x - mean) * invstd,
 * means over n and hw of each channel. w may be NULL (1). dw and db may be NULL; when given
 * they receive sum(dy * xhat) and sum(dy), which this kernel computes on the way and which
 * are exactly what cpu_batchnorm_backward_params returns. */
void NNC_FN(cpu_batchnorm_backward_data)(const NNC_REAL *dy, const NNC_REAL *x, int n, int c,
	int hw, const NNC_REAL *mean, const NNC_REAL *invstd, const NNC_REAL *w, NNC_REAL *dx,
	NNC_REAL *dw, NNC_REAL *db);
void NNC_FN(cpu_batchnorm_backward_data_pro)(const NNC_REAL *dz, const NNC_REAL *act_y, Epilogue pro,
	const NNC_REAL *x, int n, int c, int hw, const NNC_REAL *mean, const NNC_REAL *invstd,
	const NNC_REAL *w, NNC_REAL *dx, NNC_REAL *dw, NNC_REAL *db);

/* dw[c] = sum(dy * xhat), db[c] = sum(dy): the scale and shift gradients. */
void NNC_FN(cpu_batchnorm_backward_params)(const NNC_REAL *dy, const NNC_REAL *x, int n, int c,
	int hw, const NNC_REAL *mean, const NNC_REAL *invstd, NNC_REAL *dw, NNC_REAL *db);
void NNC_FN(cpu_batchnorm_backward_params_pro)(const NNC_REAL *dz, const NNC_REAL *act_y, Epilogue pro,
	const NNC_REAL *x, int n, int c, int hw, const NNC_REAL *mean, const NNC_REAL *invstd, NNC_REAL *dw,
	NNC_REAL *db);

/* running = momentum * batch + (1 - momentum) * running, for the mean and (with the unbiased
 * batch variance) the variance, in PyTorch's order of operations. */
void NNC_FN(cpu_batchnorm_update_running)(int c, double momentum, const NNC_REAL *mean,
	const NNC_REAL *var_unbiased, NNC_REAL *running_mean, NNC_REAL *running_var);

/* Inference: y = act((x - running_mean) / sqrt(running_var + eps) * w + b); w, b may be NULL. */
void NNC_FN(cpu_batchnorm_inference)(const NNC_REAL *x, int n, int c, int hw,
	const NNC_REAL *running_mean, const NNC_REAL *running_var, double eps, const NNC_REAL *w,
	const NNC_REAL *b, NNC_REAL *y, Epilogue act);

/* Batch norm folded into the op before it, per output channel o with a = scale[o] /
 * sqrt(var[o] + eps) computed as cpu_batchnorm_inference does (scale NULL: 1): wf[o, :] =
 * a * w[o, :] over per_out weights per channel, and bf[o] = (bias[o] - mean[o]) * a + shift[o]
 * (bias, shift NULL: 0). */
void NNC_FN(cpu_batchnorm_fold_weight)(const NNC_REAL *w, int out, size_t per_out,
	const NNC_REAL *var, double eps, const NNC_REAL *scale, NNC_REAL *wf);
void NNC_FN(cpu_batchnorm_fold_bias)(int out, const NNC_REAL *mean, const NNC_REAL *var, double eps,
	const NNC_REAL *scale, const NNC_REAL *shift, const NNC_REAL *bias, NNC_REAL *bf);

/* ---- channels-last (NHWC) per-channel kernels: [rows, c], rows = n*h*w ----------------- */

/* As cpu_batchnorm_stats, _apply, _inference, _backward_data_pro (dx NULL: only dw and db,
 * the _params kernel) and cpu_bias_backward_pro, over an NHWC tensor. The reductions sum
 * fixed blocks of rows into PART, cpu_cl_partials(rows, c) doubles of workspace, and add the
 * blocks in order: results independent of the threads, equal to the NCHW kernels' within
 * rounding (another order). The large operands may be stored in fp16 (CpuIn, CpuOut). */
size_t NNC_FN(cpu_cl_partials)(int rows, int c);
int NNC_FN(cpu_batchnorm_stats_cl)(CpuIn x, int rows, int c, double eps, NNC_REAL *mean, NNC_REAL *invstd,
	NNC_REAL *var_unbiased, double *part);
void NNC_FN(cpu_batchnorm_apply_cl)(CpuIn x, int rows, int c, const NNC_REAL *mean, const NNC_REAL *invstd,
	const NNC_REAL *w, const NNC_REAL *b, CpuOut y, Epilogue act);
void NNC_FN(cpu_batchnorm_inference_cl)(CpuIn x, int rows, int c, const NNC_REAL *running_mean,
	const NNC_REAL *running_var, double eps, const NNC_REAL *w, const NNC_REAL *b, CpuOut y, Epilogue act);
void NNC_FN(cpu_batchnorm_backward_cl)(CpuIn dz, CpuIn act_y, Epilogue pro, CpuIn x, int rows, int c,
	const NNC_REAL *mean, const NNC_REAL *invstd, const NNC_REAL *w, CpuOut dx, NNC_REAL *dw, NNC_REAL *db,
	double *part);
void NNC_FN(cpu_bias_backward_cl)(CpuIn dz, CpuIn act_y, Epilogue pro, int rows, int c, NNC_REAL *db, double *part);
/* [n, h*w, c] -> [n, c]: the mean over h*w; backward spreads dy / hw over the image. */
void NNC_FN(cpu_global_avgpool_forward_cl)(const NNC_REAL *x, int n, int c, int hw, NNC_REAL *y);
void NNC_FN(cpu_global_avgpool_backward_cl)(const NNC_REAL *dy, int n, int c, int hw, NNC_REAL *dx);

/* ---- activations, elementwise over count elements ---------------------------------------- */

/* relu: y = max(x, 0); backward given x: dx = dy where x > 0, else 0. */
void NNC_FN(cpu_relu_forward)(const NNC_REAL *x, NNC_REAL *y, size_t count);
void NNC_FN(cpu_relu_backward)(const NNC_REAL *x, const NNC_REAL *dy, NNC_REAL *dx, size_t count);

/* relu6: y = min(max(x, 0), 6); backward given x: dx = dy where 0 < x < 6, else 0. */
void NNC_FN(cpu_relu6_forward)(const NNC_REAL *x, NNC_REAL *y, size_t count);
void NNC_FN(cpu_relu6_backward)(const NNC_REAL *x, const NNC_REAL *dy, NNC_REAL *dx, size_t count);

/* Exact GELU (nn.GELU(), approximate='none'): y = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2));
 * backward given x: dx = dy * (Phi(x) + x * phi(x)), phi the standard normal density. */
void NNC_FN(cpu_gelu_forward)(const NNC_REAL *x, NNC_REAL *y, size_t count);
void NNC_FN(cpu_gelu_backward)(const NNC_REAL *x, const NNC_REAL *dy, NNC_REAL *dx, size_t count);

/* tanh; backward given the OUTPUT y: dx = dy * (1 - y^2). */
void NNC_FN(cpu_tanh_forward)(const NNC_REAL *x, NNC_REAL *y, size_t count);
void NNC_FN(cpu_tanh_backward)(const NNC_REAL *y, const NNC_REAL *dy, NNC_REAL *dx, size_t count);

/* ---- pooling ----------------------------------------------------------------------------- */

/* Max pooling; padding counts as -inf. A NaN in a window wins, as in PyTorch. */
void NNC_FN(cpu_maxpool2d_forward)(const CpuPool *p, const NNC_REAL *x, NNC_REAL *y);

/* Each dy goes to the window's maximum in x, recomputed from x; among equal maxima the first
 * in row-major scan order gets it (PyTorch's choice). Overlapping windows add up. */
void NNC_FN(cpu_maxpool2d_backward)(const CpuPool *p, const NNC_REAL *x, const NNC_REAL *dy,
	NNC_REAL *dx);

/* Average pooling with count_include_pad=True (PyTorch's default): every window divides by
 * kh * kw, padding included. */
void NNC_FN(cpu_avgpool2d_forward)(const CpuPool *p, const NNC_REAL *x, NNC_REAL *y);
void NNC_FN(cpu_avgpool2d_backward)(const CpuPool *p, const NNC_REAL *dy, NNC_REAL *dx);

/* [n, c, hw] -> [n, c]: the mean over hw; backward spreads dy / hw over the plane. */
void NNC_FN(cpu_global_avgpool_forward)(const NNC_REAL *x, int n, int c, int hw, NNC_REAL *y);
void NNC_FN(cpu_global_avgpool_backward)(const NNC_REAL *dy, int n, int c, int hw, NNC_REAL *dx);

/* ---- dense: y [n, u] = x [n, f] . w^T + b, w [u, f], b [u] or NULL ----------------------- */

void NNC_FN(cpu_dense_forward)(const NNC_REAL *x, const NNC_REAL *w, const NNC_REAL *b, int n,
	int f, int u, NNC_REAL *y);
/* y = act(x . w^T + b), the epilogue applied to each block of rows after its bias. */
void NNC_FN(cpu_dense_forward_act)(const NNC_REAL *x, const NNC_REAL *w, const NNC_REAL *b, int n,
	int f, int u, NNC_REAL *y, Epilogue act);
/* dx [n, f] = dy . w */
void NNC_FN(cpu_dense_backward_data)(const NNC_REAL *dy, const NNC_REAL *w, int n, int f, int u,
	NNC_REAL *dx);
/* dw [u, f] = dy^T . x, summed over the batch in order. Bias: cpu_bias_backward(dy, n, u, 1). */
void NNC_FN(cpu_dense_backward_weight)(const NNC_REAL *dy, const NNC_REAL *x, int n, int f,
	int u, NNC_REAL *dw);

/* ---- dropout ----------------------------------------------------------------------------- */

/* Fills mask with 0 (probability p) or 1 / (1 - p), element i from output i of rng (so the mask
 * does not depend on the thread count), and advances rng by count outputs. p >= 1 gives all
 * zeros, p <= 0 all ones. */
void NNC_FN(cpu_dropout_mask)(CpuRng *rng, double p, NNC_REAL *mask, size_t count);

/* y = x * mask; the backward pass is the same call on dy. */
void NNC_FN(cpu_dropout_apply)(const NNC_REAL *x, const NNC_REAL *mask, NNC_REAL *y, size_t count);

/* ---- elementwise arithmetic and concatenation -------------------------------------------- */

/* y = a + b. Its backward is the identity for both operands. */
void NNC_FN(cpu_add)(const NNC_REAL *a, const NNC_REAL *b, NNC_REAL *y, size_t count);
/* y = act(a + b): add with an epilogue (a residual join followed by its activation). */
void NNC_FN(cpu_add_act)(const NNC_REAL *a, const NNC_REAL *b, NNC_REAL *y, size_t count, Epilogue act);
/* Elements [i0, i1) of the elementwise kernel OP (b unused by one-operand ones), on the
 * calling thread, with the same expression as the whole-tensor kernel: a building block for
 * running a chain of elementwise ops block by block while each block is in cache. */
/* y = the NNC_EW formula OP (runtime/ew.h) of a (and b; NULL for a unary formula), element by
 * element, over COUNT elements, in parallel. */
void NNC_FN(cpu_ew)(Elementwise op, const NNC_REAL *a, const NNC_REAL *b, NNC_REAL *y, size_t count);
void NNC_FN(cpu_ew_range)(Elementwise op, const NNC_REAL *a, const NNC_REAL *b, NNC_REAL *y, size_t i0,
	size_t i1);
/* y = act(y) in place: the epilogue alone, for kernels that cannot apply it in their own pass
 * (the fp16-accumulating reference kernels of acc16.h). */
void NNC_FN(cpu_act)(NNC_REAL *y, size_t count, Epilogue act);

/* y = s * x: the mul op, and its backward (dx = s * dy). */
void NNC_FN(cpu_scale)(const NNC_REAL *x, double s, NNC_REAL *y, size_t count);

/* Concatenation along axis 1 of k tensors xs[i] [n, cs[i], hw] into y [n, sum cs, hw]
 * ([n, c] tensors: hw = 1); the backward splits dy into dxs[i] [n, cs[i], hw]. */
void NNC_FN(cpu_concat_forward)(int k, const NNC_REAL *const *xs, const int *cs, int n, int hw,
	NNC_REAL *y);
void NNC_FN(cpu_concat_backward)(int k, const NNC_REAL *dy, const int *cs, int n, int hw,
	NNC_REAL *const *dxs);

/* ---- softmax and the loss, over rows of [n, k] ------------------------------------------- */

void NNC_FN(cpu_softmax_forward)(const NNC_REAL *x, int n, int k, NNC_REAL *y);
/* Given the output y: dx = y * (dy - sum_j dy_j y_j) per row. */
void NNC_FN(cpu_softmax_backward)(const NNC_REAL *y, const NNC_REAL *dy, int n, int k,
	NNC_REAL *dx);

/* PyTorch's CrossEntropyLoss(label_smoothing=eps), mean over the batch:
 *   loss = mean_i [ (1 - eps) * -log p_i,label_i + eps * mean_j -log p_ij ],  p = softmax(logits).
 * Rows are summed in order on the calling thread. Returns -1 if a label is outside [0, k). */
int NNC_FN(cpu_softmax_xent_forward)(const NNC_REAL *logits, const int32_t *labels, int n, int k,
	double eps, NNC_REAL *loss);

/* dlogits = dloss / n * (p - (1 - eps) * onehot(label) - eps / k), recomputing p from logits;
 * dloss is the upstream gradient of the scalar loss (1 for the loss itself). */
int NNC_FN(cpu_softmax_xent_backward)(const NNC_REAL *logits, const int32_t *labels, int n, int k,
	double eps, double dloss, NNC_REAL *dlogits);

/* The number of rows whose first largest logit is at the label; -1 if a label is out of range. */
long NNC_FN(cpu_count_correct)(const NNC_REAL *logits, const int32_t *labels, int n, int k);

/* ---- optimizers, in place over flat arrays of count elements ----------------------------- */

/* One torch.optim.SGD step; step counts from 1 (the first step initializes the momentum buffer
 * to the gradient, as PyTorch does). buf may be NULL when momentum is 0. g is not modified. */
void NNC_FN(cpu_sgd_step)(const CpuSgd *o, long step, NNC_REAL *p, const NNC_REAL *g,
	NNC_REAL *buf, size_t count);

/* One torch.optim.Adam / AdamW step (o->decoupled); step counts from 1 and drives the bias
 * corrections; m and v (exp_avg, exp_avg_sq) start at zero. */
void NNC_FN(cpu_adam_step)(const CpuAdam *o, long step, NNC_REAL *p, const NNC_REAL *g,
	NNC_REAL *m, NNC_REAL *v, size_t count);
