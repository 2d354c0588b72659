/* grad_conv.c — gradient builders of convolution and pooling. Each gradient
 * op carries its forward op's attributes (same schema, same slots) and takes
 * the forward input for its shape; both conv2d gradients are always built and
 * dce removes the one nobody needs (the input gradient of a first layer). */
#include "../ir/ir.h"

void grad_conv2d(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	mlc_node *x = n->src[0], *w = n->src[1];
	dx[0] = mlc_build(g, OP_CONV2D_GRAD_INPUT, n, &n->attr, x, w, dy);
	dx[1] = mlc_build(g, OP_CONV2D_GRAD_WEIGHT, n, &n->attr, x, w, dy);
}

void grad_maxpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	dx[0] = mlc_build(g, OP_MAXPOOL_GRAD, n, &n->attr, n->src[0], dy, NULL);
}

void grad_avgpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	dx[0] = mlc_build(g, OP_AVGPOOL_GRAD, n, &n->attr, n->src[0], dy, NULL);
}

void grad_global_avgpool(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx)
{
	dx[0] = mlc_build(g, OP_GLOBAL_AVGPOOL_GRAD, n, NULL, n->src[0], dy, NULL);
}
