/* schema.c — typed reads of spec values: every reader either yields a C value
 * or reports one located error that names the key and shows what was written.
 * Also the name table used to resolve layer and input names. */
#include "fe.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const fe_range FE_ANY = {-INFINITY, INFINITY, true, true};
const fe_range FE_POSITIVE = {0, INFINITY, true, true};
const fe_range FE_UNIT = {0, 1, false, true};

/* Diagnostics stop printing after 100 errors; past that, skip the
 * edit-distance work too so a huge broken spec stays fast. */
enum { QUIET_AFTER = 100 };

const char *fe_suggest(fe *f, const char *word, const char *const *cands)
{
	if (mlc_diag_errors(f->d) >= QUIET_AFTER)
		return NULL;
	return mlc_suggest(word, cands);
}

mlc_loc fe_mloc(fe *f, mlc_loc loc)
{
	loc.file = f->m->path;
	return loc;
}

const char *fe_show(fe *f, const yt_node *v)
{
	if (!v || yt_is_null(v))
		return "nothing";
	if (v->kind != YT_SCALAR)
		return v->kind == YT_SEQ ? "a list" : "a mapping";
	/* one line of at most 40 bytes, cut on a UTF-8 character boundary */
	size_t n = 0;
	while (n < v->len && n < 40 && (unsigned char)v->str[n] >= 0x20)
		n++;
	bool cut = n < v->len;
	while (cut && n > 0 && ((unsigned char)v->str[n] & 0xC0) == 0x80)
		n--;
	return mlc_arena_printf(f->tmp, "%s'%.*s%s'", v->quoted ? "the string " : "", (int)n, v->str,
				cut ? "..." : "");
}

/* "a, b, c" */
const char *fe_join(fe *f, const char *const *names)
{
	size_t len = 1;
	for (const char *const *p = names; *p; p++)
		len += strlen(*p) + 2;
	char *s = mlc_arena_alloc(f->tmp, len), *w = s;
	for (const char *const *p = names; *p; p++)
		w += sprintf(w, "%s%s", p == names ? "" : ", ", *p);
	return s;
}

static bool listed(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(s, *names) == 0)
			return true;
	return false;
}

void fe_unknown_key(fe *f, const yt_node *k, const char *const *allowed, const char *where)
{
	const char *s = fe_suggest(f, k->str, allowed);
	if (s)
		mlc_error_at(f->d, k->loc, "unknown key '%s' %s; did you mean '%s'?", k->str, where, s);
	else
		mlc_error_at(f->d, k->loc, "unknown key '%s' %s; expected one of: %s", k->str, where,
			     fe_join(f, allowed));
}

bool fe_check_keys(fe *f, const yt_node *m, const char *const *allowed, const char *where)
{
	bool ok = true;
	for (int i = 0; m && m->kind == YT_MAP && i < m->n; i++)
		if (!listed(m->key[i]->str, allowed)) {
			fe_unknown_key(f, m->key[i], allowed, where);
			ok = false;
		}
	return ok;
}

bool fe_misspelled(const yt_node *m, const char *key, const char *const *allowed)
{
	for (int i = 0; m->kind == YT_MAP && i < m->n; i++) {
		const char *k = m->key[i]->str;
		if (!listed(k, allowed) && mlc_suggest(k, allowed) == key)
			return true;
	}
	return false;
}

bool fe_read_keys(fe *f, const yt_node *m, const fe_key *keys, void *ctx, const char *where)
{
	bool ok = true;
	int n = 0;
	while (keys[n].key)
		n++;
	const char **names = mlc_arena_alloc(f->tmp, sizeof *names * (size_t)(n + 1));
	for (int i = 0; i < n; i++)
		names[i] = keys[i].key;
	for (int i = 0; i < m->n; i++) {
		const fe_key *k = keys;
		while (k->key && strcmp(k->key, m->key[i]->str) != 0)
			k++;
		if (!k->key) {
			fe_unknown_key(f, m->key[i], names, where);
			ok = false;
		} else if (k->read) {
			k->read(f, ctx, m->val[i]);
		}
	}
	return ok;
}

bool fe_expect_map(fe *f, const yt_node *v, const char *what, const char *example)
{
	if (v->kind == YT_MAP)
		return true;
	mlc_error_at(f->d, v->loc, "expected a mapping for '%s' (e.g. %s), got %s", what, example,
		     fe_show(f, v));
	return false;
}

/* [-+]?[0-9]+ and nothing else; false on overflow too. */
static bool parse_int(const char *s, int64_t *out)
{
	const char *p = s + (*s == '-' || *s == '+');
	if (*p < '0' || *p > '9')
		return false;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	errno = 0;
	char *end;
	long long x = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

bool fe_int(fe *f, const yt_node *v, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
	int64_t x;
	if (v->kind == YT_SCALAR && !v->quoted && parse_int(v->str, &x) && x >= lo) {
		if (x > hi) {
			mlc_error_at(f->d, v->loc, "'%s' must be at most %lld, got %lld", what, (long long)hi,
				     (long long)x);
			return false;
		}
		*out = x;
		return true;
	}
	const char *kind = lo == 1 ? "a positive integer" : lo == 0 ? "a non-negative integer" : "an integer";
	mlc_error_at(f->d, v->loc, "expected %s for '%s', got %s", kind, what, fe_show(f, v));
	return false;
}

/* YAML 1.2 core-schema float syntax without .inf/.nan (both are rejected:
 * a non-finite hyperparameter is never what was meant). */
static bool parse_num(const char *s, double *out)
{
	const char *p = s + (*s == '-' || *s == '+');
	size_t digits = strspn(p, "0123456789");
	p += digits;
	if (*p == '.') {
		size_t frac = strspn(p + 1, "0123456789");
		p += 1 + frac;
		digits += frac;
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p += 1 + (p[1] == '-' || p[1] == '+');
		size_t ex = strspn(p, "0123456789");
		if (!ex)
			return false;
		p += ex;
	}
	if (*p)
		return false;
	*out = strtod(s, NULL);
	return isfinite(*out);
}

static bool in_range(double x, fe_range r)
{
	return (r.lo_open ? x > r.lo : x >= r.lo) && (r.hi_open ? x < r.hi : x <= r.hi);
}

static const char *range_desc(fe *f, fe_range r)
{
	if (isinf(r.lo) && isinf(r.hi))
		return "a number";
	if (r.lo == 0 && isinf(r.hi))
		return r.lo_open ? "a positive number" : "a non-negative number";
	return mlc_arena_printf(f->tmp, "a number in %c%g, %g%c", r.lo_open ? '(' : '[', r.lo, r.hi,
				r.hi_open ? ')' : ']');
}

bool fe_num(fe *f, const yt_node *v, const char *what, fe_range r, double *out)
{
	double x;
	if (v->kind == YT_SCALAR && !v->quoted && parse_num(v->str, &x) && in_range(x, r)) {
		*out = x;
		return true;
	}
	mlc_error_at(f->d, v->loc, "expected %s for '%s', got %s", range_desc(f, r), what, fe_show(f, v));
	return false;
}

bool fe_bool(fe *f, const yt_node *v, const char *what, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", NULL};
	static const char *const no[] = {"false", "False", "FALSE", NULL};
	if (v->kind == YT_SCALAR && !v->quoted && (listed(v->str, yes) || listed(v->str, no))) {
		*out = listed(v->str, yes);
		return true;
	}
	mlc_error_at(f->d, v->loc, "expected true or false for '%s', got %s", what, fe_show(f, v));
	return false;
}

const char *fe_str(fe *f, const yt_node *v, const char *what)
{
	if (v->kind != YT_SCALAR || yt_is_null(v)) {
		mlc_error_at(f->d, v->loc, "expected a string for '%s', got %s", what, fe_show(f, v));
		return NULL;
	}
	if (v->len == 0 || strlen(v->str) != v->len) {
		mlc_error_at(f->d, v->loc, "'%s' must be a non-empty string without NUL characters", what);
		return NULL;
	}
	return v->str;
}

bool fe_is_ident(const char *s, size_t len)
{
	if (len == 0 || strlen(s) != len || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

const char *fe_ident(fe *f, const yt_node *v, const char *what)
{
	if (v->kind != YT_SCALAR || yt_is_null(v)) {
		mlc_error_at(f->d, v->loc, "expected a name for %s, got %s", what, fe_show(f, v));
		return NULL;
	}
	if (!fe_is_ident(v->str, v->len)) {
		mlc_error_at(f->d, v->loc,
			     "invalid name %s for %s: use letters, digits and '_', not starting with a digit",
			     fe_show(f, v), what);
		return NULL;
	}
	return v->str;
}

int fe_enum(fe *f, const yt_node *v, const char *what, const char *noun, const char *const *names)
{
	if (v->kind != YT_SCALAR || yt_is_null(v)) {
		mlc_error_at(f->d, v->loc, "expected a name for '%s', got %s", what, fe_show(f, v));
		return -1;
	}
	for (int i = 0; names[i]; i++)
		if (strcmp(v->str, names[i]) == 0)
			return i;
	const char *s = fe_suggest(f, v->str, names);
	if (s)
		mlc_error_at(f->d, v->loc, "unknown %s %s; did you mean '%s'?", noun, fe_show(f, v), s);
	else
		mlc_error_at(f->d, v->loc, "unknown %s %s; expected one of: %s", noun, fe_show(f, v),
			     fe_join(f, names));
	return -1;
}

/* FNV-1a: names are short and few collide; this only needs to be cheap. */
static size_t hash(const char *s)
{
	size_t h = 14695981039346656037u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static size_t slot(const fe_names *t, const char *name)
{
	size_t i = hash(name) & (t->cap - 1);
	while (t->key[i] && strcmp(t->key[i], name) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

void fe_names_put(fe_names *t, const char *name, int idx)
{
	if (2 * (t->n + 1) > t->cap) {
		fe_names old = *t;
		t->cap = old.cap ? 2 * old.cap : 64;
		t->key = mlc_xmalloc(sizeof *t->key * t->cap);
		t->idx = mlc_xmalloc(sizeof *t->idx * t->cap);
		for (size_t i = 0; i < old.cap; i++)
			if (old.key[i]) {
				size_t s = slot(t, old.key[i]);
				t->key[s] = old.key[i];
				t->idx[s] = old.idx[i];
			}
		free(old.key);
		free(old.idx);
	}
	size_t s = slot(t, name);
	if (!t->key[s])
		t->n++;
	t->key[s] = name;
	t->idx[s] = idx;
}

int fe_names_get(const fe_names *t, const char *name)
{
	if (!t->cap)
		return -1;
	size_t s = slot(t, name);
	return t->key[s] ? t->idx[s] : -1;
}

void fe_names_free(fe_names *t)
{
	free(t->key);
	free(t->idx);
	memset(t, 0, sizeof *t);
}
