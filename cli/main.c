/* main.c — the `mlc` command line: subcommands, their flags (table-driven,
 * unknown flags are errors with a did-you-mean) and exit codes:
 * 0 success, 2 a user mistake (spec, data, flags), 1 an internal failure,
 * 128 + the signal when SIGINT/SIGTERM stopped training. */
#include "mlc/mlc.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* OpenBLAS's worker threads, started when it loads, each malloc a 128 MiB
 * buffer and retry forever when that fails (runtime/session.c, blas_fits):
 * under an address-space limit too small for them, start again with one
 * OpenBLAS thread before anything else runs (glibc passes argv to
 * constructors). */
enum { blas_buffer = 134221824 };

__attribute__((constructor)) static void blas_under_limit(int argc, char **argv, char **envp)
{
	(void)argc;
	(void)envp;
	struct rlimit rl;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (getenv("OPENBLAS_NUM_THREADS") || getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    cores <= 1 || rl.rlim_cur >= (rlim_t)(cores + 8) * blas_buffer)
		return;
	setenv("OPENBLAS_NUM_THREADS", "1", 1);
	execv("/proc/self/exe", argv); /* on failure, go on as we are */
}

typedef struct {
	mlc_options o;
	const char *file, *out, *save, *predict, *emit;
	mlc_plot_options plot;
	int kfold, n;
	bool eval, help;
	int no_data;
} args;

typedef enum { F_BOOL, F_INT, F_U64, F_DOUBLE, F_STR } ftype;

typedef struct {
	const char *name;
	ftype type;
	size_t off; /* into args */
	const char *help;
} flag;

#define A(field) offsetof(args, field)
static const flag f_batch = {"batch", F_INT, A(o.batch_size), "batch size (overrides data.batch_size)"};
static const flag f_seed = {"seed", F_U64, A(o.seed), "random seed (overrides data.seed)"};
static const flag f_threads = {"threads", F_INT, A(o.threads), "kernel threads, 1 to 64 (default: the online CPUs, at most 8)"};
static const flag f_verbose = {"verbose", F_BOOL, A(o.verbose), "print pass and compile times"};
static const flag f_weights = {"weights", F_STR, A(o.weights), "initial weights (safetensors)"};
static const flag f_out = {"o", F_STR, A(out), "output file"};
static const flag f_wrt = {"wrt-inputs", F_BOOL, A(o.wrt_inputs), "also differentiate w.r.t. the inputs"};
static const flag f_passes = {"passes", F_STR, A(o.passes),
			      "run exactly these PASSES, comma-separated, in that order (shapes, autodiff, optimizer, dce, "
			      "fuse, plan)"};
static const flag f_spec = {"spec", F_STR, A(o.spec),
			    "a MODEL.yaml whose data, optimizer, metrics and checkpoints a GRAPH.ir uses"};
static const flag f_no_fuse = {"no-fuse", F_BOOL, A(o.no_fuse), "skip the fuse pass (every op its own kernel)"};
static const flag f_fuse_off = {"fuse-off", F_STR, A(o.fuse_off),
				"switch off fusion RULES (comma-separated: epilogue, elementwise, reduce, update, batchnorm)"};
static const flag f_cache_dir = {"cache-dir", F_STR, A(o.cache_dir),
				 "compiled-code cache (default: $MLC_CACHE_DIR, $XDG_CACHE_HOME/mlc, ~/.cache/mlc)"};
static const flag f_no_cache = {"no-cache", F_BOOL, A(o.no_cache), "compile without the code cache"};
static const flag f_check_numerics = {"check-numerics", F_BOOL, A(o.check_numerics),
				      "stop at the first NaN/Inf a training step, evaluation or prediction computes, naming the op "
				      "and its layer"};

typedef struct {
	const char *name, *usage, *summary;
	const flag *flags[40]; /* NULL-terminated */
	int (*run)(args *a, mlc_diag *d);
} command;

static int exit_code(mlc_status st)
{
	return st == MLC_OK ? 0 : st == MLC_EINTERNAL ? 1 : 2;
}

static int cmd_check(args *a, mlc_diag *d)
{
	mlc_session *s;
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st == MLC_OK) {
		mlc_session_summary(s, stdout);
		st = mlc_session_init_report(s, stdout, d);
		mlc_status ds = a->no_data ? MLC_OK : mlc_session_check_data(s, d);
		st = st == MLC_OK ? ds : st;
		mlc_session_close(s);
	}
	return exit_code(st);
}

static int cmd_ir(args *a, mlc_diag *d)
{
	mlc_session *s;
	/* With a dump flag, the dumps are the output; otherwise the final graph. */
	bool dumps = a->o.print_after || a->o.print_before;
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st != MLC_OK)
		return exit_code(st);
	if (a->emit && strcmp(a->emit, "ir") != 0)
		st = mlc_session_emit(s, a->emit, a->out ? a->out : "-", d);
	else if (!dumps)
		mlc_session_print_ir(s, stdout);
	mlc_session_close(s);
	return exit_code(st);
}

/* SIGINT/SIGTERM while training: the first asks the loop to stop after the
 * current step (and checkpoint); a second one ends the process at once. */
_Static_assert(_Generic((sig_atomic_t)0, int: 1, default: 0), "mlc_options.stop is an int");
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	if (stop_signal) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

/* Whether `mlc run` trains: --eval and --predict use the --weights given;
 * --predict without --weights trains first (a Keras fit() then predict()),
 * so that predictions never come from the untrained initial weights. */
static bool run_trains(const args *a)
{
	return !a->eval && !(a->predict && a->o.weights);
}

/* Flags that only make sense while training, or only apart. */
static bool run_flags_ok(const args *a, mlc_diag *d)
{
	if (a->kfold && (a->eval || a->predict)) {
		mlc_error_file(d, NULL, "--kfold trains K models and keeps none; it cannot be combined with %s",
			       a->eval ? "--eval" : "--predict");
		return false;
	}
	if (a->o.profile && (a->predict || a->save)) {
		mlc_error_file(d, NULL, "--profile is for training; it cannot be combined with %s",
			       a->predict ? "--predict" : "--save");
		return false;
	}
	const char *mode = !run_trains(a) ? (a->eval ? "--eval" : "--predict") : a->kfold ? "--kfold" : NULL;
	const struct {
		bool set, with_eval, with_kfold;
		const char *name;
	} f[] = {
		{a->o.json_log != NULL, false, true, "--log"},
		{a->o.checkpoint != NULL, false, false, "--checkpoint"},
		{a->o.checkpoint_epochs > 0, false, false, "--checkpoint-epochs"},
		{a->o.checkpoint_steps > 0, false, false, "--checkpoint-steps"},
		{a->o.checkpoint_keep > 0, false, false, "--checkpoint-keep"},
		{a->o.resume != NULL, false, false, "--resume"},
		{a->save != NULL, true, false, "--save"},
		{a->o.profile != 0, false, false, "--profile"},
	};
	for (size_t i = 0; mode && i < sizeof f / sizeof f[0]; i++)
		if (f[i].set && !(a->kfold ? f[i].with_kfold : f[i].with_eval)) {
			mlc_error_file(d, NULL, "%s %s; it cannot be combined with %s", f[i].name,
				       i == 0 ? "records training" : a->kfold ? "is for one training run" : "is for training",
				       mode);
			return false;
		}
	if (a->eval && !a->o.weights) {
		mlc_error_file(d, NULL, "--eval evaluates trained weights: pass --weights FILE (saved by 'mlc run --save "
			       "FILE'); a plain 'mlc run' trains and then evaluates the test set");
		return false;
	}
	if (a->o.resume && a->o.weights) {
		mlc_error_file(d, NULL, "--resume restores the weights from the checkpoint; it cannot be combined with "
			       "--weights");
		return false;
	}
	if (a->kfold == 1) {
		mlc_error_file(d, NULL, "--kfold needs at least 2 folds, got 1");
		return false;
	}
	return true;
}

static int cmd_run(args *a, mlc_diag *d)
{
	if (!run_flags_ok(a, d))
		return 2;
	mlc_session *s;
	bool train = run_trains(a);
	if (a->predict && strcmp(a->predict, "-") == 0)
		a->o.log = stderr; /* stdout is the CSV */
	FILE *log = a->o.log ? a->o.log : stdout;
	if (train) {
		struct sigaction sa = {.sa_handler = on_stop_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		a->o.stop = &stop_signal;
	}
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st == MLC_OK) /* before anything is compiled or loaded */
		st = mlc_session_check_data(s, d);
	if (st != MLC_OK) {
		mlc_session_close(s);
		return exit_code(st);
	}
	if (a->o.profile)
		st = mlc_session_profile(s, d);
	else if (a->kfold)
		st = mlc_session_kfold(s, a->kfold, d);
	else if (train) {
		if (a->predict && !a->o.quiet)
			fprintf(log, "no --weights given: training first, then predicting with the trained weights\n");
		st = mlc_session_train(s, d);
		/* what the planned arenas (mlc check) cost in practice, with the
		 * data, the JIT and the libraries; ru_maxrss is in KiB on Linux */
		struct rusage ru;
		if (st == MLC_OK && !a->o.quiet && getrusage(RUSAGE_SELF, &ru) == 0)
			fprintf(log, "peak RSS: %.1f MB\n", (double)ru.ru_maxrss * 1024e-6);
	}
	if (st == MLC_OK && a->eval)
		st = mlc_session_evaluate(s, d);
	if (st == MLC_OK && a->predict)
		st = mlc_session_predict(s, a->predict, d);
	if (st == MLC_OK && a->save)
		st = mlc_session_save(s, a->save, d);
	mlc_session_close(s);
	/* stopped by a signal: the shell's code for it, 130 (SIGINT) or 143 (SIGTERM) */
	return st == MLC_ESTOPPED ? 128 + stop_signal : exit_code(st);
}

static int cmd_compile(args *a, mlc_diag *d)
{
	if (!a->out) {
		mlc_error_file(d, NULL, "compile needs -o OUT (writes OUT.ll and OUT.o)");
		return 2;
	}
	mlc_session *s;
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st != MLC_OK)
		return exit_code(st);
	size_t n = strlen(a->out) + 4;
	char *ll = malloc(n), *obj = malloc(n);
	snprintf(ll, n, "%s.ll", a->out);
	snprintf(obj, n, "%s.o", a->out);
	st = mlc_session_emit(s, "llvm-opt", ll, d);
	if (st == MLC_OK)
		st = mlc_session_emit(s, "obj", obj, d);
	if (st == MLC_OK)
		printf("wrote %s and %s\n", ll, obj);
	free(ll);
	free(obj);
	mlc_session_close(s);
	return exit_code(st);
}

static int cmd_grad(args *a, mlc_diag *d)
{
	a->o.no_update = 1;
	mlc_session *s;
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st != MLC_OK)
		return exit_code(st);
	st = mlc_session_grad(s, a->out ? a->out : "grads.safetensors", d);
	mlc_session_close(s);
	return exit_code(st);
}

static int cmd_plot(args *a, mlc_diag *d)
{
	if (!a->out) {
		mlc_error_file(d, NULL, "plot needs -o OUT.svg or -o OUT.png");
		return 2;
	}
	return exit_code(mlc_plot(a->file, a->out, &a->plot, d));
}

static int cmd_reconstruct(args *a, mlc_diag *d)
{
	if (!a->out) {
		mlc_error_file(d, NULL, "reconstruct needs -o OUT.png");
		return 2;
	}
	if (!a->o.weights) { /* the initial weights' pictures would look like a result */
		mlc_error_file(d, a->file, "reconstruct needs --weights W.safetensors (mlc run --save writes them)");
		return 2;
	}
	mlc_session *s;
	mlc_status st = mlc_session_open(a->file, &a->o, d, &s);
	if (st != MLC_OK)
		return exit_code(st);
	st = mlc_session_reconstruct(s, a->out, a->n ? a->n : 16, d);
	mlc_session_close(s);
	return exit_code(st);
}

static const command commands[] = {
	{"check", "mlc check [options] MODEL.yaml|GRAPH.ir",
	 "validate a spec, print the model summary, and check the data files against the model",
	 {&f_batch, &f_verbose, &f_passes, &f_spec,
	  &(flag){"no-data", F_BOOL, A(no_data), "check the spec and the model only, not the data files it names"}},
	 cmd_check},
	{"ir", "mlc ir [options] MODEL.yaml|GRAPH.ir", "print the IR after the passes, or the generated code",
	 {&(flag){"print-after", F_STR, A(o.print_after), "dump the IR after PASS (or all)"},
	  &(flag){"print-before", F_STR, A(o.print_before), "dump the IR before PASS (or all)"},
	  &(flag){"stop-after", F_STR, A(o.stop_after), "run the passes up to PASS only"},
	  &(flag){"emit", F_STR, A(emit), "ir (default), llvm, llvm-opt, asm or obj (with -o)"}, &f_out, &f_wrt,
	  &(flag){"no-update", F_BOOL, A(o.no_update), "skip the optimizer pass"}, &f_batch, &f_threads,
	  &f_verbose, &f_no_fuse, &f_fuse_off, &f_passes, &f_spec},
	 cmd_ir},
	{"run", "mlc run [options] MODEL.yaml|GRAPH.ir", "train on the spec's data, or --eval, or --predict",
	 {&(flag){"epochs", F_INT, A(o.epochs), "epochs (overrides data.epochs)"},
	  &(flag){"lr", F_DOUBLE, A(o.lr), "learning rate (overrides optimizer.lr)"}, &f_batch, &f_seed,
	  &f_weights, &(flag){"save", F_STR, A(save), "save the trained weights (safetensors)"},
	  &(flag){"eval", F_BOOL, A(eval), "evaluate the --weights on the test set, no training (needs --weights)"},
	  &(flag){"predict", F_STR, A(predict),
		  "write test-set predictions to a CSV file: of the --weights, or without --weights after training"},
	  &(flag){"quiet", F_BOOL, A(o.quiet), "no per-epoch lines"},
	  &(flag){"log", F_STR, A(o.json_log),
		  "write one JSON line per epoch, and the test's, to FILE (--resume: trimmed to the checkpoint, then "
		  "appended to)"},
	  &f_threads, &f_verbose, &f_no_fuse,
	  &f_fuse_off, &f_cache_dir, &f_no_cache, &f_check_numerics,
	  &(flag){"profile", F_BOOL, A(o.profile),
		  "time 20 train steps per kernel and per layer, print the table (GFLOP/s, GB/s, % of peak) and stop"},
	  &(flag){"checkpoint", F_STR, A(o.checkpoint),
		  "save the training state to FILE (overrides checkpoint.path); {epoch} and {step} in FILE "
		  "(zero-padded: {epoch:03}) name one file per checkpoint"},
	  &(flag){"checkpoint-epochs", F_INT, A(o.checkpoint_epochs), "checkpoint every N epochs (overrides the spec)"},
	  &(flag){"checkpoint-steps", F_INT, A(o.checkpoint_steps), "checkpoint every N train steps (overrides the spec)"},
	  &(flag){"checkpoint-keep", F_INT, A(o.checkpoint_keep),
		  "keep only the newest N checkpoint files this run wrote (a FILE with {epoch} or {step})"},
	  &(flag){"resume", F_STR, A(o.resume), "continue training from a checkpoint FILE"},
	  &(flag){"kfold", F_INT, A(kfold), "K-fold cross-validation on the training set: mean and std of K runs"},
	  &f_spec},
	 cmd_run},
	{"compile", "mlc compile [options] MODEL.yaml|GRAPH.ir -o OUT", "write OUT.ll (optimized LLVM IR) and OUT.o",
	 {&f_out, &f_batch, &f_threads, &f_verbose, &f_no_fuse, &f_fuse_off, &f_passes}, cmd_compile},
	{"grad", "mlc grad [options] MODEL.yaml|GRAPH.ir -o GRADS.safetensors",
	 "loss and gradients of the first training batch, as safetensors",
	 {&f_weights, &f_out, &f_batch, &f_seed, &f_wrt, &f_threads, &f_no_fuse, &f_fuse_off, &f_cache_dir,
	  &f_no_cache, &f_verbose, &f_check_numerics, &f_spec},
	 cmd_grad},
	{"plot", "mlc plot [options] LOG.jsonl -o OUT.svg|OUT.png",
	 "draw a training log (mlc run --log, --kfold's too) as an SVG or PNG chart",
	 {&f_out, &(flag){"title", F_STR, A(plot.title), "the chart's title (default: the log's file name)"},
	  &(flag){"log-scale", F_BOOL, A(plot.log_scale), "loss, perplexity, mse/mae and lr on a log axis"},
	  &(flag){"fold-mean", F_BOOL, A(plot.fold_mean), "a --kfold log: the folds' mean ± std, not one curve per fold"}},
	 cmd_plot},
	{"reconstruct", "mlc reconstruct [options] MODEL.yaml --weights W.safetensors -o OUT.png",
	 "draw test images above the model's outputs for them (an autoencoder's reconstructions) as a PNG grid",
	 {&f_weights, &f_out, &(flag){"n", F_INT, A(n), "how many images, 1 to 256 (default 16)"}, &f_seed,
	  &f_threads, &f_cache_dir, &f_no_cache},
	 cmd_reconstruct},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mlc <command> [options] FILE\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'mlc <command> --help' lists a command's options. Exit codes: 0 ok, 2 user error, 1 internal error,\n"
		   "130/143 training stopped by SIGINT/SIGTERM.\n");
}

static void command_help(const command *c)
{
	printf("usage: %s\n%s\n\noptions:\n", c->usage, c->summary);
	for (int i = 0; c->flags[i]; i++) {
		const flag *f = c->flags[i];
		char name[40];
		snprintf(name, sizeof name, "%s%s%s", f->name[1] ? "--" : "-", f->name,
			 f->type == F_BOOL ? "" : f->type == F_STR ? " VALUE" : " N");
		printf("  %-22s %s\n", name, f->help);
	}
	printf("  %-22s %s\n", "--help", "this text");
	if (strcmp(c->name, "ir") == 0) {
		printf("\npasses:");
		for (int i = 0; mlc_pass_names[i]; i++)
			printf("%s %s", i ? "," : "", mlc_pass_names[i]);
		printf("\n");
	}
}

static bool set_flag(args *a, const flag *f, const char *val, mlc_diag *d)
{
	char *p = (char *)a + f->off, *end = NULL;
	errno = 0;
	switch (f->type) {
	case F_BOOL: *(int *)p = 1; return true;
	case F_STR: *(const char **)p = val; return true;
	case F_INT: {
		long long v = strtoll(val, &end, 10);
		if (errno || *end || end == val || v <= 0 || v > 1000000000)
			break;
		if (f->off == A(o.batch_size))
			*(int64_t *)p = v;
		else
			*(int *)p = (int)v;
		return true;
	}
	case F_U64: {
		unsigned long long v = strtoull(val, &end, 10);
		if (errno || *end || end == val || val[0] == '-')
			break;
		*(uint64_t *)p = v;
		a->o.seed_set = 1;
		return true;
	}
	case F_DOUBLE: {
		double v = strtod(val, &end);
		if (errno || *end || end == val || !(v > 0 && v < 1e6))
			break;
		*(double *)p = v;
		return true;
	}
	}
	mlc_error_file(d, NULL, "invalid value '%s' for --%s", val, f->name);
	return false;
}

static bool parse_args(const command *c, int argc, char **argv, args *a, mlc_diag *d)
{
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-' || !arg[1]) {
			if (a->file) {
				mlc_error_file(d, NULL, "unexpected argument '%s' (one FILE expected)", arg);
				return false;
			}
			a->file = arg;
			continue;
		}
		const char *name = arg + (arg[1] == '-' ? 2 : 1);
		if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
			a->help = true;
			return true;
		}
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const flag *f = NULL;
		const char *names[sizeof c->flags / sizeof c->flags[0]]; /* flags is NULL-terminated */
		int k = 0;
		for (; c->flags[k]; k++) {
			names[k] = c->flags[k]->name;
			if (strlen(c->flags[k]->name) == len && strncmp(c->flags[k]->name, name, len) == 0)
				f = c->flags[k];
		}
		names[k] = NULL;
		if (!f) {
			char word[64];
			snprintf(word, sizeof word, "%.*s", (int)len, name);
			const char *hint = mlc_suggest(word, names);
			mlc_error_file(d, NULL, "unknown option '%s' for 'mlc %s'%s%s%s", arg, c->name,
				       hint ? "; did you mean '--" : "", hint ? hint : "", hint ? "'?" : "");
			return false;
		}
		const char *val = eq ? eq + 1 : NULL;
		if (f->type == F_BOOL && val) {
			mlc_error_file(d, NULL, "option --%s takes no value", f->name);
			return false;
		}
		if (f->type != F_BOOL && !val) {
			if (i + 1 >= argc) {
				mlc_error_file(d, NULL, "option %s needs a value", arg);
				return false;
			}
			val = argv[++i];
		}
		if (!set_flag(a, f, val, d))
			return false;
	}
	if (!a->file) {
		mlc_error_file(d, NULL, "missing FILE; usage: %s", c->usage);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	mlc_diag *d = mlc_diag_new(stderr);
	const command *c = NULL;
	const char *names[8];
	size_t n = sizeof commands / sizeof commands[0];
	for (size_t i = 0; i < n; i++) {
		names[i] = commands[i].name;
		if (strcmp(commands[i].name, argv[1]) == 0)
			c = &commands[i];
	}
	names[n] = NULL;
	int rc = 2;
	if (!c) {
		const char *hint = mlc_suggest(argv[1], names);
		mlc_error_file(d, NULL, "unknown command '%s'%s%s%s (see 'mlc --help')", argv[1],
			       hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
	} else {
		args a = {0};
		if (parse_args(c, argc - 2, argv + 2, &a, d)) {
			if (a.help) {
				command_help(c);
				rc = 0;
			} else {
				rc = c->run(&a, d);
			}
		}
	}
	mlc_diag_free(d);
	return rc;
}
