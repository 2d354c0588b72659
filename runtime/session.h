/* session.h — what a session holds between the CLI's steps (internal). */
#ifndef MLC_SESSION_H
#define MLC_SESSION_H

#include "../codegen/codegen.h"
#include "../frontend/frontend.h"
#include "../passes/passes.h"
#include "metrics.h"
#include "runtime.h"

struct mlc_session {
	mlc_options opt;
	const char *path;
	mlc_model *model;   /* NULL when the input was IR text */
	mlc_graph *graph;   /* model->graph, or the parsed IR */
	bool planned;
	int64_t batch;      /* the planned (largest) batch */
	mlc_jit *jit;
	mlc_jit_stats jit_stats; /* of the compile that made jit */
	mlc_entry_fn fn[MLC_ENTRY_COUNT];
	float *params, *act;
	bool params_ready;  /* initialized or loaded */
	mlc_node *x, *y, *loss, *pred; /* x: the first input fed from the data; y: the labels input, if any */
	mlc_node *target;      /* the input the main loss reads as its targets (an autoencoder's), or NULL */
	struct mlc_feed *feed; /* every data-fed input of the graph (x is feed[0].in) */
	int nfeed;
	mlc_node *loss_term; /* the loss term pred belongs to (mlc_graph_main_loss) */
	mlc_rng rng;
	uint32_t seed;      /* hyper seed word (dropout masks): the run's seed folded to 32 bits */
	uint32_t step;      /* train steps taken: the hyper step word of the next one */
	FILE *log;
	struct mlc_fold *fold; /* set by mlc_session_kfold while it trains one fold */
};

/* One fold of K-fold cross-validation (runtime/kfold.c): mlc_session_train
 * trains on order[0, n - nval) and holds out order[n - nval, n) as its
 * validation set (instead of validation_split), skips the test set, writes
 * its epoch records to `log` with "fold": i, and leaves the held-out
 * evaluation here. */
typedef struct mlc_fold {
	const int64_t *order; /* n indices */
	int64_t n, nval;
	int i, k;             /* fold i (1-based) of k, for messages */
	FILE *log;            /* the run's --log, or NULL: gets the fold's epoch records */
	double loss;          /* mean loss on the held-out fold after training */
	double acc;           /* its accuracy (classifiers), else NAN */
	double mse;           /* its mse (regression), else NAN */
	int epochs;           /* epochs trained */
} mlc_fold;

/* runtime/params.c */
mlc_status mlc_params_prepare(mlc_session *s, mlc_diag *d); /* allocate; init or load --weights */
mlc_status mlc_params_load(mlc_session *s, const char *path, mlc_diag *d);
/* Views (borrowed pointers) of the parameter arena's tensors: every param,
 * and with_state every optimizer state too; returns how many (t has room for
 * one per graph node). */
int mlc_arena_tensors(const mlc_session *s, bool with_state, mlc_tensor *t);
/* Whether tensor t has param (or state) p's shape. */
bool mlc_tensor_fits(const mlc_tensor *t, const mlc_node *p);
/* Draws param p's initial values (its init, scale, center, spread and fans)
 * into w, numel(p) floats; false if the initializer is unknown. */
bool mlc_param_fill(mlc_rng *r, const mlc_node *p, float *w);
/* runtime/init_from.c: the spec's init_from: loads matching tensors into
 * params (NULL: only checks them) and reports what matched (report NULL: quiet). */
mlc_status mlc_init_from(mlc_session *s, float *params, FILE *report, mlc_diag *d);
/* ... and a distillation teacher's parameters from its weights file. */
mlc_status mlc_teacher_load(mlc_session *s, float *params, mlc_diag *d);
/* Is `name` a distillation teacher's parameter ("teacher.*")? Those come
 * from the teacher's own weights file: --save leaves them out, --weights
 * does not read them. */
bool mlc_param_is_teacher(const mlc_session *s, const char *name);

/* runtime/batch.c: data sets checked against the model, batches, metrics */
typedef struct {
	mlc_dataset ds;     /* the set's images and labels, or its CSV file */
	const char *file;   /* for messages */
	const char *labels_file; /* a separate labels file (IDX), for label messages; else NULL */
	mlc_dataset labels; /* a view of ds's labels as features (file: labels), not owned */
	mlc_dataset *more;  /* idx: more[i] is the other file feed i reads (empty if it reads ds) */
	const char **more_file;
	int nmore;
	bool unlabeled;     /* a test set without its labels file: predicted, not evaluated */
} mlc_data;
/* One input fed from the data: values [col, col + numel) of each sample of
 * its source (more < 0: the set's main file; else data.more[more]), scaled
 * and normalized as data: says while the batch is gathered. */
typedef struct mlc_feed {
	mlc_node *in;
	const mlc_feed_cfg *cfg; /* NULL: the default (the first input, every feature) */
	int more;
	int64_t col;
} mlc_feed;
void mlc_data_free(mlc_data *data);
mlc_status mlc_data_load(mlc_session *s, bool test, mlc_data *out, mlc_diag *d); /* train or test */
typedef enum { MLC_SET_TRAIN, MLC_SET_TEST, MLC_SET_VAL } mlc_set;
/* The data set `which` of the spec (validation: data.validation). */
mlc_status mlc_data_load_set(mlc_session *s, mlc_set which, mlc_data *out, mlc_diag *d);
mlc_status mlc_data_check(mlc_session *s, const mlc_data *data, mlc_diag *d);
/* runtime/datacheck.c: the loss's rules on every target of a loaded set, at the loss's line */
mlc_status mlc_targets_check(mlc_session *s, const mlc_data *data, mlc_diag *d);
void mlc_batch_fill(mlc_session *s, const mlc_data *data, const int64_t *idx, int64_t n);
/* Adds a filled and evaluated batch's predictions to m. */
void mlc_batch_metrics(const mlc_session *s, const mlc_dataset *ds, const int64_t *idx, int64_t n,
		       mlc_metrics *m);
int64_t mlc_pred_width(const mlc_session *s);
/* The class a row of c outputs predicts: argmax, or output > 0.5 when c == 1. */
int64_t mlc_pred_class(const float *row, int64_t c);

/* runtime/session.c */
mlc_status mlc_session_jit(mlc_session *s, mlc_diag *d);
double mlc_now(void);

#endif
