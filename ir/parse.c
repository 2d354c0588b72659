/* parse.c — reads the IR text form (docs/ir.md) back into a graph: a
 * hand-written, line-oriented recursive descent. It accepts exactly what
 * print.c writes (plus free spacing and comments), restores ids, names,
 * attributes, types, plans and spec locations, and re-runs each op's shape rule
 * so a hand-edited type cannot lie. Errors are located in the IR text; a bad
 * line is reported and skipped, and values it defined are "poisoned" so their
 * users stay quiet instead of cascading. */
#include "ir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Value numbers are indexes of per-pass arrays (sized next_id): keep them sane. */
enum { MAX_ID = 1 << 24 };

/* ---- a small hash table: values by name or number, interned strings, ids ---- */

typedef struct {
	bool used;
	const char *name; /* NULL: keyed by id */
	int id;
	mlc_node *node;   /* NULL: defined by a line with errors (poisoned) */
	mlc_loc at;       /* where it was defined */
} sym;

typedef struct {
	sym *slot;
	size_t cap, n;
} symtab;

static uint64_t sym_hash(const char *name, int id)
{
	uint64_t h = 1469598103934665603u;
	if (name)
		for (const unsigned char *s = (const unsigned char *)name; *s; s++)
			h = (h ^ *s) * 1099511628211u;
	else
		h = (h ^ (uint32_t)id) * 0x9e3779b97f4a7c15u;
	return h ^ (h >> 29);
}

static sym *sym_slot(const symtab *t, const char *name, int id)
{
	size_t mask = t->cap - 1;
	for (size_t i = sym_hash(name, id) & mask;; i = (i + 1) & mask) {
		sym *s = &t->slot[i];
		if (!s->used)
			return s;
		if (name ? s->name && strcmp(s->name, name) == 0 : !s->name && s->id == id)
			return s;
	}
}

static sym *sym_find(const symtab *t, const char *name, int id)
{
	if (!t->cap)
		return NULL;
	sym *s = sym_slot(t, name, id);
	return s->used ? s : NULL;
}

static sym *sym_add(symtab *t, const char *name, int id)
{
	if (2 * (t->n + 1) > t->cap) {
		symtab bigger = {mlc_xmalloc(sizeof(sym) * (t->cap ? 2 * t->cap : 64)), t->cap ? 2 * t->cap : 64, t->n};
		for (size_t i = 0; i < t->cap; i++)
			if (t->slot[i].used)
				*sym_slot(&bigger, t->slot[i].name, t->slot[i].id) = t->slot[i];
		free(t->slot);
		*t = bigger;
	}
	sym *s = sym_slot(t, name, id);
	MLC_ASSERT(!s->used);
	*s = (sym){.used = true, .name = name, .id = id};
	t->n++;
	return s;
}

/* ---- the parser state and lexical helpers ---- */

/* A value reference as written: %3, %x.w or %"odd name". */
typedef struct {
	const char *pos;
	int len;
	const char *name; /* NULL for a number */
	int id;
} ref;


typedef struct {
	const char *file;
	mlc_diag *d;
	mlc_graph *g;
	const char *end, *next;    /* of the text; start of the next line */
	const char *bol, *eol, *p; /* the current line and the cursor in it */
	int line;
	mlc_loc header;            /* the "graph" keyword */
	symtab vals, strs;
	bool planned, any_node, closed;
	/* an open "fused %root {" block: its header and first member's index */
	bool in_group;
	ref group_root;
	mlc_loc group_at;
	int group_first;
	char got[48];
} parser;

/* Everything on a node line after "%v =". */
typedef struct {
	mlc_opcode op;
	const char *op_pos, *type_pos;
	int nsrc;
	mlc_node *src[MLC_MAX_SRC];
	const char *src_pos[MLC_MAX_SRC];
	int src_len[MLC_MAX_SRC];
	bool bad, poisoned; /* an error was reported / an operand was poisoned */
	mlc_attrs attr;
	mlc_dtype dtype;
	int rank; /* -1 for "?" */
	int64_t dim[MLC_MAX_RANK];
	mlc_mem mem;
	int64_t offset;
	const char *layer;
	mlc_loc loc;
} nodeline;

static mlc_loc here(const parser *P, const char *pos)
{
	return (mlc_loc){P->file, P->line, (int)(pos - P->bol) + 1};
}

static void err(parser *P, const char *pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(parser *P, const char *pos, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mlc_error_at(P->d, here(P, pos), "%s", msg);
}

static bool next_line(parser *P)
{
	if (P->next > P->end || (P->next == P->end && P->line > 0))
		return false;
	P->bol = P->p = P->next;
	P->line++;
	const char *nl = memchr(P->bol, '\n', (size_t)(P->end - P->bol));
	P->eol = nl ? nl : P->end;
	P->next = P->eol + 1;
	if (P->eol > P->bol && P->eol[-1] == '\r')
		P->eol--;
	return true;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_ws(parser *P)
{
	while (P->p < P->eol && is_ws(*P->p))
		P->p++;
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.';
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool plain_char(char c)
{
	unsigned char u = (unsigned char)c;
	return u > ' ' && u != 0x7f && c != '"' && c != '\\' && c != '@';
}

static bool at(const parser *P, char c)
{
	return P->p < P->eol && *P->p == c;
}

/* Scans [A-Za-z0-9_.]* and returns its length. */
static int scan_word(parser *P)
{
	const char *s = P->p;
	while (P->p < P->eol && word_char(*P->p))
		P->p++;
	return (int)(P->p - s);
}

/* The next token, quoted, for "expected X, got Y" messages. */
static const char *got(parser *P)
{
	const char *s = P->p;
	if (s >= P->eol)
		return "end of line";
	unsigned char c = (unsigned char)*s;
	if (word_char(*s)) {
		int n = 0;
		while (s + n < P->eol && word_char(s[n]))
			n++;
		if (n > 24)
			snprintf(P->got, sizeof P->got, "'%.24s...'", s);
		else
			snprintf(P->got, sizeof P->got, "'%.*s'", n, s);
	} else if (c > ' ' && c < 0x7f)
		snprintf(P->got, sizeof P->got, "'%c'", c);
	else
		snprintf(P->got, sizeof P->got, "byte 0x%02x", c);
	return P->got;
}

/* A keyword must stand alone: "ret" matches "ret x" but not "retx". */
static bool keyword(parser *P, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(P->eol - P->p) < n || memcmp(P->p, kw, n) != 0)
		return false;
	if (P->p + n < P->eol && word_char(P->p[n]))
		return false;
	P->p += n;
	return true;
}

/* Whatever follows must be blank or a comment. */
static bool expect_eol(parser *P)
{
	skip_ws(P);
	if (P->p < P->eol && *P->p != '#') {
		err(P, P->p, "unexpected %s at the end of the line", got(P));
		return false;
	}
	return true;
}

static bool eat(parser *P, char c)
{
	skip_ws(P);
	if (!at(P, c))
		return false;
	P->p++;
	skip_ws(P);
	return true;
}

/* Digits into a non-negative int64; false (unreported) on none, ERANGE if too big. */
static bool scan_count(parser *P, int64_t *v, bool *range)
{
	*range = false;
	if (!(P->p < P->eol && digit(*P->p)))
		return false;
	int64_t x = 0;
	for (; P->p < P->eol && digit(*P->p); P->p++) {
		int k = *P->p - '0';
		if (x > (INT64_MAX - k) / 10)
			*range = true;
		else
			x = 10 * x + k;
	}
	*v = x;
	return true;
}

static int hexval(char c)
{
	return digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "..." with \" \\ \n \t \r \xHH, into the graph arena. With report false a
 * malformed string is silently refused (used inside comments). */
static bool parse_quoted(parser *P, const char **out, bool report)
{
	const char *start = P->p++;
	char *buf = mlc_arena_alloc(P->g->arena, (size_t)(P->eol - P->p) + 1);
	size_t n = 0;
	while (P->p < P->eol && *P->p != '"') {
		char c = *P->p++;
		if (c != '\\') {
			buf[n++] = c;
			continue;
		}
		if (P->p == P->eol)
			break;
		char e = *P->p++;
		switch (e) {
		case '"':
		case '\\': buf[n++] = e; break;
		case 'n': buf[n++] = '\n'; break;
		case 't': buf[n++] = '\t'; break;
		case 'r': buf[n++] = '\r'; break;
		case 'x': {
			int hi = P->p < P->eol ? hexval(P->p[0]) : -1;
			int lo = P->p + 1 < P->eol ? hexval(P->p[1]) : -1;
			if (hi < 0 || lo < 0 || hi + lo == 0) {
				if (report)
					err(P, P->p - 2, "'\\x' needs two hex digits, not 00");
				return false;
			}
			buf[n++] = (char)(16 * hi + lo);
			P->p += 2;
			break;
		}
		default:
			if (report) {
				if ((unsigned char)e > ' ' && (unsigned char)e < 0x7f)
					err(P, P->p - 2, "unknown escape '\\%c' in a string", e);
				else
					err(P, P->p - 2, "unknown escape in a string");
			}
			return false;
		}
	}
	if (P->p >= P->eol) {
		if (report)
			err(P, start, "unterminated string");
		return false;
	}
	P->p++;
	buf[n] = 0;
	*out = buf;
	return true;
}

/* A bare word or a quoted string (graph names, result keys). */
static bool parse_word(parser *P, const char **out, const char *what)
{
	if (at(P, '"'))
		return parse_quoted(P, out, true);
	const char *s = P->p;
	int n = scan_word(P);
	if (!n) {
		err(P, s, "expected %s, got %s", what, got(P));
		return false;
	}
	*out = mlc_arena_strndup(P->g->arena, s, (size_t)n);
	return true;
}

static const char *intern(parser *P, const char *s)
{
	sym *e = sym_find(&P->strs, s, -1);
	return e ? e->name : sym_add(&P->strs, s, -1)->name;
}

static bool parse_ref(parser *P, ref *r)
{
	*r = (ref){.pos = P->p, .id = -1};
	if (!at(P, '%')) {
		err(P, P->p, "expected a value like %%3 or %%x, got %s", got(P));
		return false;
	}
	P->p++;
	if (at(P, '"')) {
		if (!parse_quoted(P, &r->name, true))
			return false;
		if (!*r->name) {
			err(P, r->pos, "a value name cannot be empty");
			return false;
		}
	} else {
		const char *s = P->p;
		int n = scan_word(P);
		if (!n) {
			err(P, r->pos, "expected a value name or number after '%%'");
			return false;
		}
		bool num = true;
		for (int i = 0; i < n; i++)
			num &= digit(s[i]);
		if (!num)
			r->name = mlc_arena_strndup(P->g->arena, s, (size_t)n);
		else {
			int64_t v = 0;
			for (int i = 0; i < n && v < MAX_ID; i++)
				v = 10 * v + (s[i] - '0');
			if (v >= MAX_ID) {
				err(P, r->pos, "value number %.*s is too large (the limit is %d)", n, s, MAX_ID - 1);
				return false;
			}
			r->id = (int)v;
		}
	}
	r->len = (int)(P->p - r->pos);
	return true;
}

/* ---- node lines ---- */

static bool parse_operands(parser *P, nodeline *nl)
{
	P->p++;
	skip_ws(P);
	if (eat(P, ')'))
		return true;
	for (;;) {
		ref r;
		if (!parse_ref(P, &r))
			return false;
		sym *s = sym_find(&P->vals, r.name, r.id);
		if (!s) {
			err(P, r.pos, "undefined value %.*s", r.len, r.pos);
			nl->bad = true;
		} else if (!s->node)
			nl->poisoned = true;
		if (nl->nsrc < MLC_MAX_SRC) {
			nl->src[nl->nsrc] = s ? s->node : NULL;
			nl->src_pos[nl->nsrc] = r.pos;
			nl->src_len[nl->nsrc] = r.len;
		}
		nl->nsrc++;
		if (eat(P, ','))
			continue;
		if (eat(P, ')'))
			return true;
		err(P, P->p, "expected ',' or ')' after an operand, got %s", got(P));
		return false;
	}
}

static bool set_attr(parser *P, nodeline *nl, const mlc_attrdesc *a, const char *vpos, const char *text,
		     bool quoted)
{
	const char *op = mlc_ops[nl->op].name;
	if (a->kind == 's') {
		nl->attr.s = text;
		return true;
	}
	char *end = NULL;
	errno = 0;
	if (a->kind == 'i') {
		long long v = quoted ? 0 : strtoll(text, &end, 10);
		if (quoted || !*text || *end || errno == ERANGE) {
			err(P, vpos, "attribute '%s' of %s expects an integer, got '%s'", a->name, op, text);
			return false;
		}
		nl->attr.i[a->slot] = v;
	} else {
		double v = quoted ? 0 : strtod(text, &end);
		if (quoted || !*text || *end) {
			err(P, vpos, "attribute '%s' of %s expects a number, got '%s'", a->name, op, text);
			return false;
		}
		nl->attr.f[a->slot] = v;
	}
	return true;
}

static bool parse_attrs(parser *P, nodeline *nl)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int na = mlc_op_attrs(nl->op, desc, (int)MLC_COUNTOF(desc));
	MLC_ASSERT(na <= (int)MLC_COUNTOF(desc));
	const char *names[MLC_COUNTOF(desc) + 1];
	for (int i = 0; i < na; i++)
		names[i] = desc[i].name;
	names[na] = NULL;
	bool seen[MLC_COUNTOF(desc)] = {0};
	P->p++;
	if (eat(P, '}'))
		return true;
	for (;;) {
		const char *apos = P->p;
		int n = scan_word(P);
		if (!n) {
			err(P, apos, "expected an attribute name, got %s", got(P));
			return false;
		}
		char name[64];
		snprintf(name, sizeof name, "%.*s", n, apos);
		if (!eat(P, '=')) {
			err(P, P->p, "expected '=' after attribute '%s', got %s", name, got(P));
			return false;
		}
		const char *vpos = P->p, *text;
		bool quoted = at(P, '"');
		if (quoted) {
			if (!parse_quoted(P, &text, true))
				return false;
		} else {
			while (P->p < P->eol && (word_char(*P->p) || *P->p == '+' || *P->p == '-'))
				P->p++;
			if (P->p == vpos) {
				err(P, vpos, "expected a value for attribute '%s', got %s", name, got(P));
				return false;
			}
			text = mlc_arena_strndup(P->g->arena, vpos, (size_t)(P->p - vpos));
		}
		int k = 0;
		while (k < na && strcmp(names[k], name) != 0)
			k++;
		if (k == na) {
			const char *s = mlc_suggest(name, names);
			err(P, apos, "%s has no attribute '%s'%s%s%s", mlc_ops[nl->op].name, name,
			    s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
			nl->bad = true;
		} else if (seen[k]) {
			err(P, apos, "attribute '%s' is given twice", name);
			nl->bad = true;
		} else {
			seen[k] = true;
			nl->bad |= !set_attr(P, nl, &desc[k], vpos, text, quoted);
		}
		if (eat(P, ','))
			continue;
		if (eat(P, '}'))
			return true;
		err(P, P->p, "expected ',' or '}' after an attribute, got %s", got(P));
		return false;
	}
}

/* "?" or f32[N,784]. */
static bool parse_type(parser *P, nodeline *nl)
{
	nl->type_pos = P->p;
	if (at(P, '?')) {
		P->p++;
		nl->rank = -1;
		return true;
	}
	const char *s = P->p;
	int n = scan_word(P);
	if (!n) {
		err(P, s, "expected a type like f32[N,784] or '?', got %s", got(P));
		return false;
	}
	if (n == 3 && memcmp(s, "f32", 3) == 0)
		nl->dtype = DT_F32;
	else if (n == 3 && memcmp(s, "i32", 3) == 0)
		nl->dtype = DT_I32;
	else {
		static const char *const dtypes[] = {"f32", "i32", NULL};
		char word[64];
		snprintf(word, sizeof word, "%.*s", n, s);
		const char *sug = mlc_suggest(word, dtypes);
		err(P, s, "unknown element type '%s'%s%s%s", word, sug ? "; did you mean '" : "",
		    sug ? sug : "", sug ? "'?" : "");
		return false;
	}
	if (!at(P, '[')) {
		err(P, P->p, "expected '[' after the element type, got %s", got(P));
		return false;
	}
	P->p++;
	nl->rank = 0;
	if (at(P, ']')) {
		P->p++;
		return true;
	}
	for (;;) {
		const char *dpos = P->p;
		int64_t v = 0;
		bool range = false;
		if (at(P, 'N') && !(P->p + 1 < P->eol && word_char(P->p[1]))) {
			P->p++;
			v = MLC_BATCH;
		} else if (!scan_count(P, &v, &range) || (P->p < P->eol && word_char(*P->p))) {
			P->p = dpos;
			err(P, dpos, "expected a dimension (a number or N), got %s", got(P));
			return false;
		} else if (range) {
			err(P, dpos, "dimension %.*s is too large", (int)(P->p - dpos), dpos);
			return false;
		}
		if (nl->rank == MLC_MAX_RANK) {
			err(P, dpos, "a type has at most %d dimensions", MLC_MAX_RANK);
			return false;
		}
		nl->dim[nl->rank++] = v;
		if (at(P, ',')) {
			P->p++;
			continue;
		}
		if (at(P, ']')) {
			P->p++;
			return true;
		}
		err(P, P->p, "expected ',' or ']' in the type, got %s", got(P));
		return false;
	}
}

/* "@act+OFFSET" or "@param+OFFSET". */
static bool parse_mem(parser *P, nodeline *nl)
{
	const char *s = P->p++;
	int64_t off = 0;
	bool range = false;
	if (keyword(P, "act"))
		nl->mem = MEM_ACT;
	else if (keyword(P, "param"))
		nl->mem = MEM_PARAM;
	if (nl->mem == MEM_NONE || !at(P, '+') || (P->p++, !scan_count(P, &off, &range))) {
		err(P, s, "expected a memory slot like @act+128 or @param+0");
		return false;
	}
	if (range) {
		err(P, s, "memory offset is too large");
		return false;
	}
	nl->offset = off;
	if (!P->planned) {
		err(P, s, "memory slot without a 'plan' line before the nodes");
		nl->bad = true;
	}
	return true;
}

/* A layer or file name in the location comment: plain bytes or a string. */
static bool comment_token(parser *P, const char **out)
{
	if (at(P, '"'))
		return parse_quoted(P, out, false);
	const char *s = P->p;
	while (P->p < P->eol && plain_char(*P->p))
		P->p++;
	if (P->p == s)
		return false;
	*out = mlc_arena_strndup(P->g->arena, s, (size_t)(P->p - s));
	return true;
}

/* Digits that fit an int, for line and column numbers. */
static bool comment_int(parser *P, int *v)
{
	int64_t x;
	bool range;
	if (!scan_count(P, &x, &range) || range || x > 0x7fffffff)
		return false;
	*v = (int)x;
	return true;
}

/* "# [LAYER] [@ FILE:LINE:COL]" sets the provenance; any other comment is
 * ignored. The file token may itself hold ':' so it is split from the right. */
static void parse_prov(parser *P, nodeline *nl)
{
	const char *layer = NULL, *file = NULL;
	int line = 0, col = 0;
	P->p++;
	skip_ws(P);
	if (P->p == P->eol)
		goto ignore;
	if (!at(P, '@')) {
		if (!comment_token(P, &layer) || (P->p < P->eol && !is_ws(*P->p)))
			goto ignore;
		skip_ws(P);
		if (P->p == P->eol)
			goto done;
		if (!at(P, '@'))
			goto ignore;
	}
	P->p++;
	if (!(P->p < P->eol && is_ws(*P->p)))
		goto ignore;
	skip_ws(P);
	if (at(P, '"')) {
		if (!parse_quoted(P, &file, false) || !at(P, ':'))
			goto ignore;
		P->p++;
		if (!comment_int(P, &line) || !at(P, ':'))
			goto ignore;
		P->p++;
		if (!comment_int(P, &col))
			goto ignore;
	} else {
		const char *s = P->p, *c1 = NULL, *c2 = NULL;
		while (P->p < P->eol && !is_ws(*P->p)) {
			if (*P->p == ':') {
				c1 = c2;
				c2 = P->p;
			}
			P->p++;
		}
		const char *e = P->p;
		if (!c1 || c1 == s)
			goto ignore;
		for (const char *q = s; q < c1; q++)
			if (!plain_char(*q))
				goto ignore;
		P->p = c1 + 1;
		if (!comment_int(P, &line) || P->p != c2)
			goto ignore;
		P->p++;
		if (!comment_int(P, &col) || P->p != e)
			goto ignore;
		file = mlc_arena_strndup(P->g->arena, s, (size_t)(c1 - s));
	}
	skip_ws(P);
	if (P->p != P->eol)
		goto ignore;
done:
	nl->layer = layer ? intern(P, layer) : NULL;
	if (file)
		nl->loc = (mlc_loc){intern(P, file), line, col};
ignore:
	P->p = P->eol;
}

/* Everything after "%v": false after a syntax error (already reported). */
static bool parse_node_rest(parser *P, const ref *def, nodeline *nl)
{
	if (!eat(P, '=')) {
		err(P, P->p, "expected '=' after %.*s, got %s", def->len, def->pos, got(P));
		return false;
	}
	nl->op_pos = P->p;
	int n = scan_word(P);
	if (!n) {
		err(P, nl->op_pos, "expected an op name, got %s", got(P));
		return false;
	}
	char name[64];
	snprintf(name, sizeof name, "%.*s", n, nl->op_pos);
	nl->op = mlc_op_lookup(name);
	if (nl->op == OP_COUNT) {
		const char *names[OP_COUNT + 1];
		for (int i = 0; i < OP_COUNT; i++)
			names[i] = mlc_ops[i].name;
		names[OP_COUNT] = NULL;
		const char *s = mlc_suggest(name, names);
		err(P, nl->op_pos, "unknown op '%s'%s%s%s", name, s ? "; did you mean '" : "", s ? s : "",
		    s ? "'?" : "");
		return false;
	}
	mlc_attrs_default(nl->op, &nl->attr, P->g->arena);
	skip_ws(P);
	if (at(P, '(') && !parse_operands(P, nl))
		return false;
	int arity = mlc_ops[nl->op].arity;
	if (nl->nsrc != arity) {
		err(P, nl->op_pos, "%s takes %d operand%s, got %d", name, arity, arity == 1 ? "" : "s",
		    nl->nsrc);
		nl->bad = true;
	}
	skip_ws(P);
	if (at(P, '{') && !parse_attrs(P, nl))
		return false;
	if (!eat(P, ':')) {
		err(P, P->p, "expected ':' and a type, got %s", got(P));
		return false;
	}
	if (!parse_type(P, nl))
		return false;
	skip_ws(P);
	if (at(P, '@') && !parse_mem(P, nl))
		return false;
	skip_ws(P);
	if (at(P, '#'))
		parse_prov(P, nl);
	if (P->p < P->eol) {
		err(P, P->p, "unexpected %s at the end of the line", got(P));
		return false;
	}
	return true;
}

static bool same_type(const mlc_node *n, const nodeline *nl)
{
	return n->dtype == nl->dtype && n->rank == nl->rank &&
	       memcmp(n->dim, nl->dim, sizeof(int64_t) * (size_t)nl->rank) == 0;
}

/* Makes the node and checks its written type against the op's shape rule,
 * with the IR position as the node's location while the rule may complain.
 * NULL when the rule fails (the value is then poisoned). */
static mlc_node *build_node(parser *P, const ref *def, const nodeline *nl)
{
	mlc_node *n = mlc_node_new(P->g, nl->op, nl->nsrc, nl->src, (mlc_loc){0});
	n->id = def->name ? -1 : def->id;
	n->name = def->name;
	n->attr = nl->attr;
	n->layer = nl->layer;
	n->mem = nl->mem;
	n->offset = nl->offset;
	char a[96], b[96];
	bool ok = true;
	if (mlc_ops[nl->op].fclass == FC_SOURCE) {
		n->dtype = nl->dtype;
		n->rank = nl->rank;
		memcpy(n->dim, nl->dim, sizeof n->dim);
		n->loc = here(P, nl->type_pos);
		ok = mlc_ops[nl->op].shape(n, P->d);
	} else if (nl->rank >= 0) {
		for (int k = 0; k < n->nsrc && ok; k++)
			if (n->src[k]->rank < 0) {
				err(P, nl->src_pos[k], "operand %.*s has no type, so this one cannot be checked",
				    nl->src_len[k], nl->src_pos[k]);
				ok = false;
			}
		n->loc = here(P, nl->op_pos);
		if (ok && (ok = mlc_ops[nl->op].shape(n, P->d)) && !same_type(n, nl)) {
			mlc_node written = *n;
			written.dtype = nl->dtype;
			written.rank = nl->rank;
			memcpy(written.dim, nl->dim, sizeof written.dim);
			err(P, nl->type_pos, "type %s does not match %s, which %s gives",
			    mlc_type_str(&written, a, sizeof a), mlc_type_str(n, b, sizeof b), mlc_ops[n->op].name);
			*n = written; /* users are checked against what is written */
		}
	}
	n->loc = nl->loc;
	return ok ? n : NULL;
}

static void parse_node(parser *P)
{
	P->any_node = true;
	ref def;
	if (!parse_ref(P, &def))
		return;
	sym *prev = sym_find(&P->vals, def.name, def.id);
	if (prev) {
		err(P, def.pos, "%.*s is defined twice", def.len, def.pos);
		mlc_note_at(P->d, prev->at, "first defined here");
	}
	nodeline nl = {.rank = -1};
	bool ok = parse_node_rest(P, &def, &nl);
	if (prev)
		return;
	sym *s = sym_add(&P->vals, def.name, def.id);
	s->at = here(P, def.pos);
	s->node = ok && !nl.bad && !nl.poisoned ? build_node(P, &def, &nl) : NULL;
}

/* ---- other lines ---- */

static void parse_ret(parser *P)
{
	skip_ws(P);
	const char *kpos = P->p, *key;
	ref r;
	if (!parse_word(P, &key, "a result name after 'ret'"))
		return;
	if (!eat(P, '=')) {
		err(P, P->p, "expected '=' after the result name, got %s", got(P));
		return;
	}
	if (!parse_ref(P, &r) || !expect_eol(P))
		return;
	sym *s = sym_find(&P->vals, r.name, r.id);
	if (!s)
		err(P, r.pos, "undefined value %.*s", r.len, r.pos);
	else if (mlc_graph_find_ret(P->g, key))
		err(P, kpos, "result '%s' is returned twice", key);
	else if (s->node)
		mlc_graph_ret(P->g, key, s->node);
}

static bool plan_field(parser *P, const char *name, int64_t *v)
{
	skip_ws(P);
	const char *s = P->p;
	bool range;
	if (!keyword(P, name) || !at(P, '=') || (P->p++, !scan_count(P, v, &range))) {
		P->p = s;
		err(P, s, "expected '%s=' and a number, got %s", name, got(P));
		return false;
	}
	if (range) {
		err(P, s, "%s is too large", name);
		return false;
	}
	return true;
}

static void parse_plan(parser *P, const char *kw)
{
	if (P->any_node)
		err(P, kw, "the plan must come before the nodes");
	else if (P->planned)
		err(P, kw, "the plan is given twice");
	mlc_graph *g = P->g;
	int64_t mb, act, param, threads = 1;
	if (!plan_field(P, "max_batch", &mb) || !plan_field(P, "act", &act) ||
	    !plan_field(P, "param", &param))
		return;
	skip_ws(P);
	if (P->eol - P->p >= 7 && strncmp(P->p, "threads", 7) == 0) { /* optional: only when > 1 */
		const char *t = P->p;
		if (!plan_field(P, "threads", &threads))
			return;
		if (threads < 2 || threads > MLC_MAX_THREADS) {
			err(P, t, "threads must be from 2 to %d (1 is written by leaving it out)", MLC_MAX_THREADS);
			return;
		}
	}
	if (!expect_eol(P))
		return;
	if (!P->any_node && !P->planned) {
		g->max_batch = mb;
		g->act_size = act;
		g->param_size = param;
		g->threads = (int)threads;
		P->planned = true;
	}
}

/* "fused %ROOT {" opens a fusion group; its members follow, one a line,
 * and "}" closes it. The root must be the last member. */
static void parse_fused(parser *P, const char *kw)
{
	skip_ws(P);
	if (P->in_group) {
		err(P, kw, "fused blocks do not nest");
		return;
	}
	ref r;
	if (!parse_ref(P, &r))
		return;
	if (!eat(P, '{')) {
		err(P, P->p, "expected '{' after the fused kernel's root, got %s", got(P));
		return;
	}
	if (!expect_eol(P))
		return;
	P->in_group = true;
	P->group_root = r;
	P->group_at = here(P, kw);
	P->group_first = P->g->nnode;
}

static void close_fused(parser *P, const char *brace)
{
	mlc_graph *g = P->g;
	P->in_group = false;
	int first = P->group_first, count = g->nnode - first;
	const ref *r = &P->group_root;
	sym *s = sym_find(&P->vals, r->name, r->id);
	if (count < 2) {
		mlc_error_at(P->d, P->group_at, "a fused kernel needs at least two members");
		return;
	}
	mlc_node *root = g->node[g->nnode - 1];
	if (!s || s->node != root) {
		mlc_error_at(P->d, P->group_at, "%.*s is not the last member of this fused kernel",
			     r->len, r->pos);
		return;
	}
	(void)brace;
	for (int i = first; i < g->nnode; i++)
		g->node[i]->group = root;
}

static void parse_line(parser *P)
{
	skip_ws(P);
	const char *s = P->p;
	if (P->p == P->eol || at(P, '#'))
		return;
	if (P->closed)
		err(P, s, "unexpected %s after the end of the graph", got(P));
	else if (at(P, '%'))
		parse_node(P);
	else if (at(P, '}')) {
		P->p++;
		if (P->in_group)
			close_fused(P, s);
		else
			P->closed = true;
		expect_eol(P);
	} else if (keyword(P, "fused"))
		parse_fused(P, s);
	else if (P->in_group)
		err(P, s, "expected a member node or '}' of the fused kernel, got %s", got(P));
	else if (keyword(P, "ret"))
		parse_ret(P);
	else if (keyword(P, "plan"))
		parse_plan(P, s);
	else
		err(P, s, "expected a node (%%v = op ...), 'fused', 'ret', 'plan' or '}', got %s", got(P));
}

/* "graph NAME {" after any blank or comment lines. */
static bool parse_header(parser *P)
{
	for (;;) {
		if (!next_line(P)) {
			mlc_error_file(P->d, P->file, "no 'graph NAME {' line found");
			return false;
		}
		skip_ws(P);
		if (P->p < P->eol && *P->p != '#')
			break;
	}
	const char *name;
	P->header = here(P, P->p);
	if (!keyword(P, "graph")) {
		err(P, P->p, "expected 'graph NAME {', got %s", got(P));
		return false;
	}
	skip_ws(P);
	if (!parse_word(P, &name, "a graph name"))
		return false;
	if (!eat(P, '{')) {
		err(P, P->p, "expected '{' after the graph name, got %s", got(P));
		return false;
	}
	P->g->name = name;
	return expect_eol(P);
}

/* Numbered values keep their numbers; a named value takes the number after
 * its predecessor when free (which is what the builder gave it), else a fresh one. */
static void assign_ids(mlc_graph *g)
{
	symtab taken = {0};
	int next = 0;
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->id >= 0) {
			sym_add(&taken, NULL, g->node[i]->id);
			next = g->node[i]->id >= next ? g->node[i]->id + 1 : next;
		}
	int prev = -1, fresh = next;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->id < 0) {
			n->id = prev + 1;
			if (sym_find(&taken, NULL, n->id)) {
				while (sym_find(&taken, NULL, fresh))
					fresh++;
				n->id = fresh;
			}
			sym_add(&taken, NULL, n->id);
			next = n->id >= next ? n->id + 1 : next;
		}
		prev = n->id;
	}
	g->next_id = next;
	free(taken.slot);
}

mlc_status mlc_graph_parse(const char *file, const char *text, mlc_diag *d, mlc_graph **out)
{
	*out = NULL;
	size_t len = strlen(text);
	file = file ? file : "<ir>";
	mlc_diag_add_source(d, file, text, len);
	int before = mlc_diag_errors(d);
	parser P = {.file = file, .d = d, .g = mlc_graph_new(NULL), .end = text + len, .next = text};
	bool header = parse_header(&P);
	if (header) {
		while (next_line(&P))
			parse_line(&P);
		if (P.in_group)
			mlc_error_at(d, P.group_at, "fused kernel has no closing '}'");
		else if (!P.closed)
			mlc_error_at(d, P.header, "graph '%s' has no closing '}'", P.g->name);
	}
	free(P.vals.slot);
	free(P.strs.slot);
	if (!header || mlc_diag_errors(d) > before) {
		mlc_graph_free(P.g);
		return MLC_EUSER;
	}
	assign_ids(P.g);
	mlc_group_mark(P.g);
	*out = P.g;
	return MLC_OK;
}
