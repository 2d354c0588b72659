/* print.c — the IR text form (docs/ir.md): one live node a line with its type,
 * memory plan and spec location. parse.c reads back exactly what this writes,
 * so every choice here (quoting, float digits, what is omitted) has a twin there.
 * The printer must also survive broken graphs: it is what people dump when the
 * verifier complains. */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *buf;
	size_t len, cap;
} sbuf;

static void grow(sbuf *b, size_t need)
{
	while (b->cap - b->len < need)
		b->cap = b->cap ? 2 * b->cap : 4096;
	b->buf = mlc_xrealloc(b->buf, b->cap);
}

static void put_raw(sbuf *b, const char *s, size_t n)
{
	grow(b, n + 1);
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = 0;
}

static void put_s(sbuf *b, const char *s)
{
	put_raw(b, s, strlen(s));
}

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		MLC_ASSERT(n >= 0);
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		grow(b, (size_t)n + 1);
	}
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.';
}

/* Names, keys and string attributes go bare when made of [A-Za-z0-9_.]. */
static bool is_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!word_char(*s))
			return false;
	return true;
}

static bool all_digits(const char *s)
{
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Layers and file names in the location comment go bare unless they hold a
 * space, a control byte, a quote, a backslash or the '@' separator. */
static bool is_plain(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '@')
			return false;
	}
	return true;
}

static void put_quoted(sbuf *b, const char *s)
{
	put_s(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': put_s(b, "\\\""); break;
		case '\\': put_s(b, "\\\\"); break;
		case '\n': put_s(b, "\\n"); break;
		case '\t': put_s(b, "\\t"); break;
		case '\r': put_s(b, "\\r"); break;
		default:
			if (c < ' ' || c == 0x7f)
				put(b, "\\x%02x", c);
			else
				put_raw(b, (const char *)&c, 1);
		}
	}
	put_s(b, "\"");
}

static void put_word(sbuf *b, const char *s)
{
	if (is_word(s))
		put_s(b, s);
	else
		put_quoted(b, s);
}

static void put_plain(sbuf *b, const char *s)
{
	if (is_plain(s))
		put_s(b, s);
	else
		put_quoted(b, s);
}

/* %name, %"odd name" or %id. An all-digit name is quoted so it cannot be read
 * back as a value number. */
static void put_value(sbuf *b, const mlc_node *n)
{
	if (!n)
		put_s(b, "%<null>");
	else if (!n->name)
		put(b, "%%%d", n->id);
	else if (is_word(n->name) && !all_digits(n->name))
		put(b, "%%%s", n->name);
	else {
		put_s(b, "%");
		put_quoted(b, n->name);
	}
}

/* The shortest of %.15g/%.16g/%.17g that strtod reads back bit-exactly:
 * 0.1 stays "0.1", while a float widened to double keeps all its digits. */
static void put_double(sbuf *b, double v)
{
	char t[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(t, sizeof t, "%.*g", prec, v);
		double back = strtod(t, NULL);
		if (memcmp(&back, &v, sizeof v) == 0 || v != v)
			break;
	}
	put_s(b, t);
}

/* Attributes that differ from the schema default, in schema order. Defaults
 * come from the schema text so printing allocates nothing in the graph. */
static void put_attrs(sbuf *b, const mlc_node *n)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int na = mlc_op_attrs(n->op, desc, (int)MLC_COUNTOF(desc));
	MLC_ASSERT(na <= (int)MLC_COUNTOF(desc));
	bool first = true;
	for (int i = 0; i < na; i++) {
		const mlc_attrdesc *a = &desc[i];
		bool differs;
		if (a->kind == 'f') {
			double def = strtod(a->def, NULL);
			differs = memcmp(&def, &n->attr.f[a->slot], sizeof def) != 0;
		} else if (a->kind == 'i') {
			differs = n->attr.i[a->slot] != strtoll(a->def, NULL, 10);
		} else {
			/* NULL cannot be written; it reads back as the default */
			differs = n->attr.s && strcmp(n->attr.s, a->def) != 0;
		}
		if (!differs)
			continue;
		put(b, "%s%s=", first ? " {" : ", ", a->name);
		first = false;
		if (a->kind == 'f')
			put_double(b, n->attr.f[a->slot]);
		else if (a->kind == 'i')
			put(b, "%lld", (long long)n->attr.i[a->slot]);
		else
			put_word(b, n->attr.s);
	}
	if (!first)
		put_s(b, "}");
}

static void put_type(sbuf *b, const mlc_node *n)
{
	char t[160];
	if (n->rank < 0)
		put_s(b, "?");
	else if (n->rank > MLC_MAX_RANK)
		put(b, "<rank %d>", n->rank);
	else
		put_s(b, mlc_type_str(n, t, sizeof t));
}

static void put_node(sbuf *b, const mlc_node *n, bool planned)
{
	put_s(b, n->group ? "    " : "  ");
	put_value(b, n);
	if ((unsigned)n->op >= OP_COUNT) {
		put(b, " = <op %d>\n", (int)n->op);
		return;
	}
	put(b, " = %s", mlc_ops[n->op].name);
	if (n->nsrc > 0) {
		put_s(b, "(");
		for (int k = 0; k < n->nsrc && k < MLC_MAX_SRC; k++) {
			put_s(b, k ? ", " : "");
			put_value(b, n->src[k]);
		}
		put_s(b, ")");
	}
	put_attrs(b, n);
	put_s(b, " : ");
	put_type(b, n);
	if (planned && n->mem != MEM_NONE && !n->internal)
		put(b, " @%s+%lld", n->mem == MEM_PARAM ? "param" : "act", (long long)n->offset);
	if (n->layer || n->loc.file) {
		put_s(b, "  #");
		if (n->layer) {
			put_s(b, " ");
			put_plain(b, n->layer);
		}
		if (n->loc.file) {
			put_s(b, " @ ");
			put_plain(b, n->loc.file);
			put(b, ":%d:%d", n->loc.line, n->loc.col);
		}
	}
	put_s(b, "\n");
}

char *mlc_graph_print_str(const mlc_graph *g)
{
	sbuf b = {0};
	grow(&b, 1); /* so put() always has a buffer to print into */
	bool planned = g->act_size != 0 || g->param_size != 0;
	put(&b, "graph ");
	put_word(&b, g->name ? g->name : "model");
	put(&b, " {\n");
	if (planned)
	{
		put(&b, "  plan max_batch=%lld act=%lld param=%lld", (long long)g->max_batch,
		    (long long)g->act_size, (long long)g->param_size);
		if (g->threads > 1)
			put(&b, " threads=%d", g->threads);
		put(&b, "\n");
	}
	/* A fused kernel is a block "fused %root {...}" around its members; a
	 * group the verifier would reject still prints, member by member. */
	const mlc_node *open = NULL;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (!n || n->dead)
			continue;
		if (open && n->group != open) {
			put_s(&b, "  }\n");
			open = NULL;
		}
		if (n->group && !open) {
			open = n->group;
			put_s(&b, "  fused ");
			put_value(&b, open);
			put_s(&b, " {\n");
		}
		put_node(&b, n, planned);
	}
	if (open)
		put_s(&b, "  }\n");
	for (int i = 0; i < g->nret; i++) {
		put(&b, "  ret ");
		put_word(&b, g->ret[i].key ? g->ret[i].key : "<null>");
		put(&b, " = ");
		put_value(&b, g->ret[i].val);
		put(&b, "\n");
	}
	put(&b, "}\n");
	return b.buf;
}

void mlc_graph_print(const mlc_graph *g, FILE *out)
{
	char *s = mlc_graph_print_str(g);
	fputs(s, out);
	free(s);
}
