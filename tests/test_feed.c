/* test_feed.c — runtime/batch.c's gather of data.inputs feeds: column ranges
 * of a CSV into two inputs, scale applied to each, offset/max_samples, and
 * i32 ids converted as stored and checked to be whole numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/runtime.h"
#include "runtime/session.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

static char dir[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int make_dir(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/mlc_feed_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tpath(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", dir, name);
	return buf;
}

static void write_text(const char *name, const char *text)
{
	char p[512];
	FILE *f = fopen(tpath(p, name), "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static mlc_session *open_spec(const char *name, const char *text, capture *cap)
{
	char path[512];
	write_text(name, text);
	mlc_options o = {0};
	mlc_session *s = NULL;
	if (mlc_session_open(tpath(path, name), &o, cap->d, &s) != MLC_OK)
		fail_msg("%s: %s", name, cap_text(cap));
	return s;
}

/* An activation buffer of the planned size plus `extra` floats (for a feed
 * the test adds); the JIT is not needed to gather. */
static void give_act(mlc_session *s, int64_t extra)
{
	s->act = aligned_alloc(64, sizeof(float) * (size_t)(s->graph->act_size + extra + 16));
	memset(s->act, 0xff, sizeof(float) * (size_t)(s->graph->act_size + extra + 16));
}

static const mlc_node *input(const mlc_session *s, const char *name)
{
	for (int i = 0; i < s->nfeed; i++)
		if (strcmp(s->feed[i].in->name, name) == 0)
			return s->feed[i].in;
	fail_msg("no feed for input '%s'", name);
	return NULL;
}

static const char csv[] = "1,2,3,4,0\n5,6,7,8,1\n9,10,11,12,0\n13,14,15,16,1\n";

static void test_two_inputs_from_columns(void **state)
{
	(void)state;
	write_text("d.csv", csv);
	capture cap;
	cap_begin(&cap);
	mlc_session *s = open_spec("two.yaml",
				   "inputs: {a: {shape: [1]}, b: {shape: [2]}}\n"
				   "graph:\n"
				   "  h: {dense: 2, input: a}\n"
				   "  s: {add, inputs: [h, b]}\n"
				   "  out: {dense: 1, activation: sigmoid, input: s}\n"
				   "loss: binary_cross_entropy\n"
				   "data:\n"
				   "  format: csv\n"
				   "  train: d.csv\n"
				   "  scale: 0.5\n"
				   "  offset: 1\n"
				   "  max_samples: 2\n"
				   "  inputs: {a: {columns: [3, 4]}, b: {columns: [0, 2]}}\n",
				   &cap);
	assert_int_equal(s->nfeed, 2);
	mlc_data data;
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_OK);
	assert_int_equal(data.ds.n, 2); /* rows 2 and 3 of the file */
	give_act(s, 0);
	int64_t idx[] = {1, 0};
	mlc_batch_fill(s, &data, idx, 2);
	const float *a = s->act + input(s, "a")->offset, *b = s->act + input(s, "b")->offset;
	/* sample 1 of the window is file row 3 (9, 10, 11, 12), sample 0 row 2 */
	assert_true(a[0] == 6.0f && a[1] == 4.0f);
	assert_true(b[0] == 4.5f && b[1] == 5.0f && b[2] == 2.5f && b[3] == 3.0f);
	assert_true(s->act[s->y->offset] == 0.0f && s->act[s->y->offset + 1] == 1.0f);
	mlc_data_free(&data);
	assert_string_equal(cap_text(&cap), "");
	mlc_session_close(s);
	cap_end(&cap);
}

/* No op reads i32 values yet but the losses' labels (embeddings come
 * next), so the spec's `ids` input is pruned from the graph: the test adds
 * the input node that such an op would read, after the planned buffers. */
static mlc_session *ids_session(const char *name, capture *cap)
{
	mlc_session *s = open_spec(name,
				   "inputs: {x: {shape: [2]}, ids: {shape: [2], dtype: i32}}\n"
				   "graph:\n"
				   "  out: {dense: 2, input: x}\n"
				   "loss: softmax_cross_entropy\n"
				   "data:\n"
				   "  format: csv\n"
				   "  train: ids.csv\n"
				   "  inputs: {x: {columns: [0, 2]}, ids: {columns: [2, 4]}}\n",
				   cap);
	assert_null(mlc_graph_find_value(s->graph, "ids")); /* pruned: nothing reads it */
	mlc_node *ids = mlc_source(s->graph, OP_INPUT, "ids", DT_I32, 2, (int64_t[]){MLC_BATCH, 2},
				   s->model->data.feeds[1].loc);
	give_act(s, 2 * s->batch);
	ids->offset = s->graph->act_size;
	s->feed[s->nfeed++] = (mlc_feed){.in = ids, .cfg = &s->model->data.feeds[1], .col = 2};
	return s;
}

static void test_i32_ids(void **state)
{
	(void)state;
	write_text("ids.csv", "0.5,1,7,-3,0\n2,3,16777216,4,1\n");
	capture cap;
	cap_begin(&cap);
	mlc_session *s = ids_session("ids.yaml", &cap);
	mlc_data data;
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_OK);
	int64_t idx[] = {0, 1};
	mlc_batch_fill(s, &data, idx, 2);
	const int32_t *ids = (const int32_t *)(s->act + s->feed[1].in->offset);
	assert_true(ids[0] == 7 && ids[1] == -3 && ids[2] == 16777216 && ids[3] == 4);
	mlc_data_free(&data);
	mlc_session_close(s);
	cap_end(&cap);

	/* a value that is not a whole number is an error naming the file and cell */
	write_text("ids.csv", "0.5,1,7,-3,0\n2,3,4.25,4,1\n");
	cap_begin(&cap);
	s = ids_session("ids2.yaml", &cap);
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_EUSER);
	assert_non_null(strstr(cap_text(&cap), "ids.csv: error: sample 2, value 3: 4.25 is not a whole number "
					       "from -2^24 to 2^24, as input 'ids' (i32) needs"));
	mlc_session_close(s);
	cap_end(&cap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_inputs_from_columns),
		cmocka_unit_test(test_i32_ids),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
