/* safetensors.c — reading and atomically writing F32 safetensors files. */
#include "runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

enum { MAX_RANK = 6, MAX_DEPTH = 64 };

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> 8 * i);
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Element count, or -1 if it does not fit 8-byte items in an int64/size_t. */
static int64_t count_of(int rank, const int64_t *dim)
{
	const int64_t max = (int64_t)(SIZE_MAX / 8 / 2);
	int64_t n = 1;
	for (int i = 0; i < rank; i++) {
		if (dim[i] && n > max / dim[i])
			return -1;
		n *= dim[i];
	}
	return n;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* `base` holds n structs of `stride` bytes whose first member is the name;
 * returns a name that occurs twice, or NULL. Sorting keeps it n log n. */
static const char *duplicate_name(const void *base, size_t stride, int n)
{
	const char *const **p = mlc_xmalloc(sizeof *p * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		p[i] = (const char *const *)((const char *)base + stride * (size_t)i);
	qsort(p, (size_t)n, sizeof *p, by_name);
	const char *dup = NULL;
	for (int i = 1; i < n && !dup; i++)
		if (strcmp(*p[i - 1], *p[i]) == 0)
			dup = *p[i];
	free(p);
	return dup;
}

/* ---- writing ---- */

static void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The JSON header, space-padded so the data starts 8-byte aligned. */
static char *build_header(const mlc_tensor *t, int n, const char *const *meta, size_t *len)
{
	char *buf;
	FILE *f = open_memstream(&buf, len);
	MLC_ASSERT(f);
	fputc('{', f);
	if (meta && meta[0]) {
		fputs("\"__metadata__\":{", f);
		for (int i = 0; meta[i]; i += 2) {
			MLC_ASSERT(meta[i + 1]);
			fputs(i ? "," : "", f);
			put_json_string(f, meta[i]);
			fputc(':', f);
			put_json_string(f, meta[i + 1]);
		}
		fputs(n ? "}," : "}", f);
	}
	int64_t off = 0;
	for (int i = 0; i < n; i++) {
		int64_t bytes = count_of(t[i].rank, t[i].dim) * 4;
		fputs(i ? "," : "", f);
		put_json_string(f, t[i].name);
		fputs(":{\"dtype\":\"F32\",\"shape\":[", f);
		for (int k = 0; k < t[i].rank; k++)
			fprintf(f, "%s%lld", k ? "," : "", (long long)t[i].dim[k]);
		fprintf(f, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + bytes));
		off += bytes;
	}
	fputc('}', f);
	while (ftell(f) % 8)
		fputc(' ', f);
	int rc = fclose(f);
	MLC_ASSERT(rc == 0);
	return buf;
}

/* Returns false when a write failed (the stream's error flag says so too). */
static bool write_contents(FILE *f, const char *hdr, size_t hlen, const mlc_tensor *t, int n)
{
	unsigned char lenbytes[8];
	for (int i = 0; i < 8; i++)
		lenbytes[i] = (unsigned char)((uint64_t)hlen >> 8 * i);
	if (fwrite(lenbytes, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen)
		return false;
	unsigned char buf[4096];
	for (int i = 0; i < n; i++) {
		int64_t count = count_of(t[i].rank, t[i].dim);
		for (int64_t j = 0; j < count;) {
			size_t k = 0;
			for (; k < sizeof buf && j < count; k += 4, j++) {
				uint32_t u;
				memcpy(&u, &t[i].data[j], 4);
				put_le32(buf + k, u);
			}
			if (fwrite(buf, 1, k, f) != k)
				return false;
		}
	}
	return true;
}

mlc_status mlc_safetensors_write(const char *path, const mlc_tensor *t, int n,
				 const char *const *meta, mlc_diag *d)
{
	MLC_ASSERT(n >= 0 && (t || n == 0));
	for (int i = 0; i < n; i++) {
		MLC_ASSERT(t[i].name && t[i].rank >= 0 && t[i].rank <= MAX_RANK);
		for (int k = 0; k < t[i].rank; k++)
			MLC_ASSERT(t[i].dim[k] >= 0);
		int64_t count = count_of(t[i].rank, t[i].dim);
		MLC_ASSERT(count >= 0 && (t[i].data || count == 0));
	}
	MLC_ASSERT(!duplicate_name(t, sizeof *t, n));

	size_t hlen;
	char *hdr = build_header(t, n, meta, &hlen);
	mlc_atomic a;
	mlc_status st = mlc_atomic_open(&a, path, d);
	if (st == MLC_OK) {
		write_contents(a.f, hdr, hlen, t, n); /* a failure shows in the commit */
		st = mlc_atomic_commit(&a, d);
	}
	free(hdr);
	return st;
}

/* ---- reading ---- */

/* A tensor as the header describes it; name first for duplicate_name. */
typedef struct {
	const char *name;
	int rank;
	int64_t dim[MAX_RANK];
	int64_t begin, end;
	const char *dtype;
	int size; /* bytes per element */
} entry;

typedef struct {
	const char *path;
	mlc_diag *d;
	json_t *root;
	int64_t data_len;
	bool any_dtype; /* other dtypes are read as names and shapes, without data */
	json_t *meta; /* the __metadata__ object, if any */
} reader;

/* safetensors' dtypes and their element sizes. */
static const struct {
	const char *name;
	int size;
} dtypes[] = {{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
	      {"I8", 1},   {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},    {"BOOL", 1}};

/* Its row of dtypes, or -1. */
static int dtype_index(const char *dtype)
{
	for (int i = 0; i < (int)MLC_COUNTOF(dtypes); i++)
		if (strcmp(dtypes[i].name, dtype) == 0)
			return i;
	return -1;
}

static bool bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool bad(reader *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mlc_error_file(r->d, r->path, "%s", msg);
	return false;
}

/* JSON integers only: 1.0 and "1" are not dimensions or offsets. */
static bool get_ints(json_t *n, int64_t *out, int max, int *count)
{
	if (!json_is_array(n))
		return false;
	size_t len = json_array_size(n);
	*count = len > (size_t)max ? max + 1 : (int)len;
	for (int i = 0; i < *count && i < max; i++) {
		json_t *x = json_array_get(n, (size_t)i);
		if (!json_is_integer(x))
			return false;
		out[i] = json_integer_value(x);
	}
	return true;
}

static bool parse_fields(reader *r, const char *name, json_t *v, json_t **f)
{
	static const char *const fields[] = {"dtype", "shape", "data_offsets", NULL};
	if (!json_is_object(v))
		return bad(r, "tensor '%s': expected an object with dtype, shape and data_offsets", name);
	const char *key;
	json_t *val;
	json_object_foreach(v, key, val) {
		int i = 0;
		while (fields[i] && strcmp(fields[i], key) != 0)
			i++;
		if (!fields[i]) {
			const char *hint = mlc_suggest(key, fields);
			return bad(r, "tensor '%s': unknown field '%s'%s%s%s", name, key,
				   hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
		}
		f[i] = val; /* a repeated field was refused by the parser */
	}
	for (int i = 0; fields[i]; i++)
		if (!f[i])
			return bad(r, "tensor '%s': missing field '%s'", name, fields[i]);
	return true;
}

static bool parse_entry(reader *r, const char *name, json_t *v, entry *e)
{
	json_t *f[3] = {0};
	if (!parse_fields(r, name, v, f))
		return false;
	const char *dtype = json_string_value(f[0]);
	if (!dtype)
		return bad(r, "tensor '%s': dtype must be a string", name);
	int dt = dtype_index(dtype);
	e->dtype = dt >= 0 ? dtypes[dt].name : NULL;
	e->size = dt == 0 || (dt > 0 && r->any_dtype) ? dtypes[dt].size : 0;
	if (!e->size && r->any_dtype)
		return bad(r, "tensor '%s' has an unknown dtype %s", name, dtype);
	if (!e->size)
		return bad(r, "tensor '%s' has dtype %s; only F32 is supported", name, dtype);
	if (!get_ints(f[1], e->dim, MAX_RANK, &e->rank))
		return bad(r, "tensor '%s': shape must be a list of integers", name);
	if (e->rank > MAX_RANK)
		return bad(r, "tensor '%s' has more than %d dimensions", name, MAX_RANK);
	for (int i = 0; i < e->rank; i++)
		if (e->dim[i] < 0)
			return bad(r, "tensor '%s' has a negative dimension %lld", name, (long long)e->dim[i]);
	int64_t off[2];
	int noff;
	if (!get_ints(f[2], off, 2, &noff) || noff != 2)
		return bad(r, "tensor '%s': data_offsets must be a list of two integers", name);
	e->begin = off[0];
	e->end = off[1];
	if (e->begin < 0 || e->end < e->begin || e->end > r->data_len)
		return bad(r, "tensor '%s': data_offsets [%lld, %lld] are not a range inside the %lld-byte data area",
			   name, (long long)e->begin, (long long)e->end, (long long)r->data_len);
	int64_t count = count_of(e->rank, e->dim);
	if (count < 0)
		return bad(r, "tensor '%s': shape is too large", name);
	if (e->end - e->begin != count * e->size)
		return bad(r, "tensor '%s': shape has %lld elements (%lld bytes) but data_offsets span %lld bytes",
			   name, (long long)count, (long long)count * e->size, (long long)(e->end - e->begin));
	return true;
}

static int by_offset(const void *a, const void *b)
{
	const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile the data area: no overlap, no gap, nothing left over. */
static bool check_layout(reader *r, entry *es, int n)
{
	const char *dup = duplicate_name(es, sizeof *es, n);
	if (dup)
		return bad(r, "tensor '%s' appears twice in the header", dup);
	entry **p = mlc_xmalloc(sizeof *p * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		p[i] = &es[i];
	qsort(p, (size_t)n, sizeof *p, by_offset);
	bool ok = true;
	int64_t pos = 0;
	for (int i = 0; i < n && ok; i++) {
		if (p[i]->begin < pos)
			ok = bad(r, "tensors '%s' and '%s' overlap in the data area", p[i - 1]->name, p[i]->name);
		else if (p[i]->begin > pos)
			ok = bad(r, "data bytes %lld to %lld belong to no tensor", (long long)pos, (long long)p[i]->begin);
		pos = p[i]->end;
	}
	if (ok && pos != r->data_len)
		ok = bad(r, "data bytes %lld to %lld belong to no tensor", (long long)pos, (long long)r->data_len);
	free(p);
	return ok;
}

/* A header needs three levels; jansson would go to 2048 by recursion:
 * refuse deep ones with a clear message before handing them over. */
static bool shallow(const unsigned char *s, size_t len)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (in_string && s[i] == '\\')
			i++; /* skip the escaped character */
		else if (in_string)
			in_string = s[i] != '"';
		else if (s[i] == '"')
			in_string = true;
		else if ((s[i] == '[' || s[i] == '{') && ++depth > MAX_DEPTH)
			return false;
		else if (s[i] == ']' || s[i] == '}')
			depth--;
	}
	return true;
}

/* Loads the one JSON object of the header; false (reported) otherwise.
 * JSON, not YAML: unquoted keys and single quotes are refused, and keys
 * may be of any length (libyaml limits a flow key to 1,024 characters). */
static bool load_header(reader *r, const unsigned char *hdr, size_t len)
{
	if (len == 0 || hdr[0] != '{')
		return bad(r, "header is not a JSON object");
	if (!shallow(hdr, len))
		return bad(r, "header nests deeper than %d levels", MAX_DEPTH);
	json_error_t err;
	r->root = json_loadb((const char *)hdr, len, JSON_REJECT_DUPLICATES, &err);
	if (r->root && json_is_object(r->root))
		return true;
	if (r->root)
		return bad(r, "header is not a JSON object");
	switch (json_error_code(&err)) {
	case json_error_end_of_input_expected:
		return bad(r, "unexpected text after the JSON header");
	case json_error_null_byte_in_key:
		return bad(r, "a tensor name contains a NUL character");
	default:
		return bad(r, "header is not valid JSON: %s (at byte %d of the header)", err.text, err.position);
	}
}

static bool parse_header(reader *r, entry **es, int *n)
{
	*es = mlc_xmalloc(sizeof **es * (json_object_size(r->root) + 1));
	*n = 0;
	const char *name;
	json_t *v;
	json_object_foreach(r->root, name, v) {
		if (strcmp(name, "__metadata__") == 0) {
			if (!json_is_object(v))
				return bad(r, "__metadata__ must be an object");
			r->meta = v;
			continue;
		}
		entry *e = &(*es)[(*n)++];
		e->name = name;
		if (!parse_entry(r, name, v, e))
			return false;
	}
	return check_layout(r, *es, *n);
}

static float get_f32(const unsigned char *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* The __metadata__ pairs as a NULL-terminated key, value list (one allocation). */
static bool copy_meta(reader *r, char ***out)
{
	size_t count = r->meta ? json_object_size(r->meta) : 0;
	size_t bytes = sizeof(char *) * (2 * count + 1);
	const char *key;
	json_t *v;
	if (r->meta)
		json_object_foreach(r->meta, key, v) {
			if (!json_is_string(v))
				return bad(r, "__metadata__ values must be strings");
			bytes += strlen(key) + json_string_length(v) + 2;
		}
	char **m = mlc_xmalloc(bytes), *at = (char *)(m + 2 * count + 1);
	int i = 0;
	if (r->meta)
		json_object_foreach(r->meta, key, v)
			for (int j = 0; j < 2; j++) {
				const char *x = j ? json_string_value(v) : key;
				size_t xl = j ? json_string_length(v) : strlen(key);
				m[i++] = at;
				memcpy(at, x, xl + 1);
				at += xl + 1;
			}
	m[i] = NULL;
	*out = m;
	return true;
}

static mlc_status read_file(const char *path, const char ***dtype, mlc_tensor **t, int *n, char ***meta,
			    mlc_diag *d)
{
	bool any_dtype = dtype != NULL;
	*t = NULL;
	*n = 0;
	if (meta)
		*meta = NULL;
	size_t len;
	unsigned char *buf = (unsigned char *)mlc_read_file_max(path, MLC_MAX_FILE_BYTES, &len);
	if (!buf && errno == EFBIG) {
		mlc_error_file(d, path, "larger than %zu GiB, the limit for a safetensors file",
			       MLC_MAX_FILE_BYTES >> 30);
		return MLC_EUSER;
	}
	if (!buf) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return MLC_EIO;
	}
	reader r = {path, d, NULL, 0, any_dtype, NULL};
	entry *es = NULL;
	int ne = 0;
	bool ok = false;
	uint64_t hlen = len >= 8 ? get_le64(buf) : 0;
	if (len < 8) {
		bad(&r, "truncated: the file is %zu bytes, too short for the 8-byte header length", len);
	} else if (hlen > len - 8) {
		bad(&r, "header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)hlen, len);
	} else {
		r.data_len = (int64_t)(len - 8 - hlen);
		ok = load_header(&r, buf + 8, hlen) && parse_header(&r, &es, &ne) &&
		     (!meta || copy_meta(&r, meta));
	}
	if (ok) {
		const unsigned char *data = buf + 8 + hlen;
		*t = mlc_xmalloc(sizeof **t * (size_t)(ne ? ne : 1));
		*n = ne;
		if (dtype)
			*dtype = mlc_xmalloc(sizeof **dtype * (size_t)(ne ? ne : 1));
		for (int i = 0; i < ne; i++) {
			mlc_tensor *o = &(*t)[i];
			int64_t count = (es[i].end - es[i].begin) / es[i].size;
			o->name = mlc_xstrdup(es[i].name);
			o->rank = es[i].rank;
			memcpy(o->dim, es[i].dim, sizeof o->dim);
			if (dtype)
				(*dtype)[i] = es[i].dtype;
			if (strcmp(es[i].dtype, "F32") != 0)
				continue; /* any_dtype: name and shape only */
			if (!(o->data = mlc_try_alloc(sizeof(float) * (size_t)count))) {
				mlc_error_file(d, path, "cannot read: out of memory holding tensor '%s' (%lld values)",
					       o->name, (long long)count);
				mlc_tensors_free(*t, i + 1);
				*t = NULL;
				*n = 0;
				if (dtype) {
					free(*dtype);
					*dtype = NULL;
				}
				if (meta) {
					free(*meta); /* one block (copy_meta) */
					*meta = NULL;
				}
				ok = false;
				break;
			}
			for (int64_t j = 0; j < count; j++)
				o->data[j] = get_f32(data + es[i].begin + 4 * j);
		}
	}
	free(es);
	json_decref(r.root); /* after es, whose names it holds */
	free(buf);
	return ok ? MLC_OK : MLC_EUSER;
}

mlc_status mlc_safetensors_read(const char *path, mlc_tensor **t, int *n, mlc_diag *d)
{
	return read_file(path, NULL, t, n, NULL, d);
}

mlc_status mlc_safetensors_read_any(const char *path, mlc_tensor **t, const char ***dtype, int *n,
				    mlc_diag *d)
{
	*dtype = NULL;
	return read_file(path, dtype, t, n, NULL, d);
}

void mlc_tensors_free(mlc_tensor *t, int n)
{
	for (int i = 0; t && i < n; i++) {
		free(t[i].name);
		free(t[i].data);
	}
	free(t);
}

mlc_status mlc_safetensors_read_meta(const char *path, mlc_tensor **t, int *n, char ***meta, mlc_diag *d)
{
	return read_file(path, NULL, t, n, meta, d);
}
