/* shape_struct.c — shape rules of layout, batchnorm and dropout ops (placeholder). */
#include "ir.h"

bool shape_flatten(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_reshape_like(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_concat(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_slice(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_batchnorm(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_batchnorm_grad(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

bool shape_batchnorm_grad_gamma(mlc_node *n, mlc_diag *d)
{
	mlc_error_at(d, n->loc, "%s is not implemented yet", mlc_ops[n->op].name);
	return false;
}

