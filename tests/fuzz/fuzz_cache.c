/* fuzz_cache.c — libFuzzer harness: the object cache's entry loader
 * (jc_load). Input: 1 flag byte, then the entry file. Flag bit 0 writes this
 * key's fields into the header and bit 1 a valid HMAC under the harness's
 * secret, so the fuzzer also reaches the checks behind them instead of
 * stopping at fields it cannot guess. */
#include "fuzz_util.h"

#include "codegen/jitcache.h"

#include <nettle/hmac.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > ((size_t)1 << 20))
		return 0;
	uint8_t flags = data[0];
	data++, size--;
	static const unsigned char secret[JC_SECRET_LEN] = "fuzz_cache secret, 32 bytes ...";
	jc_host h = {"19.1.7", "x86_64-pc-linux-gnu", "generic", "", "default<O2>"};
	jc_key k = jc_key_make("module", 6, &h);
	uint8_t *file = malloc(size ? size : 1);
	memcpy(file, data, size);
	/* The header layout (jitcache.c): magic[8] version entries key_len
	 * key_h1 key_h2 obj_len mac[32], then the object. */
	if ((flags & 1) && size >= 48) {
		memcpy(file + 16, &k.len, 8);
		memcpy(file + 24, &k.h1, 8);
		memcpy(file + 32, &k.h2, 8);
	}
	if ((flags & 2) && size >= 80) {
		struct hmac_sha256_ctx c;
		hmac_sha256_set_key(&c, JC_SECRET_LEN, secret);
		hmac_sha256_update(&c, 48, file);
		hmac_sha256_update(&c, size - 80, file + 80);
		hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, file + 48);
	}
	const char *path = fuzz_file(0, file, size);
	free(file);
	char *obj = NULL;
	size_t n = 0;
	uint32_t entries = 0;
	if (jc_load(path, k, secret, &obj, &n, &entries) && (n == 0 || n != size - 80))
		abort(); /* a hit must hold exactly the object the file holds */
	free(obj);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
