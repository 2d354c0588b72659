/* fe.h — internals shared by the frontend's files: the loading context, the
 * layer table's shape, and the typed readers that turn spec-tree values into
 * C values (or located errors). */
#ifndef MLC_FE_H
#define MLC_FE_H

#include "frontend.h"
#include "yaml_tree.h"

typedef struct fe fe;
typedef struct fe_layer fe_layer;

/* Parses one value of a layer (the op key's argument or an attribute) into
 * the layer's args; false after reporting an error. v is NULL for the
 * argument of the shorthand form ("- relu"). */
typedef bool (*fe_attr_fn)(fe *f, fe_layer *l, const yt_node *v);

typedef struct {
	const char *key;
	fe_attr_fn parse;
} fe_attr;

/* One row of the layer table (layers.c). */
typedef struct {
	const char *name;      /* the op key in the spec */
	mlc_opcode op;         /* its op node (dense: the matmul); attribute defaults come from it */
	int arity;             /* how many inputs it reads */
	fe_attr_fn primary;    /* parses the op key's value */
	const fe_attr *attrs;  /* its other keys; ends with {NULL} */
	/* emits the layer's nodes reading `in`; its result, or NULL after an error */
	mlc_node *(*build)(fe *f, fe_layer *l, mlc_node *const *in);
} fe_kind;

/* What a layer's keys said; defaults come from the table and the op schema. */
typedef struct {
	int64_t units;
	mlc_opcode act;    /* dense: the activation op, OP_COUNT for none */
	bool bias;
	const char *init;  /* dense: weight initializer name */
	mlc_attrs attr;    /* attributes of the result node (alpha, slope, ste) */
} fe_args;

/* A named value of the spec: a model input (kind NULL) or a layer. Inputs
 * come first in fe.lay, then layers in the order they are written. */
struct fe_layer {
	const char *name;     /* in the graph arena; NULL until default names are given */
	mlc_loc name_loc;     /* where the name was written, if it was */
	const fe_kind *kind;
	mlc_loc loc;          /* the op key (an input: its key) */
	fe_args args;
	const yt_node *inputs_key;   /* graph form: its input/inputs key */
	int nsrc;                    /* graph form: the inputs it names */
	const yt_node *src_node[2];
	int src[2];                  /* their indices in fe.lay, once resolved */
	bool bad;          /* its own spec is wrong: never built */
	mlc_node *out;     /* its result once built; NULL if it or an input failed */
	unsigned char mark; /* topological sort: 0 new, 1 on the stack, 2 done */
	bool in_cycle;      /* already named in a reported cycle */
	int stackpos, next_src;
};

/* A string → index table (open addressing) for names: inputs and layers. */
typedef struct {
	const char **key;
	int *idx;
	size_t cap, n;
} fe_names;

struct fe {
	mlc_diag *d;
	mlc_arena *tmp;     /* the spec tree and scratch; freed after loading */
	mlc_model *m;
	mlc_graph *g;
	const char *file;   /* graph-arena copy of the path: every node loc points here */
	const char *dir;    /* the spec's folder with a trailing '/', or "" */
	fe_layer *lay;
	int nlay, caplay, ninputs;
	fe_names names;
	mlc_node *output;   /* the model's output; NULL if missing or failed */
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

/* layers.c */
const fe_kind *fe_kind_find(const char *name);
fe_layer *fe_new_layer(fe *f);
/* Reads one layer: `item` is its mapping or shorthand string; in graph form
 * `key` is the node's key (its name) and input/inputs are read. */
void fe_parse_layer(fe *f, fe_layer *l, const yt_node *item, const yt_node *key);
void fe_default_names(fe *f, int first);
bool fe_claim_name(fe *f, int idx); /* registers lay[idx]'s name; false on a duplicate */
void fe_build_layer(fe *f, fe_layer *l, mlc_node *const *in);
/* A new node of layer `layer` at loc with attributes `attr` (NULL: the op's
 * defaults), its shape inferred; NULL when the shape rule reported an error. */
mlc_node *fe_emit(fe *f, const char *layer, mlc_loc loc, mlc_opcode op, const mlc_attrs *attr,
		  int nsrc, mlc_node *const *src);

/* wiring.c: the two ways of connecting layers. */
void fe_sequential(fe *f, const yt_node *v, mlc_loc key);
void fe_graph(fe *f, const yt_node *v, mlc_loc key, const yt_node *output);

/* config.c: loss, optimizer and data sections. */
void fe_loss(fe *f, const yt_node *v, mlc_loc key);
void fe_optimizer(fe *f, const yt_node *v, mlc_loc key);
void fe_data(fe *f, const yt_node *v, mlc_loc key);

#endif
