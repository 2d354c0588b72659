/* refeval_struct.c — reference layout, batchnorm and dropout (placeholder). */
#include "refeval.h"

void ref_eval_struct(const mlc_node *v, int64_t n, double **s, double *out)
{
	(void)v, (void)n, (void)s, (void)out;
	MLC_UNREACHABLE();
}
