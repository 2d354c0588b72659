/* checkpoint.c — the spec's `checkpoint:` section: where training saves its
 * whole state (runtime/checkpoint.c) and how often. Configuration only. */
#include "fe.h"

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
	/* relative to the spec's folder, as the data files */
	c->path.path = s[0] == '/' ? mlc_arena_strdup(f->m->arena, s) : mlc_arena_printf(f->m->arena, "%s%s", f->dir, s);
	c->path.loc = fe_mloc(f, v->loc);
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
	{NULL, NULL},
};

/* checkpoint: PATH, or {path: PATH, every_epochs: 1, every_steps: 0} */
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
	static const char *const names[] = {"path", "every_epochs", "every_steps", NULL};
	if (!yt_get(v, "path", NULL) && !fe_misspelled(v, "path", names))
		mlc_error_at(f->d, c->loc, "'checkpoint' is missing 'path'");
}
