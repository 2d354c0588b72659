/* shape_util.h — what every shape-rule file shares: the "in layer 'x': "
 * prefix and the FAIL macro that reports at the node and returns false. */
#ifndef MLC_SHAPE_UTIL_H
#define MLC_SHAPE_UTIL_H

#include "ir.h"

#include <stdio.h>
#include <string.h>

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

/* n takes from's dtype and shape */
static inline void copy_shape(mlc_node *n, const mlc_node *from)
{
	n->dtype = from->dtype;
	n->rank = from->rank;
	memcpy(n->dim, from->dim, sizeof n->dim);
}

/* source i must be f32 */
static inline bool need_f32(mlc_node *n, int i, mlc_diag *d)
{
	char t[96];
	if (n->src[i]->dtype != DT_F32)
		FAIL("%s%s expects f32 operands, got %s", WHERE, OPNAME, mlc_type_str(n->src[i], t, sizeof t));
	return true;
}

#endif
