/* mlc.h — the one public header of libmlc: status codes, diagnostics and the
 * driver API the `mlc` CLI is built on. Everything else is internal. */
#ifndef MLC_MLC_H
#define MLC_MLC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library functions return a status; only the CLI turns it into an exit code. */
typedef enum {
	MLC_OK = 0,
	MLC_EUSER,     /* a user mistake (spec, data file, flag); already diagnosed */
	MLC_EIO,       /* a file could not be read or written; already diagnosed */
	MLC_EINTERNAL, /* a failure inside mlc or LLVM; already diagnosed */
	MLC_ESTOPPED,  /* training stopped on request (*mlc_options.stop), after a checkpoint if configured */
} mlc_status;

/* A position in a source file; line and col are 1-based, 0 means unknown. */
typedef struct {
	const char *file;
	int line, col;
} mlc_loc;

/* Diagnostics sink: errors are printed as they are reported, chibicc-style:
 *   file:line:col: error: message
 *     <source line>
 *         ^
 * The sink remembers source texts (mlc_diag_add_source) to show the line. */
typedef struct mlc_diag mlc_diag;

mlc_diag *mlc_diag_new(FILE *out);
void mlc_diag_free(mlc_diag *d);
/* Registers the text of `file` (copied) so diagnostics can quote its lines. */
void mlc_diag_add_source(mlc_diag *d, const char *file, const char *text, size_t len);
void mlc_error_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mlc_note_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A file-level error: "path: error: message" (path may be NULL: "mlc: error: ..."). */
void mlc_error_file(mlc_diag *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int mlc_diag_errors(const mlc_diag *d);

/* Did-you-mean: the candidate closest to `word` by edit distance, or NULL if
 * none is close enough to be a plausible typo. `cands` is NULL-terminated. */
const char *mlc_suggest(const char *word, const char *const *cands);

/* ---- Driver: a session is one spec taken through the pipeline. ---- */

/* The pipeline's pass names in order, NULL-terminated (passes/pipeline.c). */
extern const char *const mlc_pass_names[];

/* The most kernel threads a run may ask for: the thread pool's size. Each
 * thread gets its own scratch in the plan, so more would cost memory and
 * never run in parallel. */
#define MLC_MAX_THREADS 64

typedef struct {
	/* pass manager: pass names are those of `mlc ir --help`, or "all" */
	const char *print_before, *print_after, *stop_after;
	const char *passes;    /* comma-separated passes to run, in that order, and no others (NULL: the pipeline) */
	const char *spec;      /* a .yaml spec whose data, optimizer, ... an .ir file trains with (NULL: none) */
	FILE *print_to;        /* IR dumps (stdout if NULL) */
	int wrt_inputs;        /* also differentiate with respect to the inputs */
	int no_update;         /* no optimizer pass (gradients only) */
	/* overrides of the spec (0 / negative: keep the spec's value) */
	int64_t batch_size;
	int epochs;
	double lr;
	int seed_set;
	uint64_t seed;
	int threads;           /* BLAS and kernel threads, at most MLC_MAX_THREADS; 0: the library default */
	int no_fuse;           /* skip the fuse pass */
	const char *fuse_off;  /* fusion rules to switch off, comma-separated */
	const char *weights;   /* initial weights (safetensors), NULL: initializers */
	/* compiled-object cache; NULL: $MLC_CACHE_DIR, else $XDG_CACHE_HOME/mlc,
	 * else $HOME/.cache/mlc. $MLC_NO_CACHE=1 also turns it off. */
	const char *cache_dir;
	int no_cache;
	/* run (training, evaluation, prediction), grad: check every value each kernel writes and stop at the first
	 * NaN/Inf, naming the op, its layer and pass (compiled separately) */
	int check_numerics;
	/* run: compile profiled entries; mlc_session_profile times a few train
	 * steps per kernel (docs/design.md, "Profiles") */
	int profile;
	int quiet;             /* no per-epoch progress */
	int verbose;           /* compile times and plan sizes */
	FILE *log;             /* progress and results (stdout if NULL) */
	const char *json_log;  /* training: one JSON object a line per epoch, then the test's (NULL: none) */
	/* checkpoints (docs/spec.md#checkpoints): the path overrides the spec's
	 * checkpoint.path; when either interval is set (> 0) both replace the
	 * spec's every_epochs / every_steps (an unset one is then 0: off) */
	const char *checkpoint;
	int checkpoint_epochs, checkpoint_steps;
	int checkpoint_keep;   /* > 0: overrides checkpoint.keep (needs a path template) */
	const char *resume;    /* continue training from this checkpoint */
	/* Polled after every train step: nonzero stops training there (after a
	 * checkpoint when one is configured) with MLC_ESTOPPED; its value is
	 * reported as the signal number. A signal handler may set it (it is a
	 * sig_atomic_t on Linux). NULL: never. */
	const volatile int *stop;
} mlc_options;

typedef struct mlc_session mlc_session;

/* Loads the spec (a .yaml model, or a .ir text graph) and runs the passes
 * (up to o->stop_after). Diagnostics go to d. */
mlc_status mlc_session_open(const char *path, const mlc_options *o, mlc_diag *d, mlc_session **out);
void mlc_session_close(mlc_session *s);
/* Keras-style table: layer, ops, output shape, parameters; totals; planned memory. */
void mlc_session_summary(const mlc_session *s, FILE *out);
/* The spec's init_from: checks its file against the model and prints what
 * would be loaded, skipped and kept (mlc check); MLC_OK without init_from. */
mlc_status mlc_session_init_report(mlc_session *s, FILE *out, mlc_diag *d);
/* Opens the data files the spec names and checks them against the model
 * from their headers (IDX header and labels, CSV first rows, CIFAR size):
 * missing files (with a did-you-mean), feature counts, targets against the
 * loss; errors at the spec line naming the file. MLC_OK for IR text. */
mlc_status mlc_session_check_data(mlc_session *s, mlc_diag *d);
/* The graph's text IR as it stands. */
void mlc_session_print_ir(const mlc_session *s, FILE *out);
/* what: "llvm", "llvm-opt", "asm" (path "-" is stdout) or "obj". */
mlc_status mlc_session_emit(mlc_session *s, const char *what, const char *path, mlc_diag *d);
/* Trains on the spec's data (and reports validation/test metrics). */
mlc_status mlc_session_train(mlc_session *s, mlc_diag *d);
/* Evaluates on the test set (or the training set if there is none). */
mlc_status mlc_session_evaluate(mlc_session *s, mlc_diag *d);
/* 3 warm-up and 20 timed train steps on the training data's first batches
 * (the session must have been opened with o->profile), then the time per
 * kernel and per layer of one step, slowest first, each kernel's GFLOP/s or
 * GB/s against the measured sgemm and copy peaks. */
mlc_status mlc_session_profile(mlc_session *s, mlc_diag *d);
/* Writes one CSV row per test sample (docs/spec.md#predictions):
 * id, true label or targets, predicted class (classifiers) and outputs. */
mlc_status mlc_session_predict(mlc_session *s, const char *csv_path, mlc_diag *d);
/* One batch of the training data (the first `batch_size` samples, in file
 * order): loss and every gradient, written as safetensors ("loss", then the
 * gradients under their parameters' names). Needs a session opened with no_update. */
mlc_status mlc_session_grad(mlc_session *s, const char *out_path, mlc_diag *d);
/* `mlc reconstruct`: the first n (1 to 256, at most a batch) test images
 * (training images without a test set), each above the model's output for
 * it, as a PNG grid of grey square images (docs/spec.md, "Reconstructions").
 * The input and the output must have the same square number of values. */
mlc_status mlc_session_reconstruct(mlc_session *s, const char *png_path, int n, mlc_diag *d);
mlc_status mlc_session_save(mlc_session *s, const char *path, mlc_diag *d);
/* K-fold cross-validation on the training set (shuffled once with the seed):
 * for each fold, parameters and optimizer state start afresh from the seed,
 * train on the other K-1 folds for the spec's epochs and are evaluated on
 * the held-out fold; prints each fold and the mean ± sample std of the loss
 * and the headline metric; json_log gets one line per fold and a summary. */
mlc_status mlc_session_kfold(mlc_session *s, int k, mlc_diag *d);

/* `mlc plot`: reads a JSON-lines training log (as written for json_log, a
 * K-fold run's too) and draws it against the epoch, one panel per kind of
 * value logged (loss; accuracy, top-k and the other scores; perplexity;
 * mse and mae; the learning rate when it changes), with the test record as
 * points, as SVG or PNG by out_path's extension (docs/spec.md, "Plots").
 * A malformed line is a located error. */
typedef struct {
	const char *title; /* NULL: the log's file name */
	int log_scale;     /* loss, perplexity, mse/mae and lr on a log10 axis */
	int fold_mean;     /* a K-fold log: the folds' mean ± std, not a curve per fold */
} mlc_plot_options;
mlc_status mlc_plot(const char *log_path, const char *out_path, const mlc_plot_options *o, mlc_diag *d);

#ifdef __cplusplus
}
#endif
#endif
