/* grad_conv.c — gradient builders of convolution and pooling (placeholder). */
#include "../ir/ir.h"

void grad_conv2d(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_maxpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_avgpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

void grad_global_avgpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

