/* summary.c — the Keras-style table of `mlc check`: one row per spec layer of
 * the forward graph (what "loss" and "pred" need), its ops, output shape and
 * parameter count, in columns as wide as their widest cell; then totals and
 * the planned peak memory. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *layer;
	char ops[256];
	const mlc_node *out;
	int64_t params, trainable;
} row;

/* "1,234,567" */
static const char *commas(int64_t v, char *buf)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v), k = 0;
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0 && tmp[i - 1] != '-')
			buf[k++] = ',';
		buf[k++] = tmp[i];
	}
	buf[k] = 0;
	return buf;
}

/* Output shape without the batch dimension: "30x30x32", "10", "scalar" (f32[]),
 * "1 per sample" (f32[N]). */
static const char *shape_str(const mlc_node *n, char *buf, size_t len)
{
	size_t k = 0;
	buf[0] = 0;
	for (int i = 0; i < n->rank && k < len; i++) {
		if (n->dim[i] == MLC_BATCH)
			continue;
		k += (size_t)snprintf(buf + k, len - k, "%s%lld", k ? "x" : "", (long long)n->dim[i]);
	}
	if (!k) /* f32[N] (a per-sample sum) is not the scalar f32[] */
		snprintf(buf, len, n->rank ? "1 per sample" : "scalar");
	return buf;
}

/* Adds op to the row's list once (a whole name: "add" is not "bias_add"). */
static void append_op(row *r, const char *op)
{
	size_t n = strlen(op);
	for (const char *p = r->ops; (p = strstr(p, op)); p += n)
		if ((p == r->ops || p[-1] == ' ') && (p[n] == ',' || !p[n]))
			return;
	size_t k = strlen(r->ops);
	snprintf(r->ops + k, sizeof r->ops - k, "%s%s", k ? ", " : "", op);
}

void mlc_session_summary(const mlc_session *s, FILE *out)
{
	const mlc_graph *g = s->graph;
	bool *fwd = mlc_xmalloc(sizeof(bool) * (size_t)g->next_id);
	for (int i = 0; i < g->nret; i++)
		if (!strcmp(g->ret[i].key, "loss") || !strcmp(g->ret[i].key, "pred"))
			fwd[g->ret[i].val->id] = true;
	for (int i = g->nnode - 1; i >= 0; i--)
		if (fwd[g->node[i]->id])
			for (int k = 0; k < g->node[i]->nsrc; k++)
				fwd[g->node[i]->src[k]->id] = true;

	row *rows = mlc_xmalloc(sizeof(row) * (size_t)(g->nnode + 1));
	int nrows = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n->dead || !fwd[n->id])
			continue;
		/* Labels belong to the loss, not to a layer of the model. */
		if (n->op == OP_INPUT && n->layer && strcmp(n->layer, n->name) != 0)
			continue;
		const char *layer = n->layer ? n->layer : n->name ? n->name : "?";
		row *r = NULL;
		for (int k = 0; k < nrows && !r; k++)
			if (!strcmp(rows[k].layer, layer))
				r = &rows[k];
		if (!r) {
			r = &rows[nrows++];
			r->layer = layer;
		}
		if (n->op == OP_PARAM) {
			r->params += mlc_numel(n, 1);
			r->trainable += n->attr.i[2] ? mlc_numel(n, 1) : 0;
			continue;
		}
		append_op(r, mlc_ops[n->op].name);
		/* a layer's l1:/l2: penalty, and its sum into the loss, are scalars
		 * after the layer's output: their ops are listed, the shape is not */
		if (!r->out || n->rank > 0 || r->out->rank == 0)
			r->out = n;
	}
	int64_t total = 0, trainable = 0;
	char sh[64], num[32];
	/* each column as wide as its widest cell (block instances make long
	 * layer names, "stage2.1.conv_a"; a layer may have many ops) */
	int w[4] = {(int)strlen("Layer"), (int)strlen("Ops"), (int)strlen("Output shape"), (int)strlen("Params")};
	for (int k = 0; k < nrows; k++) {
		const row *r = &rows[k];
		int c[4] = {(int)strlen(r->layer), (int)strlen(r->ops),
			    (int)strlen(r->out ? shape_str(r->out, sh, sizeof sh) : "-"), (int)strlen(commas(r->params, num))};
		for (int j = 0; j < 4; j++)
			w[j] = c[j] > w[j] ? c[j] : w[j];
	}
	int width = w[0] + w[1] + w[2] + w[3] + 6;
	fprintf(out, "Model: %s\n", g->name);
	fprintf(out, "%-*s  %-*s  %-*s  %*s\n", w[0], "Layer", w[1], "Ops", w[2], "Output shape", w[3], "Params");
	for (int i = 0; i < width; i++)
		fputc('-', out);
	fputc('\n', out);
	for (int k = 0; k < nrows; k++) {
		row *r = &rows[k];
		fprintf(out, "%-*s  %-*s  %-*s  %*s\n", w[0], r->layer, w[1], r->ops, w[2],
			r->out ? shape_str(r->out, sh, sizeof sh) : "-", w[3], commas(r->params, num));
		total += r->params;
		trainable += r->trainable;
	}
	for (int i = 0; i < width; i++)
		fputc('=', out);
	fputc('\n', out);
	fprintf(out, "Total params: %s\n", commas(total, num));
	fprintf(out, "Trainable params: %s\n", commas(trainable, num));
	fprintf(out, "Non-trainable params: %s\n", commas(total - trainable, num));
	if (s->planned) /* the two arenas (docs/design.md "Memory planning"); MB = 10^6 bytes */
		fprintf(out, "Planned memory (batch %lld): activations %.1f MB, parameters %.1f MB, total %.1f MB\n",
			(long long)g->max_batch, (double)g->act_size * 4e-6, (double)g->param_size * 4e-6,
			(double)(g->act_size + g->param_size) * 4e-6);
	free(rows);
	free(fwd);
}
