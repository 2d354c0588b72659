/* grad_struct.c — gradient builders of layout, batchnorm and dropout (placeholder). */
#include "../ir/ir.h"

void grad_flatten(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_concat(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_batchnorm(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_dropout(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

