/* yaml_tree.h — the spec tree: YAML read through libyaml's event API into
 * scalars, lists and mappings that each remember where they were written.
 * The tree is plain data in an arena; it knows nothing about the spec schema. */
#ifndef MLC_YAML_TREE_H
#define MLC_YAML_TREE_H

#include "../ir/base.h"

enum {
	YT_MAX_DEPTH = 64,                /* deeper nesting is rejected, not recursed into */
	YT_MAX_BYTES = 16 * 1024 * 1024,  /* larger specs are rejected before parsing */
};

typedef enum { YT_SCALAR, YT_SEQ, YT_MAP } yt_kind;

typedef struct yt_node yt_node;
struct yt_node {
	yt_kind kind;
	mlc_loc loc;      /* 1-based; for a mapping key, where the key is written */
	/* scalar */
	const char *str;  /* NUL-terminated copy of the value */
	size_t len;       /* may exceed strlen(str) if the value holds "\0" escapes */
	bool quoted;      /* written quoted, as a block scalar, or with a tag: never null/number/bool */
	/* sequence: val[0..n); mapping: key[i] → val[i], keys are scalars, no duplicates */
	int n;
	yt_node **key;
	yt_node **val;
};

/* Parses `text` (named `file` in locations; the pointer is stored, not copied)
 * into nodes allocated from `a`. Every problem is reported to d. Returns the
 * root, or NULL when the text holds no document or could not be parsed
 * (*fatal tells which). Duplicate mapping keys are reported but not fatal:
 * the first occurrence is kept. */
yt_node *yt_parse(const char *file, const char *text, size_t len, mlc_arena *a, mlc_diag *d,
		  bool *fatal);

/* A plain empty, "~" or "null" scalar: YAML's null. */
bool yt_is_null(const yt_node *n);
/* The value for `key` in mapping m (NULL if absent or m is not a mapping);
 * *keyloc gets the key's location when found and keyloc is not NULL. */
const yt_node *yt_get(const yt_node *m, const char *key, mlc_loc *keyloc);

#endif
