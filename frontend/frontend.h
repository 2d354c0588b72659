/* frontend.h — YAML spec (docs/spec.md) → forward graph + training configuration. */
#ifndef MLC_FRONTEND_H
#define MLC_FRONTEND_H

#include "../ir/ir.h"

/* A file path from the spec, resolved against the spec's folder, with where it was written. */
typedef struct {
	const char *path; /* NULL when not given */
	mlc_loc loc;
} mlc_path;

/* `early_stopping:` (under data:); what it monitors, in the order of their names. */
typedef enum { MLC_MON_VAL_LOSS, MLC_MON_VAL_ACC, MLC_MON_LOSS, MLC_MON_ACC } mlc_monitor;
typedef struct {
	bool on;             /* early_stopping: given */
	mlc_monitor monitor; /* val_loss */
	int patience;        /* 5 */
	double min_delta;    /* 0 */
	bool restore_best;   /* true */
	mlc_loc loc;         /* the monitor: key, or the early_stopping: key */
} mlc_early_cfg;

/* data.inputs: where one model input's values come from (docs/spec.md#data). */
typedef struct {
	const char *input;  /* the model input it feeds */
	const char *file;   /* idx: the key of a set's file ("images" or another key of train:); NULL: images */
	int64_t start, end; /* values [start, end) of a sample of that file; end 0: all of them */
	mlc_loc loc;        /* the input's key under data.inputs */
	mlc_loc cols_loc;   /* its columns: value (loc when not given) */
} mlc_feed_cfg;

/* An IDX set's file beyond images and labels, read by an input (its key under train:, ...). */
typedef struct {
	const char *key;
	mlc_path file;
} mlc_more_file;

typedef struct {
	const char *format;          /* "idx" (default), "csv" or "cifar10" */
	mlc_path train_x, train_y;   /* idx: images + labels; csv, cifar10: train_x only (the first file) */
	mlc_path test_x, test_y;
	const mlc_path *train_files, *test_files; /* cifar10: every file, in order */
	int ntrain_files, ntest_files;
	mlc_path val_x, val_y;       /* validation: a separate validation set, like test (none) */
	const mlc_path *val_files;
	int nval_files;
	const mlc_more_file *train_more, *test_more, *val_more; /* idx: the sets' other files */
	int ntrain_more, ntest_more, nval_more;
	const mlc_feed_cfg *feeds;   /* data.inputs, in spec order (the first input defaults to images) */
	int nfeeds;
	int64_t offset;              /* samples skipped at the start of every data set (0) */
	int64_t max_samples;         /* samples kept after them (0: all) */
	int label_columns;           /* csv: number of trailing target columns (1) */
	int csv_header;              /* csv: 0 auto, 1 the first row is a header, 2 it is data (mlc_csv_header) */
	double scale;                /* features are multiplied by this (1.0) */
	int nnorm;                   /* normalize: values per channel (0: no normalization) */
	const double *norm_mean, *norm_std; /* x = (x * scale - mean[c]) / std[c], c = index % nnorm */
	int64_t batch_size;          /* 32 */
	int epochs;                  /* 10 */
	double validation_split;     /* 0.0: fraction of train held out */
	bool shuffle;                /* true */
	uint64_t seed;               /* 42 */
	mlc_early_cfg early;         /* early_stopping: */
	mlc_loc loc;                 /* the data: section */
} mlc_data_cfg;

/* Learning-rate schedule, evaluated by the training loop at every step with
 * t = the fractional epoch (0 at the start): see docs/spec.md. */
typedef enum {
	MLC_SCHED_CONSTANT, MLC_SCHED_STEP, MLC_SCHED_EXPONENTIAL, MLC_SCHED_COSINE,
	MLC_SCHED_MULTISTEP, MLC_SCHED_INVERSE_TIME, MLC_SCHED_PLATEAU,
} mlc_sched_kind;
typedef struct {
	mlc_sched_kind kind; /* constant (default), step, ..., reduce_on_plateau */
	double step_size;   /* step: epochs between decays (1) */
	double gamma;       /* step: factor per step_size epochs (0.1); exponential: per epoch (0.95);
			       multistep: per milestone (0.1); 0: that default */
	double min_lr;      /* cosine: the final learning rate (0); reduce_on_plateau: the floor (0) */
	double warmup;      /* cosine: epochs of linear warm-up from 0 (0) */
	const double *milestones; /* multistep: strictly increasing epochs */
	int nmilestones;
	double decay_rate;  /* inverse_time (1) */
	double warmup_epochs; /* any schedule: epochs of linear warm-up (0: none) */
	double warmup_start;  /* the factor the warm-up starts from (1/3) */
	int patience;       /* reduce_on_plateau: epochs without improvement tolerated (10) */
	double factor;      /* reduce_on_plateau: lr multiplier (0.1) */
	double threshold;   /* reduce_on_plateau: relative improvement that counts (1e-4) */
} mlc_sched_cfg;

typedef struct {
	const char *type;   /* "sgd" */
	double lr;          /* 0.01 */
	double momentum;    /* 0.0 */
	bool nesterov;      /* false */
	mlc_opcode update;  /* the type's update op: OP_SGD, OP_ADAM, ... */
	mlc_attrs attrs;    /* its attributes (not sgd's: momentum and nesterov above) */
	double clip_norm;   /* any type: global gradient L2 norm limit (0: none) */
	double clip_value;  /* any type: gradient element limit (0: none) */
	mlc_sched_cfg schedule;
	mlc_loc loc;
} mlc_opt_cfg;

/* The learning rate at fractional epoch t of `epochs`; for reduce_on_plateau
 * base_lr is the current (reduced) rate. */
double mlc_lr_at(const mlc_opt_cfg *o, double base_lr, double t, int epochs);

/* `metrics:` — what training reports per epoch and at test time. */
enum {
	MLC_METRIC_ACCURACY = 1u << 0,
	MLC_METRIC_TOPK = 1u << 1,      /* top-k accuracy, k = topk */
	MLC_METRIC_CONFUSION = 1u << 2, /* the test set's confusion matrix */
	MLC_METRIC_PRECISION = 1u << 3, /* per class, and their macro average */
	MLC_METRIC_RECALL = 1u << 4,
	MLC_METRIC_F1 = 1u << 5,
	MLC_METRIC_MSE = 1u << 6,       /* regression: pred against f32 targets */
	MLC_METRIC_MAE = 1u << 7,
	MLC_METRIC_PERPLEXITY = 1u << 8, /* exp(mean cross-entropy per sample); cross-entropy losses only */
};
typedef struct {
	unsigned set; /* MLC_METRIC_* bits; 0: not given (accuracy, or mse for regression) */
	int topk;     /* k of MLC_METRIC_TOPK */
	mlc_loc loc;  /* the metrics: key */
} mlc_metrics_cfg;

/* `init_from:` — parameters loaded by name from another model's weights
 * (runtime/init_from.c), after the initializers ran. */
typedef struct {
	mlc_path file;      /* file.path NULL: not given */
	int nlayers;        /* `layers:` restricts it to these layers' parameters; 0: every match */
	const char **layers;
	mlc_loc *layer_loc;
	mlc_loc loc;        /* the init_from: key */
} mlc_init_cfg;

/* loss type distillation: the teacher's parameters are "teacher.<name>",
 * frozen, loaded from `weights` (runtime/init_from.c). */
typedef struct {
	mlc_path weights;   /* weights.path NULL: no teacher */
} mlc_teacher_cfg;

/* The composed distillation loss (frontend/distill.c), also for tests:
 * (1 − alpha)·softmax_xent(zs, labels) + alpha·T²·kl_div(zs/T, softmax(zt/T)),
 * nodes of from's layer and loc. */
mlc_node *mlc_distill_loss(mlc_graph *g, const mlc_node *from, mlc_node *zs, mlc_node *zt, mlc_node *labels,
			   double temperature, double alpha);
/* `checkpoint:` — where and how often training saves its whole state. */
typedef struct {
	mlc_path path;        /* NULL: no checkpoints (unless --checkpoint) */
	int every_epochs;     /* 1; 0: not at epoch ends */
	int64_t every_steps;  /* 0: not every N train steps */
	bool templated;       /* path has {epoch} or {step}: one file per checkpoint */
	int keep;             /* with a template, the newest N files the run wrote are kept; 0: all */
	mlc_loc keep_loc;
	mlc_loc loc;          /* the checkpoint: key */
} mlc_ckpt_cfg;
/* Checkpoint path templates (docs/spec.md#checkpoints): {epoch} and {step},
 * zero-padded as {epoch:03} (or {epoch:03d}); {{ and }} are literal braces.
 * Check: false with the reason in why ("has an unknown field '{epch}'; did
 * you mean '{epoch}'? ..."); *fields tells whether t has a field. */
bool mlc_ckpt_template_check(const char *t, bool *fields, char *why, size_t len);
/* A checked template with its fields replaced (malloc'd). */
char *mlc_ckpt_template_expand(const char *t, int epoch, uint32_t step);

typedef struct {
	mlc_arena *arena;   /* owns the strings below; the graph has its own */
	const char *path;
	mlc_graph *graph;   /* forward graph: inputs (x, y), params, ret "loss" and "pred" */
	mlc_data_cfg data;
	mlc_opt_cfg opt;
	mlc_metrics_cfg metrics;
	mlc_init_cfg init;
	mlc_teacher_cfg teacher;
	mlc_ckpt_cfg checkpoint;
} mlc_model;

/* Parses and checks a spec; every error found is reported to d (all of them,
 * not just the first). On success *out owns a graph with shapes inferred. */
mlc_status mlc_frontend_load(const char *path, mlc_diag *d, mlc_model **out);
/* Same, from text already in memory (tests); `path` names it in messages and
 * anchors relative data paths. */
mlc_status mlc_frontend_load_text(const char *path, const char *text, size_t len, mlc_diag *d,
				  mlc_model **out);
void mlc_model_free(mlc_model *m);

#endif
