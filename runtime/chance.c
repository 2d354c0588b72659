/* chance.c — the hint for a run that trains but does not learn: a learning
 * rate too high to diverge (the divergence check, numerics.c) yet too high to
 * learn (Adam at lr 1, SGD at 3) leaves the cross-entropy at the chance level
 * ln C of C classes — dead ReLUs or saturated outputs — and the accuracy at
 * about 1/C, with exit 0. When a whole epoch stayed there — the second of
 * two in a row: the first starts from the initial weights, at chance by
 * design — the run says so once (docs/spec.md, "Numerical faults"). */
#include "chance.h"

#include "session.h"

#include <math.h>

/* An epoch is at chance when its mean loss is at least 0.95 ln C and its
 * accuracy below 1.5/C (without an accuracy: the loss within 1.1 ln C): a
 * model that learns anything leaves this band within its first epoch. */
#define CHANCE_LOW 0.95
#define CHANCE_HIGH 1.1
#define CHANCE_ACC 1.5

void mlc_chance_check(mlc_session *s, mlc_chance *ch, int epoch, double loss, double acc, double lr)
{
	const mlc_node *l = s->loss_term;
	if (ch->warned || !l || !s->pred)
		return;
	switch (l->op) {
	case OP_SOFTMAX_XENT: case OP_CATEGORICAL_XENT: case OP_BCE: case OP_BCE_LOGITS: break;
	default: return; /* ln C is the chance level of cross-entropies only */
	}
	int64_t w = mlc_pred_width(s), c = w == 1 ? 2 : w;
	double level = log((double)c);
	bool stuck = loss >= CHANCE_LOW * level &&
		     (isnan(acc) ? loss <= CHANCE_HIGH * level : acc < CHANCE_ACC / (double)c);
	ch->streak = stuck ? ch->streak + 1 : 0;
	if (ch->streak < 2)
		return;
	ch->warned = true;
	char accs[64] = "";
	if (!isnan(acc))
		snprintf(accs, sizeof accs, " and the accuracy %.4f (1/%lld = %.4f)", acc, (long long)c, 1.0 / (double)c);
	fprintf(s->log, "%s: warning: the model is not learning: in epoch %d the training loss stayed at or above the "
		"chance level, %.4f against ln %lld = %.4f for %lld classes,%s; try a smaller learning rate (now %g), or check that the "
		"labels belong to the inputs\n", s->path, epoch, loss, (long long)c, level, (long long)c, accs, lr);
}
