/*
 * question — a ticket for an agent's question to the person: durable, shown as
 * "q<id>", answered once (by click, by a reply to its message, or by a plain
 * reply when it is the only one open in the thread), or cancelled/expired.
 *
 * The asking agent is blocked on its socket request (struct ctl_req) until the
 * ticket settles; the reply goes back on that request.  If the agent hangs up
 * first, the ticket is cancelled and its message says so.
 *
 * Settling inside a transaction (an inbound event's work) records it there;
 * the agent hears, and the ticket is freed, only once it commits.  If it does
 * not, the ticket is open again as it was, and the event, replayed, settles
 * it: an answer reaches the agent once, and only one the store has.
 */
#ifndef SB_QUESTION_H
#define SB_QUESTION_H

#include <stdint.h>

struct agent;
struct ctl_req;
struct conversation;

enum question_state { Q_OPEN, Q_ANSWERED, Q_CANCELLED, Q_EXPIRED };

struct question {
	int64_t		 id;
	struct agent	*agent;
	char		*text;
	char		**choices;	/* NULL-terminated, may be empty */
	enum question_state state;
	char		*answer;
	char		*answered_by;
	struct ctl_req	*req;		/* pending ask; NULL once replied */
	struct loop_timer *timer;	/* ask timeout */
	/*
	 * Optional, set by the opener right after question_open: answers req
	 * itself when the ticket settles (state, answer and answered_by are
	 * set), instead of the default {"answer","answered_by"} reply.  The
	 * approval op uses it to turn "Deny: reason" into a decision.
	 */
	void		(*on_settle)(struct question *, struct ctl_req *);
	void		*settle_arg;
	/*
	 * Settled inside a transaction that has not ended: state is no
	 * longer Q_OPEN (nobody can settle it again or find it), but the
	 * agent hears only when the transaction commits; a rollback makes
	 * it open again, as it was, for the replayed event.
	 */
	int		 pending;
	int		 expired;	/* its timer fired while pending */
	struct question	*next;		/* in the open list */
};

/* Opens a ticket and posts the question.  timeout_s 0 = none. */
struct question	*question_open(struct agent *, const char *text,
		    const char *const *choices, int timeout_s, struct ctl_req *);
/* Open ones only: not one settled in a transaction not yet ended. */
struct question	*question_find(int64_t id);
/* Parses "q5" or "5". */
int64_t		 question_parse_id(const char *);
/* Open questions of a conversation (count, and fills up to n). */
int		 question_open_in(const struct conversation *, struct question **,
		    int n);
/*
 * Answers; 0 ok, -1 already settled (*why says by whom, malloc'd).  The
 * answer for a question with choices may be the choice text or its number.
 */
int		 question_answer(int64_t id, const char *answer, const char *by,
		    char **why);
/*
 * Observers of every ticket opened (after its message is posted) and
 * settled (answered, cancelled or expired; state, answer and answered_by
 * set, in the settling transaction, before the agent hears).  The brain
 * records them; an observer must not settle or free the question, and
 * should only write rows: a settle rolled back is told again when the
 * replayed event settles it.  Register at start; at most a handful.
 */
enum question_event { QUESTION_OPENED, QUESTION_SETTLED };
typedef void	(*question_event_fn)(struct question *, enum question_event,
		    void *arg);
void		 question_on_event(question_event_fn, void *arg);
/* Cancels every open question of the agent (it ended). */
void		 question_cancel_agent(struct agent *, const char *why);
/* On start: questions left open by a previous run are cancelled. */
void		 question_cancel_stale(void);
void		 question_free_all(void);

#endif
