/* rng.c — the deterministic PRNG: xoshiro256** seeded through splitmix64. */
#include "runtime.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k)
{
	return x << k | x >> (64 - k);
}

/* splitmix64 spreads any seed, even 0, over a state that is never all zero. */
void mlc_rng_seed(mlc_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = seed += 0x9e3779b97f4a7c15u;
		z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9u;
		z = (z ^ z >> 27) * 0x94d049bb133111ebu;
		r->s[i] = z ^ z >> 31;
	}
}

uint64_t mlc_rng_next(mlc_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double mlc_rng_uniform(mlc_rng *r)
{
	return (double)(mlc_rng_next(r) >> 11) * 0x1p-53;
}

double mlc_rng_normal(mlc_rng *r)
{
	/* 1 - u is in (0, 1], so the log is finite; 6.28... is 2 pi. */
	double u1 = 1.0 - mlc_rng_uniform(r), u2 = mlc_rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform in [0, bound) without modulo bias: reject the short last stripe. */
static uint64_t below(mlc_rng *r, uint64_t bound)
{
	uint64_t threshold = -bound % bound, x;
	do
		x = mlc_rng_next(r);
	while (x < threshold);
	return x % bound;
}

void mlc_rng_shuffle(mlc_rng *r, int64_t *idx, int64_t n)
{
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)below(r, (uint64_t)i + 1);
		int64_t tmp = idx[i];
		idx[i] = idx[j];
		idx[j] = tmp;
	}
}
