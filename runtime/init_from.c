/* init_from.c — the spec's `init_from:`: parameters taken by name from another
 * model's safetensors file after the initializers ran ("strict: false", as
 * PyTorch's load_state_dict and Keras's load_weights(by_name=True)): a tensor
 * whose name is a parameter of the model (and, with `layers:`, of one of those
 * layers) is loaded and must have its shape; every other tensor is skipped,
 * every other parameter keeps its initializer, and the report says which. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

typedef enum { LOADED, SKIPPED, KEPT } fate;

static bool integer_dtype(const char *dt)
{
	return dt[0] == 'I' || dt[0] == 'U' || strcmp(dt, "BOOL") == 0;
}

/* "f32[10,128]", "i64[]" */
static void tensor_str(const mlc_tensor *t, const char *dtype, char *buf, size_t n)
{
	char lower[8];
	size_t i = 0;
	for (; dtype[i] && i + 1 < sizeof lower; i++)
		lower[i] = (char)(dtype[i] >= 'A' && dtype[i] <= 'Z' ? dtype[i] + ('a' - 'A') : dtype[i]);
	lower[i] = '\0';
	int k = snprintf(buf, n, "%s[", lower);
	for (int j = 0; j < t->rank && k > 0 && (size_t)k < n; j++)
		k += snprintf(buf + k, n - (size_t)k, "%s%lld", j ? "," : "", (long long)t->dim[j]);
	if (k > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, "]");
}

static bool selected(const mlc_init_cfg *c, const mlc_node *p, int *which)
{
	*which = -1;
	if (c->nlayers == 0)
		return true;
	for (int i = 0; i < c->nlayers; i++) {
		size_t n = strlen(c->layers[i]);
		if (p->layer && strncmp(p->layer, c->layers[i], n) == 0 && (p->layer[n] == '\0' || p->layer[n] == '.')) {
			*which = i;
			return true;
		}
	}
	return false;
}

/* "weight" of "fc.weight" in layer "fc" */
static const char *suffix(const mlc_node *p)
{
	size_t n = p->layer ? strlen(p->layer) : 0;
	return n && strncmp(p->name, p->layer, n) == 0 && p->name[n] == '.' ? p->name + n + 1 : p->name;
}

mlc_status mlc_init_from(mlc_session *s, float *params, FILE *report, mlc_diag *d)
{
	if (!s->model || !s->model->init.file.path)
		return MLC_OK;
	const mlc_init_cfg *c = &s->model->init;
	const char *path = c->file.path;
	mlc_tensor *t;
	const char **dt;
	int nt;
	mlc_status st = mlc_safetensors_read_any(path, &t, &dt, &nt, d);
	if (st != MLC_OK) {
		mlc_note_at(d, c->file.loc, "reading the weights named by init_from");
		return st;
	}
	mlc_graph *g = s->graph;
	int *param_of = mlc_xmalloc(sizeof(int) * (size_t)(nt + 1)); /* node index + 1, or 0 */
	const char **why = mlc_xmalloc(sizeof(char *) * (size_t)(nt + 1));
	int nloaded = 0, nskipped = 0, nkept = 0;
	for (int k = 0; k < nt; k++) {
		mlc_node *p = NULL;
		for (int i = 0; i < g->nnode && !p; i++)
			if (!g->node[i]->dead && g->node[i]->op == OP_PARAM && strcmp(g->node[i]->name, t[k].name) == 0)
				p = g->node[i];
		int which;
		if (!p) {
			why[k] = integer_dtype(dt[k]) ? "integer bookkeeping (like PyTorch's num_batches_tracked), "
							     "not a parameter"
							   : "no parameter of this model has this name";
			nskipped++;
			continue;
		}
		if (!selected(c, p, &which)) {
			why[k] = mlc_arena_printf(g->arena, "layer '%s' is not in init_from's layers", p->layer);
			nskipped++;
			continue;
		}
		char here[96], there[96];
		mlc_type_str(p, here, sizeof here);
		tensor_str(&t[k], dt[k], there, sizeof there);
		if (strcmp(dt[k], "F32") != 0 || !mlc_tensor_fits(&t[k], p)) {
			mlc_error_at(d, p->loc, "layer '%s' %s is %s here but %s in %s", p->layer ? p->layer : p->name,
				     suffix(p), here, there, path);
			st = MLC_EUSER;
			continue;
		}
		param_of[k] = p->id + 1;
		if (params)
			memcpy(params + p->offset, t[k].data, (size_t)mlc_numel(p, 1) * 4);
		nloaded++;
	}
	/* which parameters the file covered, by node */
	bool *covered = mlc_xmalloc(sizeof(bool) * (size_t)g->next_id);
	for (int k = 0; k < nt; k++)
		if (param_of[k])
			covered[param_of[k] - 1] = true;
	/* a layer listed in `layers:` must be there in full */
	for (int i = 0; i < g->nnode && st == MLC_OK; i++) {
		mlc_node *p = g->node[i];
		int which;
		if (p->dead || p->op != OP_PARAM || covered[p->id])
			continue;
		if (selected(c, p, &which) && which >= 0) {
			mlc_error_at(d, c->layer_loc[which], "init_from lists layer '%s', but %s has no tensor '%s'",
				     c->layers[which], path, p->name);
			st = MLC_EUSER;
		}
		nkept++;
	}
	if (st == MLC_OK && nloaded == 0) {
		mlc_error_at(d, c->file.loc, "no tensor of %s matches a parameter of the model%s", path,
			     nt ? " (they are named <layer>.weight, <layer>.bias, ...)" : ": the file is empty");
		st = MLC_EUSER;
	}
	if (st == MLC_OK && report) {
		fprintf(report, "init_from %s: %d loaded, %d skipped, %d parameter%s kept %s initializer\n", path,
			nloaded, nskipped, nkept, nkept == 1 ? "" : "s", nkept == 1 ? "its" : "their");
		char ty[96];
		for (int k = 0; k < nt; k++) {
			tensor_str(&t[k], dt[k], ty, sizeof ty);
			if (param_of[k])
				fprintf(report, "  loaded   %s %s\n", t[k].name, ty);
		}
		for (int k = 0; k < nt; k++) {
			tensor_str(&t[k], dt[k], ty, sizeof ty);
			if (!param_of[k])
				fprintf(report, "  skipped  %s %s: %s\n", t[k].name, ty, why[k]);
		}
		for (int i = 0; i < g->nnode; i++) {
			const mlc_node *p = g->node[i];
			if (p->dead || p->op != OP_PARAM || covered[p->id])
				continue;
			fprintf(report, "  kept     %s %s: %s%s\n", p->name, mlc_type_str(p, ty, sizeof ty),
				p->attr.s ? p->attr.s : "glorot_uniform",
				p->attr.i[2] ? "" : " (frozen: it stays at this initializer)");
		}
	}
	free(covered);
	free(why);
	free(param_of);
	free(dt);
	mlc_tensors_free(t, nt);
	return st;
}

/* A distillation teacher's parameters are "teacher.<name>". */
static const char prefix[] = "teacher.";

bool mlc_param_is_teacher(const mlc_session *s, const char *name)
{
	return s->model && s->model->teacher.weights.path && name && strncmp(name, prefix, sizeof prefix - 1) == 0;
}

/* A distillation teacher's parameters, "teacher.<name>", from its own
 * weights file, where they are "<name>": all of them, with their shapes;
 * anything else in the file is not the teacher's business (a PyTorch
 * num_batches_tracked, say) and is left alone. Always from that file, also
 * with --weights (which holds the student's: --save leaves the teacher out). */
mlc_status mlc_teacher_load(mlc_session *s, float *params, mlc_diag *d)
{
	if (!s->model || !s->model->teacher.weights.path)
		return MLC_OK;
	const mlc_path *w = &s->model->teacher.weights;
	mlc_tensor *t;
	const char **dt;
	int nt;
	mlc_status st = mlc_safetensors_read_any(w->path, &t, &dt, &nt, d);
	if (st != MLC_OK) {
		mlc_note_at(d, w->loc, "reading the teacher's weights named here");
		return st;
	}
	mlc_graph *g = s->graph;
	for (int i = 0; i < g->nnode && st == MLC_OK; i++) {
		mlc_node *p = g->node[i];
		if (p->dead || p->op != OP_PARAM || !mlc_param_is_teacher(s, p->name))
			continue;
		const char *name = p->name + sizeof prefix - 1;
		int k = 0;
		while (k < nt && strcmp(t[k].name, name) != 0)
			k++;
		char here[96], there[96];
		if (k == nt) {
			mlc_error_at(d, w->loc, "%s has no tensor '%s' for the teacher's layer '%s'", w->path, name,
				     p->layer + sizeof prefix - 1);
			st = MLC_EUSER;
			break;
		}
		tensor_str(&t[k], dt[k], there, sizeof there);
		if (strcmp(dt[k], "F32") != 0 || !mlc_tensor_fits(&t[k], p)) {
			mlc_error_at(d, p->loc, "the teacher's layer '%s' %s is %s in its spec but %s in %s",
				     p->layer + sizeof prefix - 1, suffix(p), mlc_type_str(p, here, sizeof here), there,
				     w->path);
			st = MLC_EUSER;
			break;
		}
		if (params)
			memcpy(params + p->offset, t[k].data, (size_t)mlc_numel(p, 1) * 4);
	}
	free(dt);
	mlc_tensors_free(t, nt);
	return st;
}

mlc_status mlc_session_init_report(mlc_session *s, FILE *out, mlc_diag *d)
{
	mlc_status st = s->opt.weights ? MLC_OK : mlc_init_from(s, NULL, out, d);
	return st == MLC_OK ? mlc_teacher_load(s, NULL, d) : st;
}
