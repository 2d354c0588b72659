/* chance.h — the not-learning hint of the training loop (internal). */
#ifndef MLC_CHANCE_H
#define MLC_CHANCE_H

#include <stdbool.h>

typedef struct mlc_session mlc_session;
typedef struct {
	int streak;  /* epochs in a row at the chance level */
	bool warned; /* said once */
} mlc_chance;
/* After epoch `epoch` of training with mean loss `loss`, accuracy `acc` (NAN
 * if not reported) and learning rate `lr`: a warning on the session's log
 * once two epochs in a row sat at the chance level of a cross-entropy. */
void mlc_chance_check(mlc_session *s, mlc_chance *c, int epoch, double loss, double acc, double lr);

#endif
