/* distill.c — `loss: {type: distillation, teacher: {spec, weights},
 * temperature, alpha}`: the teacher's spec is loaded and its forward graph up
 * to its logits is copied into this model's graph, reading the same inputs,
 * under the layer prefix "teacher." with every parameter frozen (its weights
 * are loaded by the runtime); the loss is built from existing ops, so
 * autodiff differentiates it like any other and nothing flows into the teacher
 * (its batchnorms run in inference mode, its dropouts are left out):
 *   L = (1 − α)·CE(labels, zs) + α·T²·KL(softmax(zt/T) ‖ softmax(zs/T)). */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

const char *const fe_distill_keys[] = {"teacher", "temperature", "alpha", NULL};

mlc_node *fe_scaled(mlc_graph *g, const mlc_node *from, mlc_node *x, double factor)
{
	mlc_attrs a;
	mlc_attrs_default(OP_SCALE, &a, g->arena);
	a.f[0] = factor;
	return mlc_build(g, OP_SCALE, from, &a, x, NULL, NULL);
}

mlc_node *mlc_distill_loss(mlc_graph *g, const mlc_node *from, mlc_node *zs, mlc_node *zt, mlc_node *labels,
			   double temperature, double alpha)
{
	mlc_node *ce = mlc_build(g, OP_SOFTMAX_XENT, from, NULL, zs, labels, NULL);
	mlc_node *soft = mlc_build(g, OP_SOFTMAX, from, NULL, fe_scaled(g, from, zt, 1 / temperature), NULL, NULL);
	mlc_node *kl = mlc_build(g, OP_KL_DIV, from, NULL, fe_scaled(g, from, zs, 1 / temperature), soft, NULL);
	return mlc_build(g, OP_ADD, from, NULL, fe_scaled(g, from, ce, 1 - alpha),
			 fe_scaled(g, from, kl, alpha * temperature * temperature), NULL);
}

typedef struct {
	const yt_node *spec;
	mlc_path spec_path, weights; /* relative to the student's spec folder */
	double temperature, alpha;
	bool ok;
} distill_ctx;

static void read_spec(fe *f, void *ctx, const yt_node *v)
{
	distill_ctx *c = ctx;
	c->spec = v;
	c->ok &= fe_read_path(f, v, "spec", &c->spec_path);
}

static void read_weights(fe *f, void *ctx, const yt_node *v)
{
	distill_ctx *c = ctx;
	c->ok &= fe_read_path(f, v, "weights", &c->weights);
}

static void read_teacher(fe *f, void *ctx, const yt_node *v)
{
	distill_ctx *c = ctx;
	static const fe_key keys[] = {{"spec", read_spec}, {"weights", read_weights}, {NULL, NULL}};
	if (!fe_expect_map(f, v, "teacher", "'{spec: teacher.yaml, weights: teacher.safetensors}'")) {
		c->ok = false;
		return;
	}
	c->ok &= fe_read_keys(f, v, keys, c, "in 'teacher'");
	static const char *const names[] = {"spec", "weights", NULL};
	for (int i = 0; names[i]; i++)
		if (!yt_get(v, names[i], NULL) && !fe_misspelled(v, names[i], names)) {
			mlc_error_at(f->d, v->loc, "the teacher needs '%s'", names[i]);
			c->ok = false;
		}
}

static void read_temperature(fe *f, void *ctx, const yt_node *v)
{
	distill_ctx *c = ctx;
	c->ok &= fe_num(f, v, "temperature", (fe_range){0, 1e3, true, false}, &c->temperature);
}

static void read_alpha(fe *f, void *ctx, const yt_node *v)
{
	distill_ctx *c = ctx;
	c->ok &= fe_num(f, v, "alpha", (fe_range){0, 1, false, false}, &c->alpha);
}

/* The teacher's node at the student's loc? No: at its own spec's, the file
 * name copied into this graph's arena (the teacher's model is freed). */
static mlc_loc own_loc(fe *f, mlc_loc l)
{
	if (l.file)
		l.file = mlc_arena_strdup(f->g->arena, l.file);
	return l;
}

static const char *prefixed(fe *f, const char *s)
{
	return s ? mlc_arena_printf(f->g->arena, "teacher.%s", s) : NULL;
}

/* The student's input of that name, checked against the teacher's. */
static mlc_node *student_input(fe *f, const mlc_node *t, mlc_loc at)
{
	for (int i = 0; i < f->ninputs; i++) {
		mlc_node *x = f->lay[i].out;
		if (!x || strcmp(x->name, t->name) != 0)
			continue;
		bool same = x->rank == t->rank && x->dtype == t->dtype;
		for (int k = 1; same && k < x->rank; k++)
			same = x->dim[k] == t->dim[k];
		if (same)
			return x;
		char a[96], b[96];
		mlc_error_at(f->d, at, "the teacher's input '%s' is %s, but this model's is %s", t->name,
			     mlc_type_str(t, a, sizeof a), mlc_type_str(x, b, sizeof b));
		return NULL;
	}
	mlc_error_at(f->d, at, "the teacher reads an input '%s', which this model does not have", t->name);
	return NULL;
}

/* Copies the teacher's forward graph up to its logits into this graph;
 * returns the copy of the logits, or NULL after an error. */
static mlc_node *import(fe *f, const mlc_graph *tg, const mlc_node *logits, mlc_loc at)
{
	bool *need = mlc_xmalloc(sizeof(bool) * (size_t)tg->next_id);
	mlc_node **map = mlc_xmalloc(sizeof(mlc_node *) * (size_t)tg->next_id);
	need[logits->id] = true;
	for (int i = tg->nnode - 1; i >= 0; i--)
		if (need[tg->node[i]->id])
			for (int k = 0; k < tg->node[i]->nsrc; k++)
				need[tg->node[i]->src[k]->id] = true;
	bool ok = true;
	for (int i = 0; i < tg->nnode && ok; i++) {
		const mlc_node *t = tg->node[i];
		if (!need[t->id])
			continue;
		mlc_node *n = NULL;
		if (t->op == OP_INPUT) {
			n = student_input(f, t, at);
		} else if (t->op == OP_DROPOUT) {
			n = map[t->src[0]->id]; /* the teacher runs in inference: dropout is the identity */
		} else if (t->op == OP_PARAM) {
			n = mlc_source(f->g, OP_PARAM, prefixed(f, t->name), t->dtype, t->rank, t->dim, own_loc(f, t->loc));
			n->attr = t->attr;
			if (t->attr.s)
				n->attr.s = mlc_arena_strdup(f->g->arena, t->attr.s);
			fe_attr_set(OP_PARAM, &n->attr, "trainable", 0);
		} else {
			mlc_node *src[MLC_MAX_SRC];
			for (int k = 0; k < t->nsrc; k++)
				src[k] = map[t->src[k]->id];
			n = mlc_node_new(f->g, t->op, t->nsrc, src, own_loc(f, t->loc));
			n->attr = t->attr;
			if (t->op == OP_BATCHNORM) /* on its running statistics, frozen */
				fe_attr_set(OP_BATCHNORM, &n->attr, "inference", 1);
			n->name = prefixed(f, t->name);
			if (!mlc_ops[t->op].shape(n, f->d))
				n = NULL;
		}
		if (n && t->op != OP_INPUT && t->op != OP_DROPOUT)
			n->layer = prefixed(f, t->layer);
		map[t->id] = n;
		ok = n != NULL;
	}
	mlc_node *out = ok ? map[logits->id] : NULL;
	free(map);
	free(need);
	return out;
}

mlc_node *fe_loss_distill(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			  mlc_node **pred)
{
	(void)op, (void)a;
	const yt_node *v = f->loss_map;
	if (f->depth > 0) {
		mlc_error_at(f->d, v->loc, "a distillation teacher cannot itself be trained by distillation here; "
			     "give the teacher its own loss, e.g. softmax_cross_entropy");
		return NULL;
	}
	if (v->kind != YT_MAP) {
		mlc_error_at(f->d, v->loc, "distillation needs its teacher: 'loss: {type: distillation, teacher: "
			     "{spec: teacher.yaml, weights: teacher.safetensors}}'");
		return NULL;
	}
	distill_ctx c = {.temperature = 4, .alpha = 0.5, .ok = true};
	/* in file order; unknown keys were reported by fe_loss */
	static const fe_key keys[] = {{"teacher", read_teacher}, {"temperature", read_temperature},
				      {"alpha", read_alpha}, {NULL, NULL}};
	for (int i = 0; i < v->n; i++)
		for (const fe_key *k = keys; k->key; k++)
			if (strcmp(k->key, v->key[i]->str) == 0)
				k->read(f, &c, v->val[i]);
	const yt_node *teacher = yt_get(v, "teacher", NULL);
	if (!teacher && !fe_misspelled(v, "teacher", fe_distill_keys))
		mlc_error_at(f->d, v->loc, "distillation needs 'teacher: {spec: teacher.yaml, weights: "
			     "teacher.safetensors}'");
	if (!teacher || !c.ok)
		return NULL;
	char t[96];
	if (f->output->rank != 2) {
		mlc_error_at(f->d, loc, "%s needs the model output to be class scores f32[N,C], got %s", name,
			     mlc_type_str(f->output, t, sizeof t));
		return NULL;
	}
	/* the student's logits: a softmax at the output is folded, as for softmax_cross_entropy */
	mlc_node *out = f->output, *zs = out;
	*pred = out;
	if (out->op == OP_SOFTMAX)
		zs = out->src[0];
	else if (!(*pred = fe_emit(f, mlc_arena_strdup(f->g->arena, "pred"), loc, OP_SOFTMAX, NULL, 1, &out)))
		return NULL;

	mlc_model *tm;
	if (fe_load_teacher(f, c.spec_path.path, &tm) != MLC_OK) {
		mlc_note_at(f->d, fe_mloc(f, c.spec->loc), "in the teacher model named here");
		return NULL;
	}
	mlc_node *tl = mlc_graph_find_ret(tm->graph, "loss");
	mlc_node *zt = NULL;
	if (tl->op != OP_SOFTMAX_XENT)
		mlc_error_at(f->d, c.spec->loc, "the teacher must be a classifier with loss softmax_cross_entropy "
			     "(its logits are what it teaches), but its loss is %s", mlc_ops[tl->op].name);
	else
		zt = import(f, tm->graph, tl->src[0], c.spec->loc);
	char u[96];
	if (zt && !mlc_same_shape(zt, zs)) {
		mlc_error_at(f->d, c.spec->loc, "the teacher's logits are %s but this model's are %s",
			     mlc_type_str(zt, t, sizeof t), mlc_type_str(zs, u, sizeof u));
		zt = NULL;
	}
	mlc_model_free(tm);
	if (!zt)
		return NULL;
	f->m->teacher.weights = c.weights;
	mlc_node *labels = fe_labels(f, DT_I32, 1, (int64_t[]){MLC_BATCH}, loc);
	if (!labels)
		return NULL;
	return mlc_distill_loss(f->g, labels, zs, zt, labels, c.temperature, c.alpha);
}
