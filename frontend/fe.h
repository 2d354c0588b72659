/* fe.h — internals shared by the frontend's files: the loading context, the
 * layer table's shape, scopes and blocks, and the typed readers that turn
 * spec-tree values into C values (or located errors). */
#ifndef MLC_FE_H
#define MLC_FE_H

#include "frontend.h"
#include "yaml_tree.h"

typedef struct fe fe;
typedef struct fe_layer fe_layer;
typedef struct fe_block fe_block;
typedef struct fe_scope fe_scope;

/* Parses one value of a layer (the op key's argument or an attribute) into
 * the layer's args; false after reporting an error. v is NULL for the
 * argument of the shorthand form ("- relu"). */
typedef bool (*fe_attr_fn)(fe *f, fe_layer *l, const yt_node *v);

typedef struct {
	const char *key;
	fe_attr_fn parse;
} fe_attr;

enum { FE_VARIADIC = -1 }; /* the arity of concat: two or more inputs */

/* One row of the layer table (layers.c), or a block used as a layer op. */
typedef struct {
	const char *name;      /* the op key in the spec */
	mlc_opcode op;         /* its op node (dense: the matmul); OP_COUNT for blocks and aliases */
	int arity;             /* how many inputs it reads, or FE_VARIADIC */
	fe_attr_fn primary;    /* parses the op key's value */
	const fe_attr *attrs;  /* its other keys; ends with {NULL} */
	/* emits the layer's nodes reading `in`; its result, or NULL after an error */
	mlc_node *(*build)(fe *f, fe_layer *l, mlc_node *const *in);
	const fe_block *block; /* a block instance, else NULL */
} fe_kind;

typedef enum { FE_PAD_VALID, FE_PAD_SAME, FE_PAD_EXPLICIT } fe_pad;

/* An initializer as the spec gave it (init.c): what its param node gets. */
typedef struct {
	const char *name;  /* canonical: "glorot_uniform", ..., "constant" */
	double scale;      /* gain (he: relative to relu's √2) */
	double center;     /* constant: value; uniform: (low + high)/2; normal: mean */
	double spread;     /* uniform: (high − low)/2; normal: std */
	bool fan_out;      /* he: mode fan_out */
} fe_init;

/* What a layer's keys said; defaults come from the table and the op schema. */
typedef struct {
	int64_t units;     /* dense: units; conv2d: filters */
	mlc_opcode act;    /* dense, conv2d: the activation op, OP_COUNT for none */
	bool bias;
	fe_init init;      /* dense, conv2d: the weight's initializer (glorot_uniform) */
	fe_init bias_init; /* dense, conv2d: the bias's (zeros) */
	int64_t kernel[2]; /* conv2d: kernel; pools: window size */
	int64_t stride[2]; /* pools: 0 until given (then the window size) */
	int64_t dilation[2];
	int64_t groups;
	fe_pad pad_mode;
	int64_t pad[4];    /* explicit padding: top, left, bottom, right */
	mlc_loc groups_loc;
	const yt_node *block_args; /* a block instance: its parameter mapping (NULL: defaults) */
	int64_t repeat;            /* a block instance: copies in sequence (1) */
	mlc_loc repeat_loc;
	bool frozen;       /* trainable: false (its parameters, or all of a block instance's) */
	mlc_attrs attr;    /* attributes of the result node (alpha, slope, ste, p, momentum, ...) */
	double operand;    /* a binary primitive given a number: its second operand (prim.c) */
	bool has_operand;
	bool has_size;     /* slice: 'size' was given */
} fe_args;

/* A named value of the spec: a model input (kind NULL), a layer, a block's
 * input inside an instance (a "port", an alias of what the instance reads) or
 * the head of a repeated block (an alias of its last copy). Inputs come first
 * in fe.lay, then the layers of each scope in the order they are written;
 * instance bodies are appended when they are expanded. */
struct fe_layer {
	const char *local;    /* its name in its scope ("a"); NULL until default names are given */
	const char *name;     /* full name ("bottleneck1.a"), in the graph arena */
	mlc_loc name_loc;     /* where the name was written, if it was */
	const fe_kind *kind;
	mlc_loc loc;          /* the op key (an input: its key) */
	fe_args args;
	const yt_node *inputs_key;   /* graph form: its input/inputs key */
	int nsrc;                    /* what it reads */
	const yt_node **src_node;    /* graph form: the names it reads; NULL: wired directly */
	int *src;                    /* their indices in fe.lay once resolved, -1 if not */
	int inst;                    /* the block instance whose body holds it (fe.inst), or -1 */
	int group;                   /* head of a repeated block: how many copies follow it */
	bool member;                 /* one of those copies: named with its head */
	bool bad;          /* its own spec is wrong: never built */
	mlc_node *out;     /* its result once built; NULL if it or an input failed */
	unsigned char mark; /* topological sort: 0 new, 1 on the stack, 2 done */
	bool in_cycle;      /* already named in a reported cycle */
	int stackpos, next_src;
	double lr_mult;     /* `lr_mult:` (1): scales the learning rate of its parameters */
	double l1, l2;      /* `l1:`, `l2:` penalties on its weight (0: none; regularize.c) */
	mlc_loc l1_loc, l2_loc;
	bool has_weight;    /* it made a weight penalties can apply to */
};

/* A string → index table (open addressing) for names: inputs and layers. */
typedef struct {
	const char **key;
	int *idx;
	size_t cap, n;
} fe_names;

/* A block definition (blocks.c). */
struct fe_block {
	const char *name;
	mlc_loc loc;               /* its key under blocks: */
	fe_kind kind;              /* how layers use it */
	int nparams;
	const char **pname;        /* NULL-terminated */
	const yt_node **pkey;      /* where each is declared */
	const yt_node **pdef;      /* its default; NULL: required */
	int ninputs;
	const yt_node **input;     /* the names of its inputs inside the body */
	const yt_node *body;       /* its graph: mapping or layers: list */
	bool graph_form;
	mlc_loc body_key;
	const yt_node *output;     /* graph body: the output: value, or NULL */
	bool bad_header;           /* params/inputs unreadable: its uses are not checked */
	bool bad;                  /* any mistake in it: instances are skipped silently */
	int nuse, capuse;          /* the blocks its body uses, for the recursion check */
	int *use;
	mlc_loc *use_loc;
	unsigned char mark;
	int stackpos, next_use;
};

/* One expanded instance of a block, for the notes that follow its errors. */
typedef struct {
	const char *name;  /* full name: "bottleneck2", "stage.1.inner" */
	const fe_block *block;
	mlc_loc loc;       /* the instance's op key */
	int parent;        /* the instance whose body holds it, or -1 */
	bool frozen;       /* it or an enclosing instance says trainable: false */
	double lr_mult;    /* the instance layer's lr_mult: its body's parameters get it too */
} fe_inst;

/* Where names are looked up: the model, a block instance's body, or a block
 * definition being checked. */
struct fe_scope {
	const char *prefix;   /* of full names: "" or "bottleneck1." */
	fe_names names;       /* local name → fe.lay index */
	int inst;             /* the instance being expanded, or -1 */
	const fe_block *def;  /* checking this block's definition: nothing is expanded */
	int depth;            /* instance nesting */
	int lo;               /* its names live in fe.lay[lo, ...): inputs/ports first */
	int first;            /* its layers start here */
};

/* A layer's weight and its layer's l1/l2 (regularize.c). */
typedef struct {
	mlc_node *p;
	double l1, l2;
} fe_weight;

struct fe {
	mlc_diag *d;
	mlc_arena *tmp;     /* the spec tree and scratch; freed after loading */
	mlc_model *m;
	mlc_graph *g;
	const char *file;   /* graph-arena copy of the path: every node loc points here */
	const char *dir;    /* the spec's folder with a trailing '/', or "" */
	fe_layer *lay;
	int nlay, caplay, ninputs;
	fe_scope top;       /* the model's names: inputs and top-level layers */
	mlc_node *output;   /* the model's output; NULL if missing or failed */
	fe_block *blocks;
	int nblocks;
	fe_names block_names;
	fe_inst *inst;
	int ninst, capinst;
	int noted;          /* errors so far that need no more instance notes */
	int64_t expanded;   /* layers created by instantiating blocks */
	/* the last instance whose arguments gave errors: its repeated copies
	 * (same op key, same arguments) are skipped rather than reported again */
	mlc_loc failed_loc;
	const yt_node *failed_args;
	bool too_big;       /* the expansion limit was reported */
	int depth;          /* 0: the model; 1: a distillation teacher it loads */
	const yt_node *loss_map; /* the loss: mapping, for the keys of its type (distillation) */
	fe_weight *weights; /* every layer weight, in f->tmp (regularize.c) */
	int nweights, capweights;
};

/* schema.c: reading typed values, with located errors naming the key. */
typedef struct {
	double lo, hi;
	bool lo_open, hi_open;
} fe_range;
extern const fe_range FE_ANY, FE_POSITIVE, FE_UNIT; /* (-inf,inf), (0,inf), [0,1) */

const char *fe_show(fe *f, const yt_node *v); /* "'abc'", "a list", "nothing", ... */
const char *fe_join(fe *f, const char *const *names); /* "a, b, c" */
/* Reports every key of m not in `allowed` ("unknown key 'x' <where>"). */
bool fe_check_keys(fe *f, const yt_node *m, const char *const *allowed, const char *where);
void fe_unknown_key(fe *f, const yt_node *k, const char *const *allowed, const char *where);
/* Did an unknown key of m look like a typo of `key` (one of `allowed`)? Then
 * "missing 'key'" would only repeat the did-you-mean already given. */
bool fe_misspelled(const yt_node *m, const char *key, const char *const *allowed);
/* A key of a configuration mapping and what reads its value (NULL: read elsewhere). */
typedef struct {
	const char *key;
	void (*read)(fe *f, void *ctx, const yt_node *v);
} fe_key;
/* Reads mapping m in the order it is written, so errors come out in file
 * order; keys not in `keys` (ends with {NULL}) are reported as unknown. */
bool fe_read_keys(fe *f, const yt_node *m, const fe_key *keys, void *ctx, const char *where);
bool fe_expect_map(fe *f, const yt_node *v, const char *what, const char *example);
bool fe_int(fe *f, const yt_node *v, const char *what, int64_t lo, int64_t hi, int64_t *out);
bool fe_num(fe *f, const yt_node *v, const char *what, fe_range r, double *out);
bool fe_bool(fe *f, const yt_node *v, const char *what, bool *out);
const char *fe_str(fe *f, const yt_node *v, const char *what);
bool fe_is_ident(const char *s, size_t len);
/* A name being defined; `what` says for what: "a layer", "an input". */
const char *fe_ident(fe *f, const yt_node *v, const char *what);
/* Index of v's name in `names` (NULL-terminated), or -1 after "unknown <noun> 'x'". */
int fe_enum(fe *f, const yt_node *v, const char *what, const char *noun, const char *const *names);
/* mlc_suggest, skipped once the error report is full (it costs time on huge specs). */
const char *fe_suggest(fe *f, const char *word, const char *const *cands);
mlc_loc fe_mloc(fe *f, mlc_loc loc); /* the same place, pointing at the model's copy of the path */

void fe_names_put(fe_names *t, const char *name, int idx);
int fe_names_get(const fe_names *t, const char *name); /* -1 if absent */
void fe_names_free(fe_names *t);

/* layers.c: the layer table and reading layer items. */
const fe_kind *fe_kind_find(fe *f, const char *name); /* a layer op or a block */
extern const fe_kind fe_kind_port;                    /* a block's input inside an instance */
fe_layer *fe_new_layer(fe *f);
/* Sets a layer's local name and its full name in scope sc. */
void fe_set_name(fe *f, const fe_scope *sc, fe_layer *l, const char *local);
/* Reads one layer: `item` is its mapping or shorthand string; in graph form
 * `key` is the node's key (its name) and input/inputs are read. Values that
 * use block parameters ($name) are skipped: they are checked where the
 * parameter is given. */
void fe_parse_layer(fe *f, fe_layer *l, const yt_node *item, const yt_node *key);
void fe_default_names(fe *f, fe_scope *sc);
bool fe_claim_name(fe *f, fe_scope *sc, int idx); /* registers lay[idx]'s name; false on a duplicate */
void fe_build_layer(fe *f, fe_layer *l, mlc_node *const *in);
/* trainable: false on the layer or on a block instance around it. */
bool fe_frozen(const fe *f, const fe_layer *l);

/* init.c: init: and bias_init: values. */
fe_init fe_init_default(bool bias);
/* A name or {type: NAME, ...}; false after reporting an error. */
bool fe_read_init(fe *f, const yt_node *v, bool bias, fe_init *out);
/* Sets param p's scale, center and spread (p's fans already set); p may be NULL. */
void fe_init_apply(mlc_node *p, const fe_init *in);

/* build.c: what each layer op emits. */
/* A new node of layer `layer` at loc with attributes `attr` (NULL: the op's
 * defaults), its shape inferred; NULL when the shape rule reported an error. */
mlc_node *fe_emit(fe *f, const char *layer, mlc_loc loc, mlc_opcode op, const mlc_attrs *attr,
		  int nsrc, mlc_node *const *src);
/* Sets a numeric attribute by its ops.def schema name. */
void fe_attr_set(mlc_opcode op, mlc_attrs *a, const char *name, double v);
/* An optional number (v NULL or null: keep the default) into the op attribute `attr`. */
bool fe_arg_number(fe *f, fe_layer *l, const yt_node *v, const char *attr, fe_range r);
mlc_node *fe_build_dense(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_conv2d(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_pool(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_global_pool(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_batchnorm(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_dropout(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_concat(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_op(fe *f, fe_layer *l, mlc_node *const *in);    /* exactly one op node */
mlc_node *fe_build_alias(fe *f, fe_layer *l, mlc_node *const *in); /* its input, no node */

/* prim.c: the primitive layer ops (add, mul, exp, sum, reshape, slice, ...). */
bool fe_arg_operand(fe *f, fe_layer *l, const yt_node *v);  /* add: 1 */
bool fe_arg_exponent(fe *f, fe_layer *l, const yt_node *v); /* pow: 2 */
bool fe_arg_shape(fe *f, fe_layer *l, const yt_node *v);    /* reshape: [N, 28, 28, 1] */
extern const fe_attr fe_clamp_keys[], fe_reduce_keys[], fe_slice_keys[], fe_normal_keys[], fe_uniform_keys[];
/* How many inputs layer l reads: its kind's arity, 1 for a binary op given a number. */
int fe_arity(const fe_layer *l);
mlc_node *fe_build_binary(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_clamp(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_slice(fe *f, fe_layer *l, mlc_node *const *in);
mlc_node *fe_build_noise(fe *f, fe_layer *l, mlc_node *const *in); /* random_normal, random_uniform */

/* wiring.c: the two ways of connecting layers, in a scope. */
void fe_wire(fe *f, fe_layer *l, int src); /* l reads lay[src] (-1: nothing) */
void fe_sequential(fe *f, const yt_node *v, mlc_loc key);
void fe_graph(fe *f, const yt_node *v, mlc_loc key, const yt_node *output);
/* Checks that a body (`layers:` list or `graph:` mapping) has the right shape. */
bool fe_body_ok(fe *f, const yt_node *v, bool graph_form, mlc_loc key);
/* Parses, names and wires the items of a body in scope sc, reports cycles,
 * and expands the block instances among them (not when checking a
 * definition). A `layers:` body's first layer reads `in`. Returns the index
 * of the body's output layer, or -1. */
int fe_scope_run(fe *f, fe_scope *sc, const yt_node *body, bool graph_form, const yt_node *output,
		 int in);

/* blocks.c: `blocks:` definitions and their instances. */
void fe_blocks(fe *f, const yt_node *v, mlc_loc key);
bool fe_is_ref(const yt_node *v);  /* a plain `$name` scalar */
bool fe_has_ref(const yt_node *v); /* v or anything inside it is one */
/* Reports `$name` references in a layer item that are not parameters of b
 * (all of them when b is NULL: outside blocks), or that stand for wiring. */
void fe_check_refs(fe *f, const yt_node *item, const fe_block *b);
/* Records that block sc->def uses the block of lay[idx] (recursion check). */
void fe_block_use(fe *f, const fe_scope *sc, int idx);
/* Expands the block instance lay[idx] of scope sc: its body becomes layers. */
void fe_expand(fe *f, fe_scope *sc, int idx);
/* Counts n more layers made from blocks; false after reporting (once) that
 * there are too many. */
bool fe_budget(fe *f, int64_t n, mlc_loc loc, int inst);
/* After errors reported while handling instance `inst` (-1: none), notes
 * "in instance 'x' of block 'b'" for it and each enclosing instance. */
void fe_note_instances(fe *f, int inst);

/* config.c: loss, optimizer and data sections. */
void fe_loss(fe *f, const yt_node *v, mlc_loc key);
void fe_optimizer(fe *f, const yt_node *v, mlc_loc key);
/* regularize.c: `l1:`/`l2:` of a layer; a layer's weight; then, after the
 * loss, the penalties (and `regularization:`, v may be NULL) added to it. */
void fe_layer_penalty(fe *f, fe_layer *l, const yt_node *k, const yt_node *v);
void fe_note_weight(fe *f, fe_layer *l, mlc_node *p);
void fe_penalties(fe *f, const yt_node *v, mlc_loc key);
/* loss_sum.c: `loss:` as a list, Σ weight·loss (each built by fe_loss). */
void fe_loss_list(fe *f, const yt_node *v, mlc_loc key);
void fe_data(fe *f, const yt_node *v, mlc_loc key);
/* data_feed.c: data.inputs into c->feeds; then, once the whole data: section
 * is read, that every input is fed and every IDX file is read. */
void fe_data_inputs(fe *f, const yt_node *v, mlc_data_cfg *c);
void fe_data_feeds_check(fe *f, mlc_data_cfg *c);
/* A file path (what: its key) relative to the spec's folder; false after an error. */
bool fe_read_path(fe *f, const yt_node *v, const char *what, mlc_path *out);
void fe_metrics(fe *f, const yt_node *v, mlc_loc key);
/* distill.c: loss type distillation (its loss_fn in config.c's table). */
mlc_node *fe_loss_distill(fe *f, const char *name, mlc_opcode op, const mlc_attrs *a, mlc_loc loc,
			  mlc_node **pred);
extern const char *const fe_distill_keys[]; /* its keys besides type */
/* the "labels" input of the loss, shared by a list of losses (config.c) */
mlc_node *fe_labels(fe *f, mlc_dtype t, int rank, const int64_t *dim, mlc_loc loc);
mlc_node *fe_scaled(mlc_graph *g, const mlc_node *from, mlc_node *x, double factor); /* scale(x), of from's layer */
mlc_status fe_load_teacher(fe *f, const char *path, mlc_model **out); /* a spec, one level down */
/* init_from.c: the init_from: key. */
void fe_init_from(fe *f, const yt_node *v, mlc_loc key);
void fe_checkpoint(fe *f, const yt_node *v, mlc_loc key); /* checkpoint.c */

#endif
