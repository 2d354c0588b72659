/* yaml_tree.c — builds the spec tree from libyaml events. The event API is
 * used (not the document API) so that aliases are never expanded (a "billion
 * laughs" spec costs nothing), nesting is bounded before anything recurses,
 * and every key keeps its own location. */
#include "yaml_tree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* One open list or mapping; children are gathered in malloc'd arrays and
 * moved into the arena when it closes. */
typedef struct {
	yt_node *node;
	yt_node **key, **val;
	int n, cap;
	yt_node *pending; /* mapping: the key waiting for its value */
	bool have_key;    /* mapping: the next child is a value */
	bool drop;        /* mapping: the pending key was rejected; drop its value too */
} frame;

typedef struct {
	const char *file, *text;
	size_t len;
	mlc_arena *a;
	mlc_diag *d;
	frame stack[YT_MAX_DEPTH];
	int depth;
	yt_node *root;
	bool fatal; /* the tree is incomplete: don't hand it out */
	bool done;  /* stop reading events */
	bool alias_seen; /* one error for anchors and aliases, however many a YAML bomb has */
	int ndocs;
} builder;

static mlc_loc loc_of_mark(const builder *b, yaml_mark_t m)
{
	return (mlc_loc){b->file, (int)m.line + 1, (int)m.column + 1};
}

/* Reader errors carry a byte offset instead of a mark; columns count
 * characters, like libyaml's marks, so count UTF-8 lead bytes. */
static mlc_loc loc_of_offset(const builder *b, size_t off)
{
	int line = 1, col = 1;
	for (size_t i = 0; i < off && i < b->len; i++) {
		unsigned char c = (unsigned char)b->text[i];
		if (c == '\n') {
			line++;
			col = 1;
		} else if ((c & 0xC0) != 0x80) {
			col++;
		}
	}
	return (mlc_loc){b->file, line, col};
}

static yt_node *new_node(builder *b, yt_kind kind, yaml_mark_t m)
{
	yt_node *n = mlc_arena_alloc(b->a, sizeof *n);
	n->kind = kind;
	n->loc = loc_of_mark(b, m);
	return n;
}

static void push_child(frame *f, yt_node *k, yt_node *v)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 8;
		f->key = mlc_xrealloc(f->key, sizeof(yt_node *) * (size_t)f->cap);
		f->val = mlc_xrealloc(f->val, sizeof(yt_node *) * (size_t)f->cap);
	}
	f->key[f->n] = k;
	f->val[f->n] = v;
	f->n++;
}

static const char *kind_name(yt_kind k)
{
	return k == YT_SEQ ? "a list" : k == YT_MAP ? "a mapping" : "a scalar";
}

/* Attaches a finished node to the open container (or makes it the root). */
static void add_child(builder *b, yt_node *n)
{
	if (b->depth == 0) {
		b->root = n;
		return;
	}
	frame *f = &b->stack[b->depth - 1];
	if (f->node->kind == YT_SEQ) {
		push_child(f, NULL, n);
	} else if (!f->have_key) {
		f->have_key = true;
		f->pending = n;
		f->drop = n->kind != YT_SCALAR || strlen(n->str) != n->len;
		if (n->kind != YT_SCALAR)
			mlc_error_at(b->d, n->loc, "a mapping key must be a plain name, not %s",
				     kind_name(n->kind));
		else if (f->drop)
			mlc_error_at(b->d, n->loc, "a mapping key must not contain NUL characters");
	} else {
		f->have_key = false;
		if (!f->drop)
			push_child(f, f->pending, n);
	}
}

typedef struct {
	const yt_node *k;
	int i;
} keyref;

static int cmp_keyref(const void *pa, const void *pb)
{
	const keyref *a = pa, *b = pb;
	if (a->k->len != b->k->len)
		return a->k->len < b->k->len ? -1 : 1;
	int c = memcmp(a->k->str, b->k->str, a->k->len);
	return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* Reports repeated keys (at the repeat, with a note at the first) and removes
 * the repeats. Sorting keeps this O(n log n) for huge generated mappings. */
static void dedupe_keys(builder *b, frame *f)
{
	if (f->n < 2)
		return;
	keyref *r = mlc_xmalloc(sizeof *r * (size_t)f->n);
	int *first = mlc_xmalloc(sizeof *first * (size_t)f->n);
	for (int i = 0; i < f->n; i++) {
		r[i] = (keyref){f->key[i], i};
		first[i] = -1;
	}
	qsort(r, (size_t)f->n, sizeof *r, cmp_keyref);
	for (int i = 1; i < f->n; i++)
		if (r[i].k->len == r[i - 1].k->len && memcmp(r[i].k->str, r[i - 1].k->str, r[i].k->len) == 0)
			first[r[i].i] = first[r[i - 1].i] >= 0 ? first[r[i - 1].i] : r[i - 1].i;
	int kept = 0;
	for (int i = 0; i < f->n; i++) {
		if (first[i] < 0) {
			f->key[kept] = f->key[i];
			f->val[kept] = f->val[i];
			kept++;
			continue;
		}
		const yt_node *k = f->key[i], *k0 = f->key[first[i]];
		mlc_error_at(b->d, k->loc, "duplicate key '%s'", k->str);
		mlc_note_at(b->d, k0->loc, "'%s' was first given here", k0->str);
	}
	f->n = kept;
	free(r);
	free(first);
}

static void close_container(builder *b)
{
	frame *f = &b->stack[--b->depth];
	yt_node *n = f->node;
	if (n->kind == YT_MAP)
		dedupe_keys(b, f);
	n->n = f->n;
	if (f->n) {
		size_t sz = sizeof(yt_node *) * (size_t)f->n;
		n->val = memcpy(mlc_arena_alloc(b->a, sz), f->val, sz);
		if (n->kind == YT_MAP)
			n->key = memcpy(mlc_arena_alloc(b->a, sz), f->key, sz);
	}
	free(f->key);
	free(f->val);
	memset(f, 0, sizeof *f);
	add_child(b, n);
}

static void reject_alias(builder *b, yaml_mark_t m)
{
	if (!b->alias_seen)
		mlc_error_at(b->d, loc_of_mark(b, m), "anchors and aliases are not supported");
	b->alias_seen = b->fatal = true;
}

static void reject_anchor(builder *b, const yaml_char_t *anchor, yaml_mark_t m)
{
	if (anchor)
		reject_alias(b, m);
}

static void reject_tag(builder *b, const yaml_char_t *tag, int implicit, yaml_mark_t m)
{
	if (!tag || implicit)
		return;
	mlc_error_at(b->d, loc_of_mark(b, m), "YAML tags such as '%s' are not supported",
		     (const char *)tag);
}

static void open_container(builder *b, yt_kind kind, yaml_mark_t m)
{
	if (b->depth == YT_MAX_DEPTH) {
		mlc_error_at(b->d, loc_of_mark(b, m), "the spec is nested more than %d levels deep",
			     YT_MAX_DEPTH);
		b->fatal = b->done = true;
		return;
	}
	frame *f = &b->stack[b->depth++];
	memset(f, 0, sizeof *f);
	f->node = new_node(b, kind, m);
}

static void on_event(builder *b, const yaml_event_t *e)
{
	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->ndocs > 1) {
			mlc_error_at(b->d, loc_of_mark(b, e->start_mark),
				     "a spec is a single YAML document; a second one starts here");
			b->fatal = b->done = true;
		}
		break;
	case YAML_SCALAR_EVENT: {
		reject_anchor(b, e->data.scalar.anchor, e->start_mark);
		reject_tag(b, e->data.scalar.tag,
			   e->data.scalar.plain_implicit || e->data.scalar.quoted_implicit, e->start_mark);
		yt_node *n = new_node(b, YT_SCALAR, e->start_mark);
		n->len = e->data.scalar.length;
		n->str = mlc_arena_strndup(b->a, (const char *)e->data.scalar.value, n->len);
		n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !e->data.scalar.plain_implicit;
		add_child(b, n);
		break;
	}
	case YAML_ALIAS_EVENT: {
		reject_alias(b, e->start_mark);
		/* a null stand-in keeps the mapping's key/value pairing intact */
		yt_node *n = new_node(b, YT_SCALAR, e->start_mark);
		n->str = "";
		add_child(b, n);
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
		reject_anchor(b, e->data.sequence_start.anchor, e->start_mark);
		reject_tag(b, e->data.sequence_start.tag, e->data.sequence_start.implicit, e->start_mark);
		open_container(b, YT_SEQ, e->start_mark);
		break;
	case YAML_MAPPING_START_EVENT:
		reject_anchor(b, e->data.mapping_start.anchor, e->start_mark);
		reject_tag(b, e->data.mapping_start.tag, e->data.mapping_start.implicit, e->start_mark);
		open_container(b, YT_MAP, e->start_mark);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		close_container(b);
		break;
	case YAML_STREAM_END_EVENT:
		b->done = true;
		break;
	default:
		break;
	}
}

static void syntax_error(builder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "malformed YAML";
	if (p->error == YAML_MEMORY_ERROR) {
		mlc_error_file(b->d, b->file, "out of memory while reading YAML");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		mlc_loc loc = loc_of_offset(b, p->problem_offset);
		if (p->problem_value >= 0)
			mlc_error_at(b->d, loc, "%s (0x%X)", problem, (unsigned)p->problem_value);
		else
			mlc_error_at(b->d, loc, "%s", problem);
		return;
	}
	mlc_loc loc = loc_of_mark(b, p->problem_mark);
	if (!p->context) {
		mlc_error_at(b->d, loc, "%s", problem);
		return;
	}
	mlc_error_at(b->d, loc, "%s (%s)", problem, p->context);
	/* the unclosed bracket or quote is usually what needs fixing */
	if (p->context_mark.line != p->problem_mark.line)
		mlc_note_at(b->d, loc_of_mark(b, p->context_mark), "%s that starts here", p->context);
}

yt_node *yt_parse(const char *file, const char *text, size_t len, mlc_arena *a, mlc_diag *d,
		  bool *fatal)
{
	builder b = {.file = file, .text = text, .len = len, .a = a, .d = d};
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		mlc_die(__FILE__, __LINE__, "cannot initialize libyaml");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	/* Locations index the text as given; don't let a BOM switch to UTF-16. */
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!b.done) {
		yaml_event_t e;
		if (!yaml_parser_parse(&p, &e)) {
			syntax_error(&b, &p);
			b.fatal = true;
			break;
		}
		on_event(&b, &e);
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	for (int i = 0; i < b.depth; i++) {
		free(b.stack[i].key);
		free(b.stack[i].val);
	}
	*fatal = b.fatal;
	return b.fatal ? NULL : b.root;
}

bool yt_is_null(const yt_node *n)
{
	if (n->kind != YT_SCALAR || n->quoted)
		return false;
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	for (size_t i = 0; i < MLC_COUNTOF(nulls); i++)
		if (strcmp(n->str, nulls[i]) == 0)
			return true;
	return false;
}

const yt_node *yt_get(const yt_node *m, const char *key, mlc_loc *keyloc)
{
	if (!m || m->kind != YT_MAP)
		return NULL;
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->key[i]->str, key) == 0) {
			if (keyloc)
				*keyloc = m->key[i]->loc;
			return m->val[i];
		}
	return NULL;
}
