/* refeval_conv.c — reference convolution and pooling (placeholder). */
#include "refeval.h"

void ref_eval_conv(const mlc_node *v, int64_t n, double **s, double *out)
{
	(void)v, (void)n, (void)s, (void)out;
	MLC_UNREACHABLE();
}
