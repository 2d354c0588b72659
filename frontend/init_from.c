/* init_from.c — the `init_from:` key: another model's weights file whose
 * tensors initialize the parameters of the same name, optionally only those
 * of the layers listed. The file itself is read by the runtime
 * (runtime/init_from.c); here the path is resolved and the layer names are
 * checked against the model's parameters. */
#include "fe.h"

#include <string.h>

typedef struct {
	mlc_init_cfg *c;
	bool has_path;
} init_ctx;

static void read_path(fe *f, void *ctx, const yt_node *v)
{
	init_ctx *x = ctx;
	x->has_path = true;
	fe_read_path(f, v, "path", &x->c->file); /* relative to the spec's folder, as the data paths are */
}

/* Does layer `name` own parameter p: p's own layer, or a block instance around it? */
static bool owns(const char *name, const mlc_node *p)
{
	size_t n = strlen(name);
	return p->layer && strncmp(p->layer, name, n) == 0 && (p->layer[n] == '\0' || p->layer[n] == '.');
}

/* The names of the layers that have parameters, for did-you-mean. */
static const char *const *param_layers(fe *f)
{
	const mlc_graph *g = f->g;
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(g->nnode + 1));
	int n = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *p = g->node[i];
		if (p->op == OP_PARAM && p->layer && (n == 0 || strcmp(v[n - 1], p->layer) != 0))
			v[n++] = p->layer;
	}
	return v;
}

static void read_layers(fe *f, void *ctx, const yt_node *v)
{
	mlc_init_cfg *c = ((init_ctx *)ctx)->c;
	if (v->kind != YT_SEQ || v->n == 0) {
		mlc_error_at(f->d, v->loc, "expected a list of layer names for 'layers', got %s",
			     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
		return;
	}
	c->layers = mlc_arena_alloc(f->m->arena, sizeof *c->layers * (size_t)v->n);
	c->layer_loc = mlc_arena_alloc(f->m->arena, sizeof *c->layer_loc * (size_t)v->n);
	for (int i = 0; i < v->n; i++) {
		const char *s = fe_str(f, v->val[i], "layers");
		if (!s || !f->output) /* the model failed: its layers can't be judged */
			continue;
		bool found = false, layer = false;
		for (int k = 0; k < f->g->nnode && !found; k++) {
			const mlc_node *n = f->g->node[k];
			found = n->op == OP_PARAM && owns(s, n);
			layer |= n->layer && strcmp(n->layer, s) == 0;
		}
		if (!found && layer) {
			mlc_error_at(f->d, v->val[i]->loc, "layer '%s' has no parameters to initialize", s);
			continue;
		}
		if (!found) {
			const char *hint = fe_suggest(f, s, param_layers(f));
			mlc_error_at(f->d, v->val[i]->loc, "init_from: no layer '%s' with parameters in this model%s%s%s",
				     s, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			continue;
		}
		c->layers[c->nlayers] = mlc_arena_strdup(f->m->arena, s);
		c->layer_loc[c->nlayers++] = fe_mloc(f, v->val[i]->loc);
	}
}

/* init_from: PATH, or {path: PATH, layers: [a, b]} */
void fe_init_from(fe *f, const yt_node *v, mlc_loc key)
{
	mlc_init_cfg *c = &f->m->init;
	c->loc = fe_mloc(f, key);
	init_ctx x = {c, false};
	if (v->kind == YT_SCALAR) {
		read_path(f, &x, v);
		return;
	}
	if (!fe_expect_map(f, v, "init_from", "'base.safetensors' or '{path: base.safetensors, layers: [conv1]}'"))
		return;
	static const fe_key keys[] = {{"path", read_path}, {"layers", read_layers}, {NULL, NULL}};
	fe_read_keys(f, v, keys, &x, "in 'init_from'");
	if (!x.has_path && !fe_misspelled(v, "path", (const char *const[]){"path", "layers", NULL}))
		mlc_error_at(f->d, key, "'init_from' needs 'path: <weights.safetensors>'");
}
