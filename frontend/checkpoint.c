/* checkpoint.c — the spec's `checkpoint:` section: where training saves its
 * whole state (runtime/checkpoint.c), how often and how many files it keeps;
 * and the path templates ({epoch}, {step}) that name one file per
 * checkpoint, which --checkpoint shares. Configuration only. */
#include "fe.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const template_fields[] = {"epoch", "step", NULL};
enum { MAX_WIDTH = 20 };

/* One field at t[0] == '{': its index in template_fields and zero-padded
 * width, and its length; -1 after writing why. */
static int parse_field(const char *t, int *field, int *width, char *why, size_t len)
{
	const char *close = strchr(t, '}'), *colon = strchr(t, ':');
	const char *open = strchr(t + 1, '{');
	if (!close || (open && open < close)) {
		snprintf(why, len, "has an unclosed '{' (write '{{' for a brace in the file name)");
		return -1;
	}
	int n = (int)(close - t + 1);
	const char *end = colon && colon < close ? colon : close;
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)(end - t - 1), t + 1);
	*field = -1;
	for (int i = 0; template_fields[i]; i++)
		if (strcmp(name, template_fields[i]) == 0)
			*field = i;
	if (*field < 0) {
		const char *hint = mlc_suggest(name, template_fields);
		snprintf(why, len, "has an unknown field '%.*s'%s%s%s (fields: {epoch}, {step})", n, t,
			 hint ? "; did you mean '{" : "", hint ? hint : "", hint ? "}'?" : "");
		return -1;
	}
	*width = 0;
	if (end == close)
		return n;
	/* {epoch:03}, or Python's {epoch:03d} */
	const char *p = end + 1;
	char *q = NULL;
	long w = p[0] == '0' && p[1] >= '0' && p[1] <= '9' ? strtol(p + 1, &q, 10) : -1;
	if (w >= 0 && *q == 'd')
		q++;
	if (w < 1 || w > MAX_WIDTH || q != close) {
		snprintf(why, len, "has an invalid format '%.*s' (write {%s:03} for a zero-padded width of 3, at most %d)",
			 n, t, template_fields[*field], MAX_WIDTH);
		return -1;
	}
	*width = (int)w;
	return n;
}

bool mlc_ckpt_template_check(const char *t, bool *fields, char *why, size_t len)
{
	*fields = false;
	for (const char *p = t; *p; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			p++;
			continue;
		}
		if (*p == '}') {
			snprintf(why, len, "has a single '}' (write '}}' for a brace in the file name)");
			return false;
		}
		if (*p != '{')
			continue;
		int field, width, n = parse_field(p, &field, &width, why, len);
		if (n < 0)
			return false;
		*fields = true;
		p += n - 1;
	}
	return true;
}

char *mlc_ckpt_template_expand(const char *t, int epoch, uint32_t step)
{
	size_t cap = strlen(t) + 64, at = 0;
	char *out = mlc_xmalloc(cap);
	for (const char *p = t; *p; p++) {
		if (at + 2 * MAX_WIDTH + 2 >= cap) {
			char *o = mlc_xmalloc(cap *= 2);
			memcpy(o, out, at);
			free(out);
			out = o;
		}
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			out[at++] = *p++;
			continue;
		}
		if (*p != '{') {
			out[at++] = *p;
			continue;
		}
		char why[8];
		int field, width, n = parse_field(p, &field, &width, why, sizeof why);
		MLC_ASSERT(n > 0); /* checked */
		uint64_t v = field == 0 ? (uint64_t)(epoch > 0 ? epoch : 0) : step;
		at += (size_t)snprintf(out + at, cap - at, "%0*" PRIu64, width, v);
		p += n - 1;
	}
	out[at] = 0;
	return out;
}

/* A folder's braces doubled, so that they stay literal in a template. */
static const char *escape_braces(mlc_arena *a, const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += 1 + (*p == '{' || *p == '}');
	char *out = mlc_arena_alloc(a, n + 1), *q = out;
	for (const char *p = s; *p; p++) {
		if (*p == '{' || *p == '}')
			*q++ = *p;
		*q++ = *p;
	}
	*q = 0;
	return out;
}

static void ckpt_path(fe *f, void *ctx, const yt_node *v)
{
	mlc_ckpt_cfg *c = ctx;
	const char *s = fe_str(f, v, "path");
	if (!s)
		return;
	if (!*s) {
		mlc_error_at(f->d, v->loc, "'path' must not be empty");
		return;
	}
	char why[256];
	if (!mlc_ckpt_template_check(s, &c->templated, why, sizeof why)) {
		mlc_error_at(f->d, v->loc, "checkpoint path '%s' %s", s, why);
		return;
	}
	/* relative to the spec's folder, as the data files */
	c->path.path = s[0] == '/' ? mlc_arena_strdup(f->m->arena, s)
				   : mlc_arena_printf(f->m->arena, "%s%s", escape_braces(f->m->arena, f->dir), s);
	c->path.loc = fe_mloc(f, v->loc);
}

static void ckpt_keep(fe *f, void *ctx, const yt_node *v)
{
	mlc_ckpt_cfg *c = ctx;
	int64_t k;
	if (fe_int(f, v, "keep", 0, INT32_MAX, &k)) {
		c->keep = (int)k;
		c->keep_loc = fe_mloc(f, v->loc);
	}
}

static void ckpt_every_epochs(fe *f, void *ctx, const yt_node *v)
{
	int64_t k;
	if (fe_int(f, v, "every_epochs", 0, INT32_MAX, &k))
		((mlc_ckpt_cfg *)ctx)->every_epochs = (int)k;
}

static void ckpt_every_steps(fe *f, void *ctx, const yt_node *v)
{
	fe_int(f, v, "every_steps", 0, INT32_MAX, &((mlc_ckpt_cfg *)ctx)->every_steps);
}

static const fe_key ckpt_keys[] = {
	{"path", ckpt_path},
	{"every_epochs", ckpt_every_epochs},
	{"every_steps", ckpt_every_steps},
	{"keep", ckpt_keep},
	{NULL, NULL},
};

/* checkpoint: PATH, or {path: PATH, every_epochs: 1, every_steps: 0, keep: 0} */
void fe_checkpoint(fe *f, const yt_node *v, mlc_loc key)
{
	mlc_ckpt_cfg *c = &f->m->checkpoint;
	c->loc = fe_mloc(f, key);
	if (v->kind == YT_SCALAR) {
		ckpt_path(f, c, v);
		return;
	}
	if (!fe_expect_map(f, v, "checkpoint", "'{path: run.ckpt, every_epochs: 1}'"))
		return;
	fe_read_keys(f, v, ckpt_keys, c, "in 'checkpoint'");
	static const char *const names[] = {"path", "every_epochs", "every_steps", "keep", NULL};
	if (!yt_get(v, "path", NULL) && !fe_misspelled(v, "path", names))
		mlc_error_at(f->d, c->loc, "'checkpoint' is missing 'path'");
	else if (c->keep > 0 && c->path.path && !c->templated)
		mlc_error_at(f->d, c->keep_loc, "'keep' needs a path with {epoch} or {step} (as 'ckpt-{epoch}.safetensors'): "
			     "without one every checkpoint replaces the previous file, so there is only one to keep");
}
