/* ops.c — the op table built from ops.def, and attribute-schema access. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

/* Shape rules (ir/shape_rules.c) and gradient builders (passes/grad_rules.c). */
#define OP(id, name, arity, fc, attrs, shape, grad)                                               \
	bool shape(mlc_node *n, mlc_diag *d);                                                      \
	void grad(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx);
#include "ops.def"
#undef OP

const mlc_opinfo mlc_ops[OP_COUNT] = {
#define OP(id, name_, arity_, fc, attrs_, shape_, grad_)                                         \
	[OP_##id] = {.name = name_, .arity = arity_, .fclass = fc, .attrs = attrs_, .shape = shape_, \
		     .grad = grad_},
#include "ops.def"
#undef OP
};

_Static_assert(MLC_COUNTOF(mlc_ops) == OP_COUNT, "op table and opcode enum disagree");

mlc_opcode mlc_op_lookup(const char *name)
{
	for (int i = 0; i < OP_COUNT; i++)
		if (strcmp(mlc_ops[i].name, name) == 0)
			return (mlc_opcode)i;
	return OP_COUNT;
}

const char *mlc_dtype_name(mlc_dtype t)
{
	return t == DT_I32 ? "i32" : "f32";
}

/* Parses the schema "name:slot=default,..." of one op (no caching: it is tiny). */
int mlc_op_attrs(mlc_opcode op, mlc_attrdesc *out, int max)
{
	int k = 0;
	for (const char *p = mlc_ops[op].attrs; *p;) {
		const char *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *eq = memchr(p, '=', (size_t)(end - p));
		MLC_ASSERT(colon && eq && eq > colon + 1);
		if (k < max) {
			mlc_attrdesc *a = &out[k];
			MLC_ASSERT((size_t)(colon - p) < sizeof a->name && (size_t)(end - eq) <= sizeof a->def);
			memset(a, 0, sizeof *a);
			memcpy(a->name, p, (size_t)(colon - p));
			memcpy(a->def, eq + 1, (size_t)(end - eq - 1));
			a->kind = colon[1];
			a->slot = a->kind == 's' ? 0 : colon[2] - '0';
			MLC_ASSERT(a->kind == 's' || ((a->kind == 'f' || a->kind == 'i') && a->slot >= 0 &&
						      a->slot < MLC_MAX_ATTR));
		}
		k++;
		p = *end ? end + 1 : end;
	}
	return k;
}

int mlc_op_attr_slot(mlc_opcode op, const char *name)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int n = mlc_op_attrs(op, desc, (int)MLC_COUNTOF(desc));
	for (int i = 0; i < n && i < (int)MLC_COUNTOF(desc); i++)
		if (strcmp(desc[i].name, name) == 0)
			return desc[i].slot;
	return -1;
}

void mlc_attrs_default(mlc_opcode op, mlc_attrs *a, mlc_arena *arena)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int n = mlc_op_attrs(op, desc, (int)MLC_COUNTOF(desc));
	MLC_ASSERT(n <= (int)MLC_COUNTOF(desc));
	memset(a, 0, sizeof *a);
	for (int i = 0; i < n; i++) {
		switch (desc[i].kind) {
		case 'f': a->f[desc[i].slot] = strtod(desc[i].def, NULL); break;
		case 'i': a->i[desc[i].slot] = strtoll(desc[i].def, NULL, 10); break;
		case 's': a->s = mlc_arena_strdup(arena, desc[i].def); break;
		default: MLC_UNREACHABLE();
		}
	}
}
