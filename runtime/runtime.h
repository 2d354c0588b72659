/* runtime.h — data sets, tensor files (safetensors), and the training loop. */
#ifndef MLC_RUNTIME_H
#define MLC_RUNTIME_H

#include "../ir/base.h"

#include <stdio.h>
/* Limits that keep a hostile or mistaken file from exhausting memory
 * (docs/spec.md#limits). */
#define MLC_MAX_FILE_BYTES ((size_t)16 << 30)  /* CSV, safetensors and IR text files, read whole */
#define MLC_MAX_IDX_VALUES ((int64_t)1 << 32)  /* items one IDX file declares (16 GiB as f32) */

/* A data set in memory: n samples of `dim` features, and `ydim` float
 * targets per sample (class indices are stored as floats, ydim = 1). The
 * features stay in the file's type — bytes for IDX and CIFAR-10, floats for
 * CSV — and are converted as a batch is gathered (runtime/batch.c), so a
 * data set costs its file's size, not four bytes a value. */
typedef struct {
	int64_t n, dim, ydim;
	float *x;          /* n * dim floats, or NULL when the features are bytes */
	unsigned char *xb; /* n * dim bytes (IDX, CIFAR-10), or NULL */
	float *y;          /* n * ydim; NULL for an images-only IDX file */
	int nclasses; /* 1 + the largest label when all labels are whole numbers >= 0, else 0 */
} mlc_dataset;

/* Feature i (sample i / dim, value i % dim) as a float, whatever its storage. */
static inline float mlc_dataset_x(const mlc_dataset *ds, int64_t i)
{
	return ds->xb ? (float)ds->xb[i] : ds->x[i];
}
/* Keeps samples [offset, offset + max) (max 0: all after offset); false if
 * offset leaves none. */
bool mlc_dataset_window(mlc_dataset *ds, int64_t offset, int64_t max);

/* IDX files (raw or gzip'd, detected from the content): images of any rank
 * (u8, kept as bytes) and a 1-D u8 label file with as many items (labels
 * NULL: images only, ydim 0). Errors name the file and what is wrong. */
mlc_status mlc_load_idx(const char *images, const char *labels, mlc_dataset *out, mlc_diag *d);
/* Whether a CSV's first row is a header: the order of data.header's values
 * (frontend/config.c: auto, true, false). */
typedef enum { MLC_HEADER_AUTO, MLC_HEADER_YES, MLC_HEADER_NO } mlc_csv_header;
/* CSV: numeric cells separated by commas; the first row is a header as
 * `header` says (auto: when no cell of it is a number; one that mixes
 * numbers and text is an error); the last `label_columns` cells of a row
 * are its targets (0: none, for a model whose loss reads an input as its
 * target). Errors give file:line:col. */
mlc_status mlc_load_csv(const char *path, int label_columns, mlc_csv_header header, mlc_dataset *out,
			mlc_diag *d);
/* CIFAR-10 binary files (data_batch_1.bin, ..., raw or gzip'd): records of a
 * label byte (0..9) and 32x32x3 pixel bytes stored as R, G and B planes,
 * loaded as NHWC bytes (unscaled) for a [32, 32, 3] input; the files are
 * concatenated in order. Errors name the file and what is wrong. */
mlc_status mlc_load_cifar(const char *const *paths, int npaths, mlc_dataset *out, mlc_diag *d);
void mlc_dataset_free(mlc_dataset *ds);

/* A file written atomically (runtime/atomic.c): write to `f`, then commit
 * (fflush, fsync, rename over `path`, fsync the folder) or abort. The temp
 * file `<path>.tmp.<pid>.<random>` is created exclusively (never through a
 * link); those of killed runs are removed. A `path` that exists and is not a
 * regular file (a link, device, FIFO, directory) is refused. On any failure
 * the temp file is removed, `path` is untouched, and "path: error: cannot
 * write: <reason>" is reported (MLC_EIO). */
typedef struct {
	FILE *f;
	const char *path;
	char *tmp;
} mlc_atomic;
mlc_status mlc_atomic_open(mlc_atomic *a, const char *path, mlc_diag *d);
mlc_status mlc_atomic_commit(mlc_atomic *a, mlc_diag *d);
void mlc_atomic_abort(mlc_atomic *a);

/* A named f32 tensor, as in a safetensors file. */
typedef struct {
	char *name;
	int rank;
	int64_t dim[6];
	float *data; /* owned; NULL for a tensor of another dtype (mlc_safetensors_read_any) */
} mlc_tensor;

/* Writes atomically: temp file in the same folder, fsync, rename. Tensors are
 * written in the order given; the header's __metadata__ holds `meta` pairs
 * (NULL-terminated key, value list; may be NULL). */
mlc_status mlc_safetensors_write(const char *path, const mlc_tensor *t, int n,
				 const char *const *meta, mlc_diag *d);
/* Reads F32 tensors (other dtypes are an error naming the tensor). */
mlc_status mlc_safetensors_read(const char *path, mlc_tensor **t, int *n, mlc_diag *d);
/* Also reads tensors of safetensors' other dtypes, as names and shapes
 * without data (init_from reports and skips them); (*dtype)[i] is tensor i's
 * ("F32", "I64", ...; static strings, the array is the caller's to free). */
mlc_status mlc_safetensors_read_any(const char *path, mlc_tensor **t, const char ***dtype, int *n,
				    mlc_diag *d);
/* The same, and the __metadata__ pairs as a NULL-terminated key, value list
 * (free(*meta) frees it all; values must be strings). */
mlc_status mlc_safetensors_read_meta(const char *path, mlc_tensor **t, int *n, char ***meta, mlc_diag *d);
void mlc_tensors_free(mlc_tensor *t, int n);

/* K-fold cross-validation's fold i of k (runtime/kfold.c): out gets the n
 * indices of perm with fold i — perm[n*i/k, n*(i+1)/k) — moved to the end;
 * returns its size. */
int64_t mlc_fold_order(const int64_t *perm, int64_t n, int k, int i, int64_t *out);

/* Deterministic PRNG (xoshiro256**), one per run; seeded explicitly. */
typedef struct { uint64_t s[4]; } mlc_rng;
void mlc_rng_seed(mlc_rng *r, uint64_t seed);
uint64_t mlc_rng_next(mlc_rng *r);
double mlc_rng_uniform(mlc_rng *r);   /* [0, 1) */
double mlc_rng_normal(mlc_rng *r);    /* N(0, 1) */
void mlc_rng_shuffle(mlc_rng *r, int64_t *idx, int64_t n);

#endif
