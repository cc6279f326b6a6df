/*
 * outbox-int — what the outbox's files share: lanes (outbox-lane.c), rows
 * turned into ops and settled (outbox-row.c), rate budgets (outbox-pace.c),
 * and the public side, the registry and new rows (outbox.c).  Not for use
 * outside the outbox.
 */
#ifndef SB_OUTBOX_INT_H
#define SB_OUTBOX_INT_H

#include "adapters/adapter.h"
#include "bot/loop.h"

#include <jansson.h>
#include <stdint.h>

struct out_op;

/*
 * A lane (adapter + channel) has two queues with one op in flight each:
 * new messages, in row order and paced; and reactions and edits, which
 * must never wait behind a backlog of paced messages (a 500-mention burst
 * put the 👀 of the last one four minutes late).  What order still matters
 * holds: messages of a thread stay in order (all of the channel's
 * messages do), an edit waits for the message it edits (skipped, not
 * blocking, until that is sent), and a Retry-After on a reaction or an
 * edit holds the queue it came from.  An adapter that does not pace posts
 * (min_interval_ms 0: the console) has nothing to overtake, so its lanes
 * keep one queue in strict row order, one op in flight.
 */
enum { Q_POST, Q_QUICK, NQ };
/*
 * Reactions and edits in flight at once per lane: one at a time, a burst's
 * 500 reactions took 500 round trips.  Two edits of one message are never
 * in flight together (the later one waits), so the latest state still wins.
 */
#define QUICK_MAX	8

struct lane {
	char		*adapter;
	char		*channel;
	char		*group;		/* order group in the channel (lane_group) */
	struct out_op	*inflight[NQ];	/* posts: one; quick: a list */
	int		 nquick;	/* ops on the quick list */
	int64_t		 next_post_ms;	/* pacing: no POST before this wall time */
	uv_timer_t	*timer[NQ];
	int		 dirty;		/* rows queued in an open transaction */
	/*
	 * At least how many rows of queue q are pending and not in flight
	 * (lane_more): counted up for each row that may have become one,
	 * down for each sent, and set to 0 by a lookup that found none.  A
	 * kick of a queue at 0 runs no SQL (five of a command event's seven
	 * lookups found nothing).  Only ever too high (a rolled-back insert),
	 * never too low, or a row would wait for a kick that never comes.
	 */
	int		 npend[NQ];
	struct lane	*next;
};

/* Buckets (outbox-pace.c) one op passes through, at most. */
#define OP_PACERS	4
struct pacer;

struct out_op {
	struct chat_op	 op;
	struct lane	*lane;
	char		*key;		/* POST: our key for the result */
	json_t		*payload;	/* owns the strings op points into */
	char		*target;	/* resolved EDIT target */
	char		*thread;	/* resolved thread */
	const char	**choices;
	unsigned char	*data;		/* UPLOAD: the decoded bytes */
	int		 q;		/* Q_POST or Q_QUICK */
	struct out_op	*next;		/* the lane's quick list */
	int		 cancelled;	/* lane gone while the adapter held it */
	uint64_t	 sent_ms;	/* handed to the adapter (metrics) */
	struct pacer	*pacers[OP_PACERS];	/* taken from when it went */
	unsigned char	 probes[OP_PACERS];	/* ... past their budget */
	int		 npacers;
	char		*done_ref;	/* answered: the platform's id */
	struct out_op	*done_next;	/* answered, not yet recorded */
};

struct reg {
	char		*name;
	struct adapter	*adapter;
	void		(*on_post)(void *, uint64_t);	/* outbox_on_post */
	void		*on_post_arg;
	struct reg	*next;
};

extern struct lane	*lanes;
extern int		 outbox_running;
extern struct metric	*m_sent, *m_failed, *m_retried;

/* outbox.c */
struct adapter	*reg_find(const char *);
void		 outbox_metrics(const char *, const struct out_op *,
		    const char *);
void		 reply_timed(uint64_t);

/* outbox-lane.c */
char		*lane_group(const char *, uint64_t, const char *,
		    const char *, const char *);
struct lane	*lane_get(const char *, const char *, const char *);
void		 lane_kick(struct lane *);
void		 lane_mark(struct lane *, const char *);
void		 lane_more(struct lane *, int);
int		 quick_busy(const struct lane *, int64_t, const char *,
		    const char *);
void		 lane_unlink(struct lane *, struct out_op *);
void		 lane_next(struct lane *, int, enum chat_op_kind);

/* outbox-row.c */
void		 op_free(struct out_op *);
int		 is_root_key(const char *);
int		 key_failed(const char *);
void		 row_finish(uint64_t, const char *, const char *, int,
		    int64_t);
const char	*ops_name(enum chat_op_kind);
void		 outbox_done_flush(void);
int		 lane_head(struct lane *, int, int, const char *,
		    struct out_op **, int64_t *);

/* outbox-pace.c */
enum pace_outcome { PACE_OK, PACE_LIMITED, PACE_FAILED };
int64_t		 outbox_pace_wait(const struct adapter_caps *, const char *,
		    const char *, enum chat_op_kind);
void		 outbox_pace_take(const struct adapter_caps *, const char *,
		    const char *, struct out_op *);
void		 outbox_pace_settle(struct out_op *, enum pace_outcome,
		    long long);
void		 outbox_pace_free(void);

#endif
