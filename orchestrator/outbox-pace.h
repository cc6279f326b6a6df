/*
 * outbox pacing — the adapters' rate budgets (struct adapter_budget) as
 * token buckets, one per (budget, channel) or per budget workspace-wide.
 *
 * A bucket starts with the documented burst and refills at the documented
 * rate.  The documented numbers are minimums ("50+ per minute", "short
 * bursts allowed"), so the bucket also learns: when it is empty and
 * nothing of it is in flight, one op may go anyway (a probe); if the
 * platform takes it, the burst doubles (up to PACE_CAP_MAX) and that much
 * room is added, so a platform without limits is soon not paced at all.
 * A 429 ends that: nothing of the bucket goes before its Retry-After
 * (exactly), the burst halves back toward the documented one, and no probe
 * goes for PACE_CALM_MS.  A 429 on an op that was within the documented
 * budget means the platform is stricter than its docs: the rate halves
 * too (floor a quarter) and recovers linearly over PACE_RECOVER_MS.
 *
 * The platform's bucket starts refilling when an op that found it full
 * arrives, which is up to a round trip after ours did: the first answer
 * after such an op takes that round trip's refill back, or a later reply
 * that arrived quicker would find the platform's bucket short (a 429).
 *
 * Times are monotonic milliseconds (now_ms()); the arithmetic takes them
 * as arguments so that tests can step them.
 */
#ifndef SB_OUTBOX_PACE_H
#define SB_OUTBOX_PACE_H

#include <stdint.h>

#define PACE_CAP_MAX		1024	/* learned burst, at most */
#define PACE_CALM_MS		60000	/* no probe this long after a 429 */
#define PACE_RECOVER_MS		60000	/* rate from 0 back to documented */
#define PACE_SCALE_MIN		0.25	/* of the documented rate, at worst */

struct pace_bucket {
	double		 rate;		/* documented: tokens per ms */
	double		 burst;		/* documented burst */
	double		 cap;		/* learned burst: burst..PACE_CAP_MAX */
	double		 tokens;
	double		 scale;		/* of rate, after 429s within budget */
	uint64_t	 last_ms;	/* tokens and scale counted up to here */
	uint64_t	 hold_until;	/* Retry-After: nothing before this */
	uint64_t	 calm_until;	/* no probe before this */
	uint64_t	 full_at;	/* an op left a full bucket then */
	int		 inflight;	/* taken, not yet settled */
};

void	 pace_init(struct pace_bucket *, unsigned per_minute, unsigned burst,
	    uint64_t now);
/* 0 if an op may go now, else ms until it may (a lower bound). */
int64_t	 pace_wait(struct pace_bucket *, uint64_t now);
/* Spends a token (or probes: returns 1) for an op about to go. */
int	 pace_take(struct pace_bucket *, uint64_t now);
/* The op taken with pace_take() was done; probe: what it returned. */
void	 pace_ok(struct pace_bucket *, int probe, uint64_t now);
/* It was refused with a 429 and Retry-After retry_ms. */
void	 pace_limited(struct pace_bucket *, int probe, long long retry_ms,
	    uint64_t now);
/* It failed otherwise (network, 5xx): nothing learned. */
void	 pace_failed(struct pace_bucket *);

#endif
