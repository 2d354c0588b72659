/* shape_util.h — what every shape-rule file shares: the "in layer 'x': "
 * prefix and the FAIL macro that reports at the node and returns false. */
#ifndef MLC_SHAPE_UTIL_H
#define MLC_SHAPE_UTIL_H

#include "ir.h"

#include <stdio.h>

/* "in layer 'conv1': " or "" */
static inline const char *mlc_shape_where(const mlc_node *n, char *buf, size_t len)
{
	if (n->layer)
		snprintf(buf, len, "in layer '%s': ", n->layer);
	else
		buf[0] = 0;
	return buf;
}

/* In a shape rule `bool f(mlc_node *n, mlc_diag *d)`: report and fail. */
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		char w_[96];                                                                       \
		(void)w_;                                                                          \
		mlc_error_at(d, n->loc, __VA_ARGS__);                                              \
		return false;                                                                      \
	} while (0)
#define WHERE mlc_shape_where(n, w_, sizeof w_)
#define OPNAME mlc_ops[n->op].name

#endif
