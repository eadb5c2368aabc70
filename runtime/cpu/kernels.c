/* The type-independent part of the CPU kernels: validation of convolution and pooling shapes.
 * Once cpu_conv_setup or cpu_pool_setup has accepted a shape, every index the kernels compute
 * fits: plane offsets and GEMM dimensions in int, tensor offsets in size_t. */
#include "runtime/cpu/kernels.h"
#include "core/geometry.h"

#include <limits.h>

static const double MAX_ELEMS = 1099511627776.0; /* 2^40 */

static bool
positive(int v)
{
	return v >= 1 && v <= INT_MAX / 4;
}

static int
out_size(int in, int k, int stride, int pad)
{
	return (int)nnc_window_out(in, k, stride, pad);
}

int
cpu_conv_setup(CpuConv *cv)
{
	if (!positive(cv->n) || !positive(cv->c) || !positive(cv->h) || !positive(cv->w) ||
		!positive(cv->k) || !positive(cv->kh) || !positive(cv->kw) || !positive(cv->sh) ||
		!positive(cv->sw) || cv->ph < 0 || cv->pw < 0 || cv->ph > INT_MAX / 4 ||
		cv->pw > INT_MAX / 4 || !positive(cv->groups) || cv->c % cv->groups != 0 ||
		cv->k % cv->groups != 0)
		return -1;
	int oh = out_size(cv->h, cv->kh, cv->sh, cv->ph), ow = out_size(cv->w, cv->kw, cv->sw, cv->pw);
	if (oh < 1 || ow < 1)
		return -1;
	double plane_in = (double)cv->h * cv->w, plane_out = (double)oh * ow;
	double taps = (double)cv->kh * cv->kw, kcol = (double)(cv->c / cv->groups) * taps;
	if (plane_in >= INT_MAX || plane_out >= INT_MAX || kcol >= INT_MAX ||
		(double)cv->n * cv->c * plane_in >= MAX_ELEMS ||
		(double)cv->n * cv->k * plane_out >= MAX_ELEMS ||
		(double)cv->k * kcol >= MAX_ELEMS || (double)cv->c * taps * plane_out >= MAX_ELEMS)
		return -1;
	cv->oh = oh;
	cv->ow = ow;
	return 0;
}

int
cpu_pool_setup(CpuPool *p)
{
	if (!positive(p->n) || !positive(p->c) || !positive(p->h) || !positive(p->w) ||
		!positive(p->kh) || !positive(p->kw) || !positive(p->sh) || !positive(p->sw) ||
		p->ph < 0 || p->pw < 0 || p->ph > p->kh / 2 || p->pw > p->kw / 2)
		return -1;
	int oh = out_size(p->h, p->kh, p->sh, p->ph), ow = out_size(p->w, p->kw, p->sw, p->pw);
	if (oh < 1 || ow < 1)
		return -1;
	double planes = (double)p->n * p->c;
	if ((double)p->h * p->w >= INT_MAX || (double)oh * ow >= INT_MAX ||
		planes * p->h * p->w >= MAX_ELEMS || planes * oh * ow >= MAX_ELEMS)
		return -1;
	p->oh = oh;
	p->ow = ow;
	return 0;
}
