/* config.c — the spec's training sections: `loss:` (which adds the label
 * input, the loss node and the "loss"/"pred" results to the graph),
 * `optimizer:` and `data:` (plain configuration, no files are opened). */
#include "fe.h"

#include <math.h>
#include <string.h>

/* ---- loss ---- */

typedef mlc_node *(*loss_fn)(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			     mlc_node **pred);

/* The output must be f32[N,C] for the losses that read classes. */
static bool need_classes(fe *f, const char *name, mlc_loc loc)
{
	char t[96];
	if (f->output->rank == 2)
		return true;
	mlc_error_at(f->d, loc, "%s needs the model output to be class scores f32[N,C], got %s", name,
		     mlc_type_str(f->output, t, sizeof t));
	return false;
}

/* The "labels" input of the loss layer; with a list of losses (loss_sum.c)
 * all read the first one's, which must suit them (NULL after an error). */
mlc_node *fe_labels(fe *f, mlc_dtype t, int rank, const int64_t *dim, mlc_loc loc)
{
	mlc_node *old = mlc_graph_find_value(f->g, "labels");
	if (old) {
		mlc_node want = {.dtype = t, .rank = rank};
		memcpy(want.dim, dim, sizeof *dim * (size_t)rank);
		char a[96], b[96];
		if (old->dtype == t && mlc_same_shape(old, &want))
			return old;
		mlc_error_at(f->d, loc, "every loss of the list reads the same labels: this one needs %s, "
			     "the first one %s", mlc_type_str(&want, a, sizeof a), mlc_type_str(old, b, sizeof b));
		return NULL;
	}
	mlc_node *labels = mlc_source(f->g, OP_INPUT, "labels", t, rank, dim, loc);
	labels->layer = mlc_arena_strdup(f->g->arena, "loss");
	return labels;
}

/* The loss's targets when they have the output's shape: the model input
 * `target:` names (an autoencoder reads its own input: no labels input, no
 * copy of the data), else the labels input; NULL after an error. */
static mlc_node *targets_of(fe *f, mlc_node *out, mlc_loc loc)
{
	mlc_loc at;
	const yt_node *t = f->loss_map && f->loss_map->kind == YT_MAP ? yt_get(f->loss_map, "target", &at) : NULL;
	if (!t)
		return fe_labels(f, DT_F32, out->rank, out->dim, loc);
	const char *name = fe_str(f, t, "target");
	if (!name)
		return NULL;
	const char **names = mlc_arena_alloc(f->tmp, sizeof *names * (size_t)(f->ninputs + 1));
	for (int i = 0; i < f->ninputs; i++) {
		names[i] = f->lay[i].name ? f->lay[i].name : "";
		if (strcmp(names[i], name) != 0 || !f->lay[i].out)
			continue;
		mlc_node *x = f->lay[i].out;
		char a[96], b[96];
		if (x->dtype == DT_F32 && mlc_same_shape(x, out))
			return x;
		mlc_error_at(f->d, t->loc, "the loss's target '%s' is %s, but the model output is %s: they must match",
			     name, mlc_type_str(x, a, sizeof a), mlc_type_str(out, b, sizeof b));
		return NULL;
	}
	names[f->ninputs] = NULL;
	const char *s = fe_suggest(f, name, names);
	mlc_error_at(f->d, t->loc, "the loss's target '%s' is not an input of the model; %s%s%s", name,
		     s ? "did you mean '" : "its inputs are ", s ? s : fe_join(f, names), s ? "'?" : "");
	return NULL;
}

/* A loss on the input of the output's activation `act` when there is one (the
 * numerically stable form), the activation kept as the prediction; otherwise
 * on the output itself, with `act` added as the prediction (layer `pred`). */
static mlc_node *loss_folding(fe *f, mlc_opcode op, mlc_opcode act, mlc_node *labels, mlc_loc loc,
			      mlc_node **pred)
{
	mlc_node *out = f->output, *in = out;
	*pred = out;
	if (out->op == act && (act != OP_SIGMOID || out->attr.f[0] == 1))
		in = out->src[0];
	else
		*pred = fe_emit(f, mlc_arena_strdup(f->g->arena, "pred"), loc, act, NULL, 1, &out);
	return *pred ? fe_emit(f, mlc_arena_strdup(f->g->arena, "loss"), loc, op, NULL, 2, (mlc_node *[]){in, labels}) : NULL;
}

/* Class scores against integer labels. A softmax at the output is folded into
 * the loss (it is the numerically stable form) and kept as the prediction. */
static mlc_node *loss_classes(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			      mlc_node **pred)
{
	(void)a;
	if (!need_classes(f, name, loc))
		return NULL;
	mlc_node *labels = fe_labels(f, DT_I32, 1, (int64_t[]){MLC_BATCH}, loc);
	return labels ? loss_folding(f, op, OP_SOFTMAX, labels, loc, pred) : NULL;
}

/* Scores or probabilities against integer labels, read as they are: the
 * output is the prediction (hinge, categorical_cross_entropy). */
static mlc_node *loss_scores(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			     mlc_node **pred)
{
	if (!need_classes(f, name, loc))
		return NULL;
	mlc_node *labels = fe_labels(f, DT_I32, 1, (int64_t[]){MLC_BATCH}, loc);
	if (!labels)
		return NULL;
	*pred = f->output;
	return fe_emit(f, labels->layer, loc, op, a, 2, (mlc_node *[]){f->output, labels});
}

/* Targets of the output's own shape (regression, or probabilities for bce). */
static mlc_node *loss_targets(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			      mlc_node **pred)
{
	(void)name, (void)a;
	mlc_node *out = f->output;
	mlc_node *labels = targets_of(f, out, loc);
	if (!labels)
		return NULL;
	*pred = out;
	return fe_emit(f, mlc_arena_strdup(f->g->arena, "loss"), loc, op, NULL, 2, (mlc_node *[]){out, labels});
}

/* Logits against f32 targets of their shape; a sigmoid at the output is folded. */
static mlc_node *loss_logit_targets(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a,
				    mlc_loc loc, mlc_node **pred)
{
	(void)name, (void)a;
	mlc_node *out = f->output;
	mlc_node *labels = targets_of(f, out, loc);
	return labels ? loss_folding(f, op, OP_SIGMOID, labels, loc, pred) : NULL;
}

/* Logits against target distributions f32[N,C]; a softmax at the output is folded. */
static mlc_node *loss_distributions(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a,
				    mlc_loc loc, mlc_node **pred)
{
	(void)a;
	if (!need_classes(f, name, loc))
		return NULL;
	mlc_node *labels = fe_labels(f, DT_F32, 2, f->output->dim, loc);
	return labels ? loss_folding(f, op, OP_SOFTMAX, labels, loc, pred) : NULL;
}

static const char *const loss_names[] = {"softmax_cross_entropy", "cross_entropy", "mse",
					 "binary_cross_entropy", "hinge", "mae",
					 "binary_cross_entropy_with_logits", "categorical_cross_entropy",
					 "kl_div", "distillation", NULL};
static const struct {
	mlc_opcode op;
	loss_fn build;
} loss_kinds[] = {
	{OP_SOFTMAX_XENT, loss_classes},
	{OP_SOFTMAX_XENT, loss_classes},
	{OP_MSE, loss_targets},
	{OP_BCE, loss_targets},
	{OP_HINGE, loss_scores},
	{OP_MAE, loss_targets},
	{OP_BCE_LOGITS, loss_logit_targets},
	{OP_CATEGORICAL_XENT, loss_scores},
	{OP_KL_DIV, loss_distributions},
	{OP_SOFTMAX_XENT, fe_loss_distill},
};
_Static_assert(MLC_COUNTOF(loss_names) == MLC_COUNTOF(loss_kinds) + 1, "loss table");

/* The loss op's attributes from the mapping's other keys (hinge's margin). */
static bool loss_attrs(fe *f, const yt_node *v, mlc_opcode op, mlc_attrs *a)
{
	static const fe_range non_negative = {0, INFINITY, false, true};
	mlc_attrs_default(op, a, f->g->arena);
	mlc_loc at;
	const yt_node *margin = v->kind == YT_MAP ? yt_get(v, "margin", &at) : NULL;
	if (!margin)
		return true;
	if (op != OP_HINGE) {
		mlc_error_at(f->d, at, "'margin' applies only to 'loss: {type: hinge}'");
		return false;
	}
	return fe_num(f, margin, "margin", non_negative, &a->f[0]);
}

void fe_loss(fe *f, const yt_node *v, mlc_loc key)
{
	static const char *const keys[] = {"type", "margin", "teacher", "temperature", "alpha", "target", NULL};
	const yt_node *type = v;
	if (v->kind == YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected a loss name or a mapping such as '{type: mse}', got a list");
		return;
	}
	if (v->kind == YT_MAP) {
		fe_check_keys(f, v, keys, "in 'loss'");
		type = yt_get(v, "type", NULL);
		if (!type && !fe_misspelled(v, keys[0], keys))
			mlc_error_at(f->d, v->loc, "the loss needs a 'type', e.g. '{type: mse}'");
		if (!type)
			return;
	}
	int i = fe_enum(f, type, "loss", "loss", loss_names);
	mlc_attrs a;
	if (i < 0 || !loss_attrs(f, v, loss_kinds[i].op, &a) || !f->output)
		return;
	/* teacher, temperature, alpha: read by distillation's builder */
	for (int k = 0; v->kind == YT_MAP && k < v->n && loss_kinds[i].build != fe_loss_distill; k++)
		for (const char *const *dk = fe_distill_keys; *dk; dk++)
			if (strcmp(v->key[k]->str, *dk) == 0) {
				mlc_error_at(f->d, v->key[k]->loc, "'%s' applies only to 'loss: {type: distillation}'", *dk);
				return;
			}
	mlc_loc tk;
	if (v->kind == YT_MAP && yt_get(v, "target", &tk) && loss_kinds[i].build != loss_targets &&
	    loss_kinds[i].build != loss_logit_targets) {
		mlc_error_at(f->d, tk, "'target' applies only to the losses whose targets have the output's shape: "
			     "mse, mae, binary_cross_entropy and binary_cross_entropy_with_logits");
		return;
	}
	f->loss_map = v;
	mlc_node *pred = NULL;
	mlc_node *loss = loss_kinds[i].build(f, loss_names[i], loss_kinds[i].op, &a, key, &pred);
	if (!loss)
		return;
	mlc_graph_ret(f->g, "loss", loss);
	mlc_graph_ret(f->g, "pred", pred);
}

/* ---- optimizer ---- */

/* Each name is also its update op's name in ir/ops.def. */
static const char *const opt_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", NULL};

/* The update ops' hyperparameters: read into a value and checked against the
 * type's attribute schema (ir/ops.def) once the whole mapping is read, as
 * `type` may come last. */
enum { HP_BETA1, HP_BETA2, HP_EPS, HP_WEIGHT_DECAY, HP_ALPHA, HP_RHO, HP_INIT_ACC, HP_COUNT };
static const struct {
	const char *key, *attr;
	fe_range range;
} hp[HP_COUNT] = {
	{"beta1", "beta1", {0, 1, false, true}},
	{"beta2", "beta2", {0, 1, false, true}},
	{"eps", "eps", {0, INFINITY, true, true}},
	{"weight_decay", "weight_decay", {0, INFINITY, false, true}},
	{"alpha", "alpha", {0, 1, false, false}},
	{"rho", "rho", {0, 1, false, false}},
	{"initial_accumulator", "initial_accumulator", {0, INFINITY, false, true}},
};

typedef struct {
	mlc_opt_cfg *o;
	const yt_node *decoupled; /* decoupled_weight_decay: true, checked against the type */
	const yt_node *nesterov; /* checked against momentum once both are read */
	const yt_node *momentum, *lr;
	bool bad_type; /* reported: the other keys are not checked against it */
	const yt_node *hp[HP_COUNT];
	double val[HP_COUNT];
} opt_ctx;

/* The attribute slot of `key` in update op `op`'s schema, or -1. */
static int attr_slot(mlc_opcode op, const char *key)
{
	mlc_attrdesc desc[MLC_MAX_ATTR];
	int nd = mlc_op_attrs(op, desc, MLC_MAX_ATTR);
	for (int j = 0; j < nd; j++)
		if (strcmp(desc[j].name, key) == 0)
			return desc[j].slot;
	return -1;
}

/* Is `key` an option of the optimizer type (read before the other keys)? */
static bool applies(fe *f, opt_ctx *c, const char *key, const yt_node *v)
{
	if (c->bad_type)
		return false; /* reported already */
	mlc_opcode op = mlc_op_lookup(c->o->type);
	if (attr_slot(op, key) >= 0)
		return true;
	mlc_attrdesc desc[MLC_MAX_ATTR];
	int nd = mlc_op_attrs(op, desc, MLC_MAX_ATTR);
	char opts[MLC_MAX_ATTR * (sizeof desc[0].name + 2)] = "";
	for (int i = 0; i < nd; i++) {
		if (!strcmp(desc[i].name, "lr_mult") || !strcmp(desc[i].name, "decoupled"))
			continue; /* per layer; decoupled_weight_decay */
		if (*opts)
			strcat(opts, ", ");
		strcat(opts, desc[i].name);
	}
	mlc_error_at(f->d, v->loc, "'%s' is not an option of the %s optimizer (its options: lr, %s)", key,
		     c->o->type, opts);
	return false;
}

static void read_hp(fe *f, opt_ctx *c, int k, const yt_node *v)
{
	if (fe_num(f, v, hp[k].key, hp[k].range, &c->val[k]) && applies(f, c, hp[k].key, v))
		c->hp[k] = v;
}
#define HP_READER(name, k)                                                                         \
	static void opt_##name(fe *f, void *ctx, const yt_node *v) { read_hp(f, ctx, k, v); }
HP_READER(beta1, HP_BETA1)
HP_READER(beta2, HP_BETA2)
HP_READER(eps, HP_EPS)
HP_READER(weight_decay, HP_WEIGHT_DECAY)
HP_READER(alpha, HP_ALPHA)
HP_READER(rho, HP_RHO)
HP_READER(initial_accumulator, HP_INIT_ACC)
#undef HP_READER

static void opt_type(fe *f, void *ctx, const yt_node *v)
{
	opt_ctx *c = ctx;
	int i = fe_enum(f, v, "optimizer", "optimizer", opt_names);
	if (i >= 0)
		c->o->type = mlc_arena_strdup(f->m->arena, opt_names[i]);
	else
		c->bad_type = true;
}

static void opt_lr(fe *f, void *ctx, const yt_node *v)
{
	opt_ctx *c = ctx;
	if (fe_num(f, v, "lr", FE_POSITIVE, &c->o->lr))
		c->lr = v;
}

static void opt_momentum(fe *f, void *ctx, const yt_node *v)
{
	opt_ctx *c = ctx;
	if (fe_num(f, v, "momentum", FE_UNIT, &c->o->momentum) && applies(f, c, "momentum", v))
		c->momentum = v;
}

static void opt_nesterov(fe *f, void *ctx, const yt_node *v)
{
	opt_ctx *c = ctx;
	if (fe_bool(f, v, "nesterov", &c->o->nesterov) && applies(f, c, "nesterov", v))
		c->nesterov = v;
}

/* sgd and adam: weight decay as p ← p·(1 − lr·wd) instead of g ← g + wd·p */
static void opt_decoupled(fe *f, void *ctx, const yt_node *v)
{
	opt_ctx *c = ctx;
	bool on;
	if (fe_bool(f, v, "decoupled_weight_decay", &on) && on)
		c->decoupled = v;
}

/* clip_norm, clip_value: any optimizer type (passes/optimizer.c) */
static void opt_clip_norm(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "clip_norm", FE_POSITIVE, &((opt_ctx *)ctx)->o->clip_norm);
}

static void opt_clip_value(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "clip_value", FE_POSITIVE, &((opt_ctx *)ctx)->o->clip_value);
}

static const char *const sched_names[] = {"constant",  "step",         "exponential",       "cosine",
					  "multistep", "inverse_time", "reduce_on_plateau", NULL};

static void sched_type(fe *f, void *ctx, const yt_node *v)
{
	mlc_sched_cfg *c = &((opt_ctx *)ctx)->o->schedule;
	int i = fe_enum(f, v, "schedule", "learning-rate schedule", sched_names);
	if (i >= 0)
		c->kind = (mlc_sched_kind)i; /* sched_names is in mlc_sched_kind order */
}

static void sched_step_size(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "step_size", FE_POSITIVE, &((opt_ctx *)ctx)->o->schedule.step_size);
}

static void sched_gamma(fe *f, void *ctx, const yt_node *v)
{
	double *g = &((opt_ctx *)ctx)->o->schedule.gamma;
	if (fe_num(f, v, "gamma", FE_POSITIVE, g) && *g > 1)
		mlc_error_at(f->d, v->loc, "gamma must be at most 1, got %s", v->str);
}

static void sched_min_lr(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.min_lr;
	if (fe_num(f, v, "min_lr", FE_ANY, x) && *x < 0)
		mlc_error_at(f->d, v->loc, "min_lr must not be negative, got %s", v->str);
}

static void sched_warmup(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.warmup;
	if (fe_num(f, v, "warmup", FE_ANY, x) && *x < 0)
		mlc_error_at(f->d, v->loc, "warmup must not be negative, got %s", v->str);
}

/* milestones: [e1, e2, ...], strictly increasing epochs */
static void sched_milestones(fe *f, void *ctx, const yt_node *v)
{
	mlc_sched_cfg *c = &((opt_ctx *)ctx)->o->schedule;
	if (v->kind != YT_SEQ || v->n == 0) {
		mlc_error_at(f->d, v->loc, "expected a list of epochs for 'milestones', such as [30, 80], got %s",
			     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
		return;
	}
	double *x = mlc_arena_alloc(f->m->arena, sizeof *x * (size_t)v->n);
	for (int i = 0; i < v->n; i++) {
		int64_t k;
		if (!fe_int(f, v->val[i], "milestones", 1, INT32_MAX, &k))
			return;
		x[i] = (double)k;
		if (i > 0 && x[i] <= x[i - 1]) {
			mlc_error_at(f->d, v->val[i]->loc, "milestones must be strictly increasing, got %s after %s",
				     v->val[i]->str, v->val[i - 1]->str);
			return;
		}
	}
	c->milestones = x;
	c->nmilestones = v->n;
}

static void sched_decay_rate(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.decay_rate;
	if (fe_num(f, v, "decay_rate", FE_ANY, x) && *x < 0)
		mlc_error_at(f->d, v->loc, "decay_rate must not be negative, got %s", v->str);
}

static void sched_warmup_epochs(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.warmup_epochs;
	if (fe_num(f, v, "warmup_epochs", FE_ANY, x) && *x < 0)
		mlc_error_at(f->d, v->loc, "warmup_epochs must not be negative, got %s", v->str);
}

static void sched_warmup_start(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.warmup_start;
	if (fe_num(f, v, "warmup_start", FE_POSITIVE, x) && *x > 1)
		mlc_error_at(f->d, v->loc, "warmup_start must be at most 1, got %s", v->str);
}

static void sched_patience(fe *f, void *ctx, const yt_node *v)
{
	int64_t k;
	if (fe_int(f, v, "patience", 0, INT32_MAX, &k))
		((opt_ctx *)ctx)->o->schedule.patience = (int)k;
}

static void sched_factor(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((opt_ctx *)ctx)->o->schedule.factor;
	if (fe_num(f, v, "factor", FE_POSITIVE, x) && *x >= 1)
		mlc_error_at(f->d, v->loc, "factor must be below 1, got %s", v->str);
}

static void sched_threshold(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "threshold", FE_UNIT, &((opt_ctx *)ctx)->o->schedule.threshold);
}

static const fe_key sched_keys[] = {
	{"type", sched_type},
	{"step_size", sched_step_size},
	{"gamma", sched_gamma},
	{"min_lr", sched_min_lr},
	{"warmup", sched_warmup},
	{"milestones", sched_milestones},
	{"decay_rate", sched_decay_rate},
	{"warmup_epochs", sched_warmup_epochs},
	{"warmup_start", sched_warmup_start},
	{"patience", sched_patience},
	{"factor", sched_factor},
	{"threshold", sched_threshold},
	{NULL, NULL},
};

/* `schedule: cosine` or `schedule: {type: step, step_size: 3, gamma: 0.5}` */
static void opt_schedule(fe *f, void *ctx, const yt_node *v)
{
	if (v->kind == YT_MAP) {
		if (!fe_read_keys(f, v, sched_keys, ctx, "in 'schedule'"))
			return;
		const mlc_sched_cfg *c = &((opt_ctx *)ctx)->o->schedule;
		const yt_node *w = yt_get(v, "warmup_epochs", NULL);
		if (c->kind == MLC_SCHED_MULTISTEP && !c->milestones && !yt_get(v, "milestones", NULL))
			mlc_error_at(f->d, v->loc, "schedule multistep needs 'milestones', such as [30, 80]");
		else if (w && yt_get(v, "warmup", NULL))
			mlc_error_at(f->d, w->loc, "give either 'warmup' (cosine's own) or 'warmup_epochs', not both");
	} else if (v->kind == YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected a schedule name or a mapping such as "
			     "'{type: cosine, warmup: 1}', got a list");
	} else {
		sched_type(f, ctx, v);
		if (((opt_ctx *)ctx)->o->schedule.kind == MLC_SCHED_MULTISTEP)
			mlc_error_at(f->d, v->loc, "schedule multistep needs 'milestones': write "
				     "'{type: multistep, milestones: [30, 80]}'");
	}
}

static const fe_key opt_keys[] = {
	{"type", NULL}, {"lr", opt_lr}, {"momentum", opt_momentum}, {"nesterov", opt_nesterov},
	{"beta1", opt_beta1}, {"beta2", opt_beta2}, {"eps", opt_eps}, {"weight_decay", opt_weight_decay},
	{"alpha", opt_alpha}, {"rho", opt_rho}, {"initial_accumulator", opt_initial_accumulator},
	{"schedule", opt_schedule}, {"clip_norm", opt_clip_norm}, {"clip_value", opt_clip_value},
	{"decoupled_weight_decay", opt_decoupled}, {NULL, NULL}};

/* Resolves the update op's attributes: its defaults (ir/ops.def), then the
 * keys given, each of which must be one of the type's options; and the
 * type's default learning rate unless lr was given (PyTorch's defaults). */
static void opt_finish(fe *f, opt_ctx *c)
{
	mlc_opt_cfg *o = c->o;
	mlc_opcode op = mlc_op_lookup(o->type);
	MLC_ASSERT(op != OP_COUNT && mlc_op_is_update(op));
	o->update = op;
	mlc_attrs_default(op, &o->attrs, f->m->arena);
	if (!c->lr && op != OP_SGD)
		o->lr = op == OP_ADAM || op == OP_ADAMW ? 0.001 : op == OP_ADADELTA ? 1.0 : 0.01;
	/* sgd's momentum and nesterov stay in o (mlc_pass_opts) as well */
	for (int k = -1; k < HP_COUNT; k++) {
		const yt_node *v = k < 0 ? c->momentum : c->hp[k]; /* -1: rmsprop's momentum */
		int slot = v ? attr_slot(op, k < 0 ? "momentum" : hp[k].key) : -1;
		if (slot >= 0)
			o->attrs.f[slot] = k < 0 ? o->momentum : c->val[k];
	}
	if (!c->decoupled)
		return;
	if (op == OP_ADAM)
		o->update = OP_ADAMW; /* the same update, attributes in the same slots */
	else if (op == OP_SGD)
		o->attrs.i[attr_slot(op, "decoupled")] = 1;
	else
		mlc_error_at(f->d, c->decoupled->loc, "decoupled_weight_decay applies to sgd and adam%s, not %s",
			     op == OP_ADAMW ? " (adamw's decay is always decoupled)" : "", o->type);
}

/* The schedule alone, before any warm-up_epochs factor. */
static double sched_lr(const mlc_sched_cfg *s, double lr, double t, int epochs)
{
	switch (s->kind) {
	case MLC_SCHED_CONSTANT:
	case MLC_SCHED_PLATEAU: /* the runtime lowers lr itself: mlc_plateau_step */
		return lr;
	case MLC_SCHED_STEP:
		return lr * pow(s->gamma > 0 ? s->gamma : 0.1, floor(t / (s->step_size > 0 ? s->step_size : 1)));
	case MLC_SCHED_EXPONENTIAL:
		return lr * pow(s->gamma > 0 ? s->gamma : 0.95, floor(t));
	case MLC_SCHED_COSINE: {
		if (t < s->warmup)
			return lr * t / s->warmup;
		double span = epochs - s->warmup, p = span > 0 ? (t - s->warmup) / span : 1;
		return s->min_lr + (lr - s->min_lr) * 0.5 * (1 + cos(M_PI * (p < 1 ? p : 1)));
	}
	case MLC_SCHED_MULTISTEP: { /* PyTorch MultiStepLR: one gamma per milestone passed */
		int k = 0;
		while (k < s->nmilestones && floor(t) >= s->milestones[k])
			k++;
		return lr * pow(s->gamma > 0 ? s->gamma : 0.1, k);
	}
	case MLC_SCHED_INVERSE_TIME: /* Keras InverseTimeDecay, staircase=false, decay_steps = 1 epoch */
		return lr / (1 + s->decay_rate * t);
	}
	return lr;
}

double mlc_lr_at(const mlc_opt_cfg *o, double lr, double t, int epochs)
{
	const mlc_sched_cfg *s = &o->schedule;
	double x = sched_lr(s, lr, t, epochs);
	if (t < s->warmup_epochs) /* linear from warmup_start to 1, like PyTorch's LinearLR */
		x *= s->warmup_start + (1 - s->warmup_start) * t / s->warmup_epochs;
	return x;
}

void fe_optimizer(fe *f, const yt_node *v, mlc_loc key)
{
	opt_ctx c = {.o = &f->m->opt};
	c.o->loc = fe_mloc(f, key);
	if (v->kind == YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected an optimizer name or a mapping such as "
			     "'{type: sgd, lr: 0.1}', got a list");
		return;
	}
	if (v->kind != YT_MAP) {
		opt_type(f, &c, v); /* the shorthand `optimizer: sgd` */
		opt_finish(f, &c);
		return;
	}
	/* the type first: the other keys are checked against it as they come */
	for (int i = 0; i < v->n; i++)
		if (strcmp(v->key[i]->str, "type") == 0)
			opt_type(f, &c, v->val[i]);
	fe_read_keys(f, v, opt_keys, &c, "in 'optimizer'");
	opt_finish(f, &c);
	if (c.nesterov && c.o->nesterov && c.o->momentum == 0)
		mlc_error_at(f->d, c.nesterov->loc, "nesterov needs a momentum above 0");
}

/* ---- data ---- */

enum { FMT_IDX, FMT_CSV, FMT_CIFAR };
static const char *const formats[] = {"idx", "csv", "cifar10", NULL};

typedef struct {
	mlc_data_cfg *c;
	int fmt; /* -1 if `format:` was wrong: then train/test can't be judged */
} data_ctx;

/* Relative paths are relative to the spec's folder, not the working directory. */
bool fe_read_path(fe *f, const yt_node *v, const char *what, mlc_path *out)
{
	const char *s = fe_str(f, v, what);
	if (!s)
		return false;
	out->path = s[0] == '/' ? mlc_arena_strdup(f->m->arena, s)
				: mlc_arena_printf(f->m->arena, "%s%s", f->dir, s);
	out->loc = fe_mloc(f, v->loc);
	return true;
}

/* cifar10: one path or a list of them (data_batch_1.bin, ...). */
static void read_file_list(fe *f, const yt_node *v, const char *what, mlc_path *x,
			   const mlc_path **files, int *nfiles)
{
	if (v->kind == YT_MAP || (v->kind == YT_SEQ && v->n == 0)) {
		mlc_error_at(f->d, v->loc, "with format: cifar10, '%s' is a path or a list of paths, got %s", what,
			     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
		return;
	}
	int n = v->kind == YT_SEQ ? v->n : 1;
	mlc_path *p = mlc_arena_alloc(f->m->arena, sizeof *p * (size_t)n);
	bool ok = true;
	for (int i = 0; i < n; i++)
		ok &= fe_read_path(f, v->kind == YT_SEQ ? v->val[i] : v, what, &p[i]);
	if (!ok)
		return;
	*x = p[0];
	*files = p;
	*nfiles = n;
}

/* train: / test: — {images, labels} for idx (and the files data.inputs reads,
 * under keys of their own), one path for csv, one or more for cifar10. */
static void read_files(fe *f, const yt_node *v, const char *what, int fmt, mlc_path *x, mlc_path *y,
		       const mlc_path **files, int *nfiles, const mlc_more_file **more, int *nmore)
{
	static const char *const idx_keys[] = {"images", "labels", NULL};
	if (fmt < 0)
		return;
	if (fmt == FMT_CIFAR) {
		read_file_list(f, v, what, x, files, nfiles);
		return;
	}
	if (fmt == FMT_CSV) {
		if (v->kind == YT_SCALAR)
			fe_read_path(f, v, what, x);
		else
			mlc_error_at(f->d, v->loc, "with format: csv, '%s' is the path of one CSV file, got %s",
				     what, fe_show(f, v));
		return;
	}
	if (v->kind != YT_MAP) {
		mlc_error_at(f->d, v->loc,
			     "with format: idx, '%s' needs '{images: <path>, labels: <path>}', got %s", what,
			     fe_show(f, v));
		return;
	}
	/* a key like images or labels is a typo; any other names a file of its own */
	mlc_more_file *m = mlc_arena_alloc(f->m->arena, sizeof *m * (size_t)(v->n ? v->n : 1));
	int n = 0;
	for (int i = 0; i < v->n; i++) {
		const yt_node *k = v->key[i];
		if (!strcmp(k->str, idx_keys[0]) || !strcmp(k->str, idx_keys[1]))
			continue;
		if (fe_suggest(f, k->str, idx_keys))
			fe_unknown_key(f, k, idx_keys, mlc_arena_printf(f->tmp, "in '%s'", what));
		else if (fe_read_path(f, v->val[i], k->str, &m[n].file))
			m[n++].key = mlc_arena_strdup(f->m->arena, k->str);
	}
	*more = m;
	*nmore = n;
	mlc_path *dst[] = {x, y};
	/* a loss whose target is an input (an autoencoder) reads no labels file;
	 * a test set without labels is only predicted (runtime/train.c) */
	bool labels = (mlc_graph_find_value(f->g, "labels") || !mlc_graph_main_loss(f->g)) && strcmp(what, "test") != 0;
	for (int i = 0; i < 2; i++) {
		const yt_node *p = yt_get(v, idx_keys[i], NULL);
		if (p)
			fe_read_path(f, p, idx_keys[i], dst[i]);
		else if (!fe_misspelled(v, idx_keys[i], idx_keys) && (i == 0 || labels))
			mlc_error_at(f->d, v->loc, "'%s' is missing '%s'", what, idx_keys[i]);
	}
}

static void data_train(fe *f, void *ctx, const yt_node *v)
{
	data_ctx *c = ctx;
	read_files(f, v, "train", c->fmt, &c->c->train_x, &c->c->train_y, &c->c->train_files,
		   &c->c->ntrain_files, &c->c->train_more, &c->c->ntrain_more);
}

static void data_test(fe *f, void *ctx, const yt_node *v)
{
	data_ctx *c = ctx;
	read_files(f, v, "test", c->fmt, &c->c->test_x, &c->c->test_y, &c->c->test_files,
		   &c->c->ntest_files, &c->c->test_more, &c->c->ntest_more);
}

static void data_validation(fe *f, void *ctx, const yt_node *v)
{
	data_ctx *c = ctx;
	read_files(f, v, "validation", c->fmt, &c->c->val_x, &c->c->val_y, &c->c->val_files,
		   &c->c->nval_files, &c->c->val_more, &c->c->nval_more);
}

static void data_label_columns(fe *f, void *ctx, const yt_node *v)
{
	data_ctx *c = ctx;
	int64_t k;
	if (c->fmt == FMT_IDX || c->fmt == FMT_CIFAR)
		mlc_error_at(f->d, v->loc, "'label_columns' only applies to format: csv");
	else if (!fe_int(f, v, "label_columns", 0, 1 << 20, &k))
		return;
	else if (k == 0 && mlc_graph_find_value(f->g, "labels"))
		mlc_error_at(f->d, v->loc, "label_columns: 0 leaves the rows no targets, but the loss reads labels; "
			     "0 is for a loss whose target is an input (e.g. '{type: mse, target: x}')");
	else
		c->c->label_columns = (int)k;
}

/* The names in mlc_csv_header's order (runtime/runtime.h). */
static void data_header(fe *f, void *ctx, const yt_node *v)
{
	static const char *const names[] = {"auto", "true", "false", NULL};
	data_ctx *c = ctx;
	if (c->fmt == FMT_IDX || c->fmt == FMT_CIFAR) {
		mlc_error_at(f->d, v->loc, "'header' only applies to format: csv");
		return;
	}
	int i = fe_enum(f, v, "header", "header value", names);
	if (i >= 0)
		c->c->csv_header = i;
}

static void data_scale(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "scale", FE_POSITIVE, &((data_ctx *)ctx)->c->scale);
}

/* A list of numbers, one per channel; NULL after an error. */
static double *read_channels(fe *f, const yt_node *v, const char *what, fe_range r)
{
	if (v->kind != YT_SEQ || v->n == 0) {
		mlc_error_at(f->d, v->loc, "expected a list of numbers for '%s', one per channel, got %s", what,
			     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
		return NULL;
	}
	double *x = mlc_arena_alloc(f->m->arena, sizeof *x * (size_t)v->n);
	bool ok = true;
	for (int i = 0; i < v->n; i++)
		ok &= fe_num(f, v->val[i], what, r, &x[i]);
	return ok ? x : NULL;
}

/* normalize: {mean: [...], std: [...]}, one value per channel of the input
 * (its last dimension), applied after `scale`. */
static void data_normalize(fe *f, void *ctx, const yt_node *v)
{
	static const char *const keys[] = {"mean", "std", NULL};
	mlc_data_cfg *c = ((data_ctx *)ctx)->c;
	if (!fe_expect_map(f, v, "normalize", "'{mean: [0.5], std: [0.25]}'"))
		return;
	fe_check_keys(f, v, keys, "in 'normalize'");
	const yt_node *mean = yt_get(v, "mean", NULL), *std = yt_get(v, "std", NULL);
	for (int i = 0; i < 2; i++)
		if (!(i ? std : mean) && !fe_misspelled(v, keys[i], keys))
			mlc_error_at(f->d, v->loc, "'normalize' is missing '%s'", keys[i]);
	if (!mean || !std)
		return;
	double *m = read_channels(f, mean, "mean", FE_ANY), *s = read_channels(f, std, "std", FE_POSITIVE);
	if (!m || !s)
		return;
	if (std->n != mean->n) {
		mlc_error_at(f->d, std->loc, "'std' has %d value%s but 'mean' has %d; give one of each per channel",
			     std->n, std->n == 1 ? "" : "s", mean->n);
		return;
	}
	const mlc_node *x = f->ninputs > 0 ? f->lay[0].out : NULL;
	if (x && x->dim[x->rank - 1] != mean->n) {
		char t[96];
		long long ch = (long long)x->dim[x->rank - 1];
		mlc_error_at(f->d, mean->loc, "'normalize' has %d value%s per list, but input '%s' %s has %lld "
			     "channel%s (its last dimension)",
			     mean->n, mean->n == 1 ? "" : "s", x->name, mlc_type_str(x, t, sizeof t), ch,
			     ch == 1 ? "" : "s");
		return;
	}
	c->nnorm = mean->n;
	c->norm_mean = m;
	c->norm_std = s;
}

static void data_inputs(fe *f, void *ctx, const yt_node *v)
{
	fe_data_inputs(f, v, ((data_ctx *)ctx)->c);
}

static void data_offset(fe *f, void *ctx, const yt_node *v)
{
	fe_int(f, v, "offset", 0, INT64_MAX, &((data_ctx *)ctx)->c->offset);
}

static void data_max_samples(fe *f, void *ctx, const yt_node *v)
{
	fe_int(f, v, "max_samples", 1, INT64_MAX, &((data_ctx *)ctx)->c->max_samples);
}

static void data_batch_size(fe *f, void *ctx, const yt_node *v)
{
	fe_int(f, v, "batch_size", 1, INT32_MAX, &((data_ctx *)ctx)->c->batch_size);
}

static void data_epochs(fe *f, void *ctx, const yt_node *v)
{
	int64_t k;
	if (fe_int(f, v, "epochs", 1, INT32_MAX, &k))
		((data_ctx *)ctx)->c->epochs = (int)k;
}

static void data_validation_split(fe *f, void *ctx, const yt_node *v)
{
	fe_num(f, v, "validation_split", FE_UNIT, &((data_ctx *)ctx)->c->validation_split);
}

static void data_shuffle(fe *f, void *ctx, const yt_node *v)
{
	fe_bool(f, v, "shuffle", &((data_ctx *)ctx)->c->shuffle);
}

static void data_seed(fe *f, void *ctx, const yt_node *v)
{
	int64_t k;
	if (fe_int(f, v, "seed", 0, INT64_MAX, &k))
		((data_ctx *)ctx)->c->seed = (uint64_t)k;
}

/* early_stopping: {monitor: val_loss, patience: 5, min_delta: 0, restore_best: true} */
static const char *const monitor_names[] = {"val_loss", "val_acc", "loss", "acc", NULL};

static void early_monitor(fe *f, void *ctx, const yt_node *v)
{
	mlc_early_cfg *c = ctx;
	int i = fe_enum(f, v, "monitor", "monitored value", monitor_names);
	if (i >= 0)
		c->monitor = (mlc_monitor)i; /* monitor_names is in mlc_monitor order */
	c->loc = fe_mloc(f, v->loc);
}

static void early_patience(fe *f, void *ctx, const yt_node *v)
{
	int64_t k;
	if (fe_int(f, v, "patience", 1, INT32_MAX, &k))
		((mlc_early_cfg *)ctx)->patience = (int)k;
}

static void early_min_delta(fe *f, void *ctx, const yt_node *v)
{
	double *x = &((mlc_early_cfg *)ctx)->min_delta;
	if (fe_num(f, v, "min_delta", FE_ANY, x) && *x < 0)
		mlc_error_at(f->d, v->loc, "min_delta must not be negative, got %s", v->str);
}

static void early_restore_best(fe *f, void *ctx, const yt_node *v)
{
	fe_bool(f, v, "restore_best", &((mlc_early_cfg *)ctx)->restore_best);
}

static const fe_key early_keys[] = {
	{"monitor", early_monitor},
	{"patience", early_patience},
	{"min_delta", early_min_delta},
	{"restore_best", early_restore_best},
	{NULL, NULL},
};

static void data_early_stopping(fe *f, void *ctx, const yt_node *v)
{
	mlc_early_cfg *c = &((data_ctx *)ctx)->c->early;
	c->loc = fe_mloc(f, v->loc);
	if (fe_expect_map(f, v, "early_stopping", "'{monitor: val_loss, patience: 5}'"))
		c->on = fe_read_keys(f, v, early_keys, c, "in 'early_stopping'");
}

static const fe_key data_keys[] = {
	{"format", NULL}, /* read first: train/test depend on it */
	{"train", data_train},
	{"test", data_test},
	{"inputs", data_inputs},
	{"offset", data_offset},
	{"max_samples", data_max_samples},
	{"label_columns", data_label_columns},
	{"header", data_header},
	{"scale", data_scale},
	{"normalize", data_normalize},
	{"batch_size", data_batch_size},
	{"epochs", data_epochs},
	{"validation_split", data_validation_split},
	{"validation", data_validation},
	{"shuffle", data_shuffle},
	{"seed", data_seed},
	{"early_stopping", data_early_stopping},
	{NULL, NULL},
};

void fe_data(fe *f, const yt_node *v, mlc_loc key)
{
	data_ctx c = {&f->m->data, FMT_IDX};
	c.c->loc = fe_mloc(f, key);
	if (!fe_expect_map(f, v, "data", "'{format: csv, train: train.csv}'"))
		return;
	const yt_node *x = yt_get(v, "format", NULL);
	if (x)
		c.fmt = fe_enum(f, x, "format", "data format", formats);
	if (c.fmt >= 0)
		c.c->format = mlc_arena_strdup(f->m->arena, formats[c.fmt]);
	fe_read_keys(f, v, data_keys, &c, "in 'data'");
	mlc_loc split_key, val_key;
	bool has_val = yt_get(v, "validation", &val_key) != NULL;
	if (has_val && yt_get(v, "validation_split", &split_key)) {
		bool split_first = split_key.line < val_key.line || (split_key.line == val_key.line && split_key.col < val_key.col);
		mlc_error_at(f->d, split_first ? val_key : split_key, "give either 'validation' (a separate data set) "
			     "or 'validation_split' (a fraction of 'train'), not both");
	}
	fe_data_feeds_check(f, c.c);
	const mlc_early_cfg *e = &c.c->early;
	if (e->on && (e->monitor == MLC_MON_VAL_LOSS || e->monitor == MLC_MON_VAL_ACC) && c.c->validation_split == 0 &&
	    !has_val)
		mlc_error_at(f->d, e->loc, "early_stopping monitors %s, which needs a validation set: a "
			     "validation_split above 0 or a 'validation' file; monitor 'loss' or 'acc' to watch the "
			     "training batches", monitor_names[e->monitor]);
}

/* ---- metrics ---- */

static const char *const metric_names[] = {"accuracy", "confusion", "precision", "recall", "f1", "mse", "mae",
					   "perplexity", NULL};
static const unsigned metric_bits[] = {MLC_METRIC_ACCURACY, MLC_METRIC_CONFUSION, MLC_METRIC_PRECISION,
				       MLC_METRIC_RECALL,   MLC_METRIC_F1,        MLC_METRIC_MSE,
				       MLC_METRIC_MAE,      MLC_METRIC_PERPLEXITY};
_Static_assert(MLC_COUNTOF(metric_names) == MLC_COUNTOF(metric_bits) + 1, "metric table");

/* "topK", K in 1..1000; 0 if s is not of that form */
static int topk_of(const char *s)
{
	if (strncmp(s, "top", 3) != 0 || !s[3] || strlen(s + 3) > 4 || s[3] == '0')
		return 0;
	int k = 0;
	for (const char *p = s + 3; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		k = 10 * k + (*p - '0');
	}
	return k <= 1000 ? k : 0;
}

void fe_metrics(fe *f, const yt_node *v, mlc_loc key)
{
	mlc_metrics_cfg *m = &f->m->metrics;
	m->loc = fe_mloc(f, key);
	if (v->kind != YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected a list of metric names for 'metrics' (e.g. [accuracy, top5, f1]), "
			     "got %s", fe_show(f, v));
		return;
	}
	static const char *const hints[] = {"accuracy", "confusion", "precision", "recall", "f1",
					    "mse",      "mae",       "top5",      "perplexity", NULL};
	for (int i = 0; i < v->n; i++) {
		const yt_node *x = v->val[i];
		if (x->kind != YT_SCALAR || yt_is_null(x)) {
			mlc_error_at(f->d, x->loc, "expected a metric name, got %s", fe_show(f, x));
			continue;
		}
		unsigned bit = 0;
		int k = topk_of(x->str);
		for (int j = 0; metric_names[j] && !k; j++)
			if (strcmp(x->str, metric_names[j]) == 0)
				bit = metric_bits[j];
		if (k) {
			if ((m->set & MLC_METRIC_TOPK) && m->topk != k) {
				mlc_error_at(f->d, x->loc, "only one top-k metric can be reported; top%d is already listed",
					     m->topk);
				continue;
			}
			bit = MLC_METRIC_TOPK;
			m->topk = k;
		} else if (!bit) {
			const char *s = fe_suggest(f, x->str, hints);
			if (s)
				mlc_error_at(f->d, x->loc, "unknown metric %s; did you mean '%s'?", fe_show(f, x), s);
			else
				mlc_error_at(f->d, x->loc, "unknown metric %s; expected one of: %s, or topK (e.g. top5)",
					     fe_show(f, x), fe_join(f, metric_names));
			continue;
		}
		/* the loss: was read before the metrics (a failed loss: nothing to check) */
		const mlc_node *loss = bit == MLC_METRIC_PERPLEXITY ? mlc_graph_main_loss(f->g) : NULL;
		if (loss && loss->op != OP_SOFTMAX_XENT && loss->op != OP_CATEGORICAL_XENT) {
			mlc_error_at(f->d, x->loc, "perplexity is exp of the mean cross-entropy per sample, so it needs "
				     "the loss softmax_cross_entropy or categorical_cross_entropy");
			mlc_note_at(f->d, loss->loc, "this model's loss is given here");
			continue;
		}
		m->set |= bit;
	}
}
