/* shape_conv.c — shape rules of the convolution and pooling ops (placeholder). */
#include "ir.h"

bool shape_conv2d(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_conv2d_grad_input(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_conv2d_grad_weight(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_pool(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_pool_grad(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_global_pool(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_global_pool_grad(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

